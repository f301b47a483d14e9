// TLS discipline (RELIABILITY.md T34, bug B12). A compiler may compute the
// address of a thread_local once and keep it in a register across a call (in
// C++'s model a function never changes thread), so a fiber resumed on another
// thread would read the first thread's variables. Here fibers never change
// thread: each scheduler runs only its own fibers on its own pinned thread (no
// work stealing, sched/README.md), and stacks come from that thread's pool,
// so the bug cannot happen. This test keeps it so. Built with -O2 -flto (see
// CMakeLists.txt), a fiber on core 1 reads thread-local state before and after
// each park that core 0 ends, 10^5 times, and checks it against what a call the
// compiler cannot see through (scheduler_index(), gettid) says.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

class TlsTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(TlsTest);

#if defined(FIBER_TEST_TSAN)
constexpr int kRounds = 10000;  // each round is two cross-core hand-offs
#else
constexpr int kRounds = 100000;
#endif

// This thread's scheduler index, as seen through thread-local storage.
thread_local unsigned t_core = ~0u;

long kernel_tid() { return syscall(SYS_gettid); }

// ping_pong_from_core_1() sends each round to core 0 and waits for it to come
// back, checking thread-local state around both parks; returns the rounds
// where it was wrong.
int ping_pong_from_core_1(Chan<int> ping, Chan<int> pong) {
  const long tid = kernel_tid();
  int wrong = 0;
  for (int i = 0; i < kRounds; ++i) {
    const unsigned before = t_core;
    const bool sent = !ping.send(i);  // parks until core 0 takes it
    auto back = pong.recv();          // parks; core 0 wakes it
    const unsigned after = t_core;
    if (!sent || back != i || before != 1 || after != 1 || scheduler_index() != 1 ||
        kernel_tid() != tid) {
      ++wrong;
    }
  }
  ping.close();
  return wrong;
}

TEST_P(TlsTest, AFiberReadsItsOwnThreadsLocalsAfterEveryCrossCoreWake) {
  run(
      [] {
        for (unsigned core = 0; core < 2; ++core) {
          spawn_on(core, [core] { t_core = core; }).join();
        }
        auto ping = *Chan<int>::make(0);
        auto pong = *Chan<int>::make(0);
        auto echo = spawn_on(0, [&] {
          int rounds = 0;
          while (auto v = ping.recv()) {
            if (pong.send(*v)) break;
            ++rounds;
          }
          return rounds;
        });
        int wrong = spawn_on(1, [&] { return ping_pong_from_core_1(ping, pong); }).join();
        EXPECT_EQ(echo.join(), kRounds);
        EXPECT_EQ(wrong, 0) << "a fiber saw another thread's locals or changed thread";
      },
      options(2));
}

}  // namespace
}  // namespace fiber
