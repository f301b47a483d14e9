// Runtime lifetimes (RELIABILITY.md T29) and the leak check itself (T35): 200
// runs, each with fibers on both cores, I/O, timers and a blocking call, leave
// no fd, thread, stack mapping or memory behind; and the per-test leak check
// does see what a runtime leaves behind.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include "fiber/fiber.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"
#include "tests/support/leak_check.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class LifecycleTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(LifecycleTest);

// rss_bytes() is the resident set size of the process.
int64_t rss_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

// one_lifetime() runs a runtime with 100 fibers on two cores doing echo over
// TCP, sleeps, timers (one left armed at the end) and a blocking call.
void one_lifetime(const Options& options, int* ok) {
  run(
      [ok] {
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        constexpr int kConnections = 10;
        WaitGroup wg;
        std::atomic<int> good{0};
        wg.add(1);
        go([&] {
          for (int i = 0; i < kConnections; ++i) {
            auto c = ln->accept();
            if (!c) break;
            wg.add(1);
            go([c = std::move(*c), &wg]() mutable {
              char buf[64];
              for (;;) {
                auto n = c.read(buf);
                if (!n || *n == 0) break;
                if (!c.write_all({buf, *n})) break;
              }
              wg.done();
            });
          }
          wg.done();
        });
        for (int i = 0; i < kConnections; ++i) {
          wg.add(1);
          go_on(i % 2, [&, i] {
            auto conn = TcpStream::connect(at);
            std::string msg = "m" + std::to_string(i), back(msg.size(), '\0');
            if (conn && conn->write_all(msg) && conn->read_exact(back) && back == msg) ++good;
            wg.done();
          });
        }
        // 1 acceptor + 10 echo servers + 10 clients + 79 others = 100 fibers.
        constexpr int kOthers = 100 - 2 * kConnections - 1;
        for (int i = 0; i < kOthers; ++i) {
          wg.add(1);
          go_on(i % 2, [&, i] {
            if (i % 3 == 0) sleep_for(std::chrono::microseconds(100 + i));
            if (i % 3 == 1) {
              Timer t(1h);  // stopped by its destructor
              (void)t;
            }
            if (i % 3 == 2) yield();
            ++good;
            wg.done();
          });
        }
        good += spawn_blocking([] { return 1; });
        wg.wait();
        *ok += good.load() == kConnections + kOthers + 1 ? 1 : 0;
        (void)after(1h);  // armed when the runtime stops: its node must be freed
      },
      options);
}

#ifdef FIBER_TEST_TSAN
constexpr int kLifetimes = 50;
#else
constexpr int kLifetimes = 200;
#endif

TEST_P(LifecycleTest, TwoHundredRuntimesComeAndGoWithoutLeaking) {
  Options o = options(2);
  int ok = 0;
  // Warm-up: the allocator's arenas and the stack pool reach their steady size.
  for (int i = 0; i < 20; ++i) one_lifetime(o, &ok);
  const testing::ResourceSnapshot before = testing::take_resource_snapshot();
  const int64_t rss_before = rss_bytes();
  for (int i = 0; i < kLifetimes; ++i) one_lifetime(o, &ok);
  EXPECT_EQ(ok, 20 + kLifetimes);
  const testing::ResourceSnapshot after = testing::settled_snapshot(before);
  EXPECT_EQ(after.leaks_since(before), "");
  EXPECT_EQ(after.stacks_mapped, 0) << "stacks still mapped with no runtime running";
  const int64_t growth = rss_bytes() - rss_before;
#if defined(__SANITIZE_ADDRESS__) || defined(FIBER_TEST_TSAN)
  // Sanitizers hold freed memory in quarantine and shadow: RSS says nothing here.
  RecordProperty("rss_growth_bytes", std::to_string(growth));
#else
  EXPECT_LT(growth, 5 << 20) << "RSS grew by " << growth << " bytes over 200 runtimes";
#endif
}

// The leak check must see a runtime that stops with a fiber parked in a read:
// the fiber, its operation and its socket pair are left behind.
TEST_P(LifecycleTest, TheLeakCheckSeesWhatAStoppedRuntimeLeftBehind) {
  // Reachable from here so that LeakSanitizer does not report the handles: the
  // sockets cannot be destroyed once their runtime is gone.
  static std::pair<UnixStream, UnixStream>* left = nullptr;
  const testing::ResourceSnapshot before = testing::take_resource_snapshot();
  int fds[2] = {-1, -1};
  run(
      [&fds] {
        auto pair = UnixStream::pair();
        ASSERT_TRUE(pair);
        left = new std::pair<UnixStream, UnixStream>(std::move(*pair));
        fds[0] = left->first.fd();
        fds[1] = left->second.fd();
        go([] {
          char c;
          (void)left->first.read({&c, 1});  // never returns: nobody writes
        });
        yield();  // it parks in its read; then main returns and the runtime stops
      },
      options());
  const testing::ResourceSnapshot after = testing::take_resource_snapshot();
  EXPECT_EQ(after.fibers_abandoned - before.fibers_abandoned, 1);
  EXPECT_EQ(after.io_ops_abandoned - before.io_ops_abandoned, 1);
  EXPECT_EQ(after.io_handles - before.io_handles, 2);
  EXPECT_EQ(after.fds - before.fds, 2);
  EXPECT_NE(after.leaks_since(before), "");
  // Clean up what can be, and tell the per-test check that the rest is meant.
  close(fds[0]);
  close(fds[1]);
  testing::accept_current_resources();
}

}  // namespace
}  // namespace fiber
