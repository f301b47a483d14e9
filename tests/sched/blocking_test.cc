// spawn_blocking: results, exceptions, the pool's bound, and cores that keep
// running fibers while blocking calls are in progress.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class BlockingTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(BlockingTest);

TEST_P(BlockingTest, ReturnsTheResultOnTheCallersCoreFromAnotherThread) {
  run(
      [] {
        for (unsigned core = 0; core < 2; ++core) {
          spawn_on(core, [core] {
            auto caller = std::this_thread::get_id();
            auto ran_on = spawn_blocking([] { return std::this_thread::get_id(); });
            EXPECT_NE(ran_on, caller);
            EXPECT_EQ(std::this_thread::get_id(), caller);  // back home
            EXPECT_EQ(scheduler_index(), core);
            EXPECT_EQ(spawn_blocking([] { return std::string("done"); }), "done");
          }).join();
        }
      },
      options(2));
}

TEST_P(BlockingTest, RethrowsTheException) {
  run(
      [] {
        EXPECT_THROW(spawn_blocking([]() -> int { throw std::invalid_argument("bad"); }),
                     std::invalid_argument);
        bool ran = false;
        spawn_blocking([&] { ran = true; });
        EXPECT_TRUE(ran);
      },
      options());
}

TEST_P(BlockingTest, SixtyFourBlockedCallsDoNotStallTheFibersOfEitherCore) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> blocked{0};
  std::atomic<int> timed_out{0};
  Options o = options(2);
  o.blocking_threads = 64;
  run(
      [&] {
        WaitGroup calls;
        for (int i = 0; i < 64; ++i) {
          calls.add(1);
          go_on(i % 2, [&] {
            spawn_blocking([&] {
              blocked.fetch_add(1);
              // Blocks its thread until the fibers below have run; bounded so
              // that a stalled core fails the test instead of hanging it.
              if (released.wait_for(30s) != std::future_status::ready) timed_out.fetch_add(1);
            });
            calls.done();
          });
        }
        // Fibers on both cores keep running while all 64 calls block.
        for (unsigned core = 0; core < 2; ++core) {
          int v = spawn_on(core, [] {
                    int steps = 0;
                    for (int i = 0; i < 100; ++i, ++steps) yield();
                    sleep_for(1ms);
                    return steps;
                  }).join();
          EXPECT_EQ(v, 100);
        }
        while (blocked.load() < 64) sleep_for(1ms);  // all 64 are blocked at once
        release.set_value();
        calls.wait();
      },
      o);
  EXPECT_EQ(timed_out.load(), 0);
}

TEST_P(BlockingTest, ThePoolNeverRunsMoreThreadsThanItsBound) {
  Options o = options(2);
  o.blocking_threads = 3;
  std::atomic<int> running{0}, peak{0};
  run(
      [&] {
        WaitGroup wg;
        for (int i = 0; i < 24; ++i) {
          wg.add(1);
          go_on(i % 2, [&] {
            spawn_blocking([&] {
              int now = running.fetch_add(1) + 1;
              int seen = peak.load();
              while (now > seen && !peak.compare_exchange_weak(seen, now)) {
              }
              std::this_thread::sleep_for(2ms);  // the blocking work itself
              running.fetch_sub(1);
            });
            wg.done();
          });
        }
        wg.wait();
      },
      o);
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 1);
}

}  // namespace
}  // namespace fiber
