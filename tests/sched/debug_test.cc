// fiber::dump(), the SIGQUIT dump, the deadlock report and the leak report
// (fiber/debug.h, Options::deadlock_report, leak_report, sigquit_dump). The
// reports that end the process run in a child (death tests); the cases that
// must not be reported end normally, or the test dies with status 2.
#include "fiber/debug.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "fiber/blocking.h"
#include "fiber/chan.h"
#include "fiber/join_handle.h"
#include "fiber/mutex.h"
#include "fiber/runtime.h"
#include "fiber/udp.h"
#include "fiber/wait_group.h"
#include "tests/support/drivers.h"
#include "tests/support/leak_check.h"
#include "tests/support/settle.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class DebugTest : public testing::DriverTest {
 protected:
  void SetUp() override {
    testing::DriverTest::SetUp();
    GTEST_FLAG_SET(death_test_style, "threadsafe");
  }
};
FIBER_INSTANTIATE_DRIVER_TESTS(DebugTest);

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

[[gnu::noinline]] void ParkOnChannel(const Chan<int>& ch) {
  (void)ch.recv();
  asm volatile("" ::: "memory");  // not a tail call: this frame stays on the stack
}

// Distinct bodies, so that the linker cannot fold the two into one.
volatile int g_lock_sink = 0;

[[gnu::noinline]] void LockFirst(Mutex& mu) {
  mu.lock();
  g_lock_sink = 1;
}

[[gnu::noinline]] void LockAgain(Mutex& mu) {
  mu.lock();
  g_lock_sink = 2;
}

// dump_until() takes dumps until one contains `what` (the fibers it shows may
// still be on their way to their waits), at most a bounded number of times.
std::string dump_until(const std::string& what) {
  std::string text;
  for (int i = 0; i < 10000; ++i) {
    std::ostringstream out;
    dump(out);
    text = out.str();
    if (contains(text, what)) break;
    yield();
  }
  return text;
}

TEST_P(DebugTest, DumpListsEveryFiberWithItsStateSpawnSiteAndStack) {
  std::string text;
  int recv_line = 0, mutex_line = 0, cv_line = 0;
  run(
      [&] {
        auto ch = *Chan<int>::make();
        Mutex mu;
        CondVar cv;
        Mutex cv_mu;
        bool go_on = false;
        recv_line = __LINE__ + 1;
        auto receiver = spawn_on(1, [ch] { ParkOnChannel(ch); });
        mu.lock();
        mutex_line = __LINE__ + 1;
        auto locker = spawn([&] { std::lock_guard g(mu); });
        testing::settle();
        cv_line = __LINE__ + 1;
        auto waiter = spawn([&] {
          std::unique_lock lk(cv_mu);
          cv.wait_for(lk, 1h, [&] { return go_on; });
        });
        testing::settle();
        text = dump_until("chan receive");
        (void)ch.send(1);
        mu.unlock();
        {
          std::lock_guard g(cv_mu);
          go_on = true;
        }
        cv.notify_all();
        receiver.join();
        locker.join();
        waiter.join();
      },
      options(2));
  EXPECT_TRUE(contains(text, "[running], spawned at fiber::run (main)")) << text;
  EXPECT_TRUE(contains(text, "on core 1 [chan receive, for ")) << text;
  EXPECT_TRUE(contains(text, "spawned at " __FILE__ ":" + std::to_string(recv_line))) << text;
  EXPECT_TRUE(contains(text, "ParkOnChannel")) << text;  // the stack, unwound
  EXPECT_TRUE(contains(text, "on core 0 [mutex, for ")) << text;
  EXPECT_TRUE(contains(text, __FILE__ ":" + std::to_string(mutex_line))) << text;
  EXPECT_TRUE(contains(text, "[condvar, deadline in 59")) << text;
  EXPECT_TRUE(contains(text, __FILE__ ":" + std::to_string(cv_line))) << text;
  EXPECT_TRUE(contains(text, "DumpListsEveryFiberWithItsStateSpawnSiteAndStack")) << text;
}

TEST_P(DebugTest, DumpSaysACoreThatDoesNotAnswerIsStalled) {
  Options o = options(2);
  o.stall_threshold = 0ns;  // no stall reports: this test makes a stall on purpose
  std::string text;
  run(
      [&] {
        std::atomic<int> phase{0};
        auto spinner = spawn_on(1, [&] {
          phase.store(1);
          while (phase.load() != 2) {
          }
        });
        while (phase.load() != 1) yield();
        std::ostringstream out;
        dump(out);
        text = out.str();
        phase.store(2);
        spinner.join();
      },
      o);
  EXPECT_TRUE(contains(text, "(core 1 is stalled: its fibers cannot be listed)")) << text;
  EXPECT_TRUE(contains(text, "[running], spawned at fiber::run (main)")) << text;
}

TEST_P(DebugTest, SigquitPrintsTheDumpWhenAskedTo) {
  Options o = options(1);
  o.sigquit_dump = true;
  const testing::ResourceSnapshot before = testing::take_resource_snapshot();
  WaitGroup never;  // outlives run(): the fibers left parked on it are abandoned
  never.add(1);
  int line = 0;
  ::testing::internal::CaptureStderr();
  run(
      [&] {
        line = __LINE__ + 1;
        go([&] { never.wait(); });
        testing::settle();
        ASSERT_EQ(raise(SIGQUIT), 0);  // answered before run() returns
      },
      o);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(err, "SIGQUIT: fiber dump")) << err;
  EXPECT_TRUE(contains(err, "[wait group, for ")) << err;
  EXPECT_TRUE(contains(err, __FILE__ ":" + std::to_string(line))) << err;
  testing::ResourceSnapshot expected = before;
  expected.fibers_abandoned += 1;
  EXPECT_EQ(testing::settled_snapshot(expected).leaks_since(expected), "");
  testing::accept_current_resources();
}

TEST_P(DebugTest, LeakReportCountsTheFibersLeftParkedBySpawnSite) {
  Options o = options(2);
  o.leak_report = true;
  const testing::ResourceSnapshot before = testing::take_resource_snapshot();
  WaitGroup never;
  never.add(1);
  int three = 0, two = 0;
  ::testing::internal::CaptureStderr();
  run(
      [&] {
        for (int i = 0; i < 3; ++i) {
          three = __LINE__ + 1;
          go([&] { never.wait(); });
        }
        testing::settle();
        auto settled = *Chan<int>::make(1);
        go_on(1, [&, settled] {
          for (int i = 0; i < 2; ++i) {
            two = __LINE__ + 1;
            go([&] { never.wait(); });
          }
          testing::settle();
          (void)settled.send(1);
        });
        (void)settled.recv();
      },
      o);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(err, "leak report: 5 fibers still parked when main returned")) << err;
  EXPECT_TRUE(contains(err, "3 at " __FILE__ ":" + std::to_string(three) + " (wait group)")) << err;
  EXPECT_TRUE(contains(err, "2 at " __FILE__ ":" + std::to_string(two) + " (wait group)")) << err;
  testing::ResourceSnapshot expected = before;
  expected.fibers_abandoned += 5;
  EXPECT_EQ(testing::settled_snapshot(expected).leaks_since(expected), "");
  testing::accept_current_resources();
}

TEST_P(DebugTest, NoLeakReportWhenNothingIsLeftParked) {
  Options o = options(1);
  o.leak_report = true;
  ::testing::internal::CaptureStderr();
  run([] { spawn([] { yield(); }).join(); }, o);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(contains(err, "leak report")) << err;
}

// --- deadlocks: reported ------------------------------------------------------

TEST_P(DebugTest, FibersWaitingOnEachOtherAcrossCoresAreADeadlock) {
#if defined(FIBER_TEST_TSAN)
  GTEST_SKIP() << "TSan's background thread is a thread outside the runtime: no deadlock report";
#endif
  const Options o = options(2);
  EXPECT_EXIT(run(
                  [] {
                    auto a = *Chan<int>::make();
                    auto b = *Chan<int>::make();
                    go_on(1, [a, b] {
                      ParkOnChannel(a);
                      (void)b.send(1);
                    });
                    (void)b.recv();
                    (void)a.send(1);
                  },
                  o),
              ::testing::ExitedWithCode(2),
              "fatal: all fibers are asleep - deadlock!(.|\n)*"
              "on core 1 \\[chan receive, for [^\n]*spawned at [^\n]*debug_test.cc:[0-9]+\n"
              "(.|\n)*ParkOnChannel");
}

TEST_P(DebugTest, RelockingAMutexIsReportedAtOnceWithBothSites) {
#if defined(FIBER_TEST_TSAN)
  GTEST_SKIP() << "TSan's background thread is a thread outside the runtime: no deadlock report";
#endif
  const Options o = options(1);
  EXPECT_EXIT(run(
                  [] {
                    Mutex mu;
                    LockFirst(mu);
                    LockAgain(mu);
                  },
                  o),
              ::testing::ExitedWithCode(2),
              "fiber 1 \\(spawned at fiber::run \\(main\\)\\) locks a fiber::Mutex it already "
              "holds(.|\n)*locked first at:\n[^\n]*LockFirst(.|\n)*locked again at:\n[^\n]*"
              "LockAgain(.|\n)*all fibers are asleep - deadlock!(.|\n)*\\[mutex, for ");
}

// --- deadlocks: what must not be reported -----------------------------------

TEST_P(DebugTest, ALongSleepIsNoDeadlock) {
  run(
      [] {
        auto ch = *Chan<int>::make();
        auto receiver = spawn_on(1, [ch] { ParkOnChannel(ch); });
        sleep_for(200ms);  // only a timer can end this: no report meanwhile
        (void)ch.send(1);
        receiver.join();
      },
      options(2));
}

TEST_P(DebugTest, AFiberParkedOnAnIdleSocketIsNoDeadlock) {
  run(
      [] {
        auto sock = UdpSocket::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(sock) << sock.error().message();
        const uint16_t port = sock->local_address()->port();
        // Another process sends the datagram later: only the kernel can wake
        // this fiber, and no thread of this process is involved.
        pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
          timespec pause{0, 200'000'000};
          nanosleep(&pause, nullptr);
          int fd = socket(AF_INET, SOCK_DGRAM, 0);
          sockaddr_in to{};
          to.sin_family = AF_INET;
          to.sin_port = htons(port);
          to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          (void)sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
          _exit(0);
        }
        char buf[8];
        auto n = sock->recv_from(buf);
        EXPECT_TRUE(n) << n.error().message();
        int status = 0;
        spawn_blocking([&] { waitpid(child, &status, 0); });
        EXPECT_EQ(status, 0);
      },
      options(1));
}

TEST_P(DebugTest, AChannelFedByAStdThreadIsNoDeadlock) {
  run(
      [] {
        auto ch = *Chan<int>::make();
        std::thread feeder([ch] {
          // It sends while every fiber is parked: a thread outside the runtime
          // holds a handle, so nothing may be reported.
          std::this_thread::sleep_for(200ms);
          while (ch.try_send(7)) std::this_thread::yield();
        });
        EXPECT_EQ(ch.recv(), 7);
        feeder.join();
      },
      options(2));
}

}  // namespace
}  // namespace fiber
