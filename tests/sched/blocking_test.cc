// spawn_blocking: results, exceptions, the pool's bound, cores that keep
// running fibers while blocking calls are in progress, and what happens to
// calls at shutdown (RELIABILITY.md T28).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"
#include "tests/support/leak_check.h"
#include "tests/support/settle.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class BlockingTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(BlockingTest);

// expect_only_abandoned_fibers() checks that, once settled, the test left
// behind `fibers` abandoned fibers (parked when main returned, as intended)
// and nothing else, and makes that the baseline of the per-test leak check.
void expect_only_abandoned_fibers(const testing::ResourceSnapshot& before, int fibers) {
  testing::ResourceSnapshot expected = before;
  expected.fibers_abandoned += fibers;
  EXPECT_EQ(testing::settled_snapshot(expected).leaks_since(expected), "");
  testing::accept_current_resources();
}

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

// T28: 10^4 calls sleeping 0-1 ms, from 100 fibers on two cores, on a pool of
// 8 threads: each result reaches the fiber that asked, on its own core.
TEST_P(BlockingTest, TenThousandCallsFromBothCoresEachComeHomeOnAPoolWithinItsCap) {
  constexpr unsigned kCap = 8;
  constexpr int kFibersPerCore = 50;
  constexpr int kCallsPerFiber = 100;
  Options o = options(2);
  o.blocking_threads = kCap;
  std::mutex mu;
  std::set<std::thread::id> pool_threads;  // guarded by mu
  std::atomic<int> running{0}, peak{0}, calls{0}, wrong_result{0}, away_from_home{0};
  run(
      [&] {
        WaitGroup wg;
        for (unsigned core = 0; core < 2; ++core) {
          for (int f = 0; f < kFibersPerCore; ++f) {
            wg.add(1);
            go_on(core, [&, core, f] {
              const auto home = std::this_thread::get_id();
              const uint64_t id = current_id();
              std::minstd_rand rng(core * kFibersPerCore + f + 1);
              for (int i = 0; i < kCallsPerFiber; ++i) {
                const int tag = (static_cast<int>(core) * kFibersPerCore + f) * kCallsPerFiber + i;
                const auto pause = std::chrono::microseconds(rng() % 1001);
                auto [got, ran_on] = spawn_blocking([&, tag, pause] {
                  int now = running.fetch_add(1) + 1;
                  int seen = peak.load();
                  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
                  }
                  {
                    std::lock_guard<std::mutex> g(mu);
                    pool_threads.insert(std::this_thread::get_id());
                  }
                  std::this_thread::sleep_for(pause);  // the blocking work itself
                  running.fetch_sub(1);
                  return std::make_pair(tag, std::this_thread::get_id());
                });
                calls.fetch_add(1);
                if (got != tag) wrong_result.fetch_add(1);
                if (ran_on == home || std::this_thread::get_id() != home ||
                    scheduler_index() != core || current_id() != id) {
                  away_from_home.fetch_add(1);
                }
              }
              wg.done();
            });
          }
        }
        wg.wait();
      },
      o);
  EXPECT_EQ(calls.load(), 2 * kFibersPerCore * kCallsPerFiber);
  EXPECT_EQ(wrong_result.load(), 0) << "a result reached another fiber";
  EXPECT_EQ(away_from_home.load(), 0) << "a call ran on, or came back to, the wrong thread";
  EXPECT_LE(pool_threads.size(), kCap);
  EXPECT_LE(peak.load(), static_cast<int>(kCap));
  EXPECT_GE(peak.load(), 2) << "calls never overlapped: the cap was not put to the test";
}

// T28, shutdown: once main has returned, run() waits the grace and no longer
// for a call that still blocks; a call still queued never starts; the running
// one finishes later on its detached thread, writing into the abandoned
// fiber's stack (still mapped), and finds the runtime gone without touching it.
TEST_P(BlockingTest, RunReturnsAfterTheGraceWhileACallBlocksWhichThenFinishesOnItsOwn) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kGrace = 200ms;
  Options o = options(2);
  o.blocking_threads = 1;  // so that a second call queues behind the first
  o.blocking_shutdown_grace = kGrace;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<std::string> report;  // what the blocked call saw after run() returned
  std::future<std::string> reported = report.get_future();
  std::atomic<bool> queued_ran{false};
  const testing::ResourceSnapshot before = testing::take_resource_snapshot();
  Clock::time_point main_returned;
  run(
      [&] {
        WaitGroup started;
        started.add(1);
        go_on(1, [&] {
          // spawn_blocking never returns here: the fiber is abandoned at stop.
          std::array<char, 4096> result = spawn_blocking([&] {
            go_on(0, [&started] { started.done(); });  // the runtime is still there
            // Blocks until after run() has returned; bounded, so that a run()
            // that waits for the call fails the test instead of hanging it.
            bool in_time = released.wait_for(30s) == std::future_status::ready;
            std::string seen = in_time ? "released after run() returned" : "never released";
            try {
              go_on(0, [] {});
              seen += "; go_on() was accepted";
            } catch (const std::logic_error& e) {
              seen += std::string("; go_on(): ") + e.what();
            }
            report.set_value(seen);
            // Returned into the abandoned fiber's stack: it must still be mapped.
            // (A value owning no heap memory: nothing unwinds that fiber.)
            std::array<char, 4096> value;
            value.fill('.');
            return value;
          });
          ADD_FAILURE() << "an abandoned fiber resumed with " << result[0];
        });
        started.wait();
        go_on(0, [&] {
          spawn_blocking([&] { queued_ran = true; });
          ADD_FAILURE() << "an abandoned fiber resumed";
        });
        testing::settle();  // the second call is queued
        main_returned = Clock::now();
      },
      o);
  const auto took = Clock::now() - main_returned;
  release.set_value();
  const std::string seen = reported.get();
  EXPECT_GE(took, kGrace) << "run() did not wait the grace";
  EXPECT_LT(took, kGrace + 10s) << "run() waited for the blocked call";
  EXPECT_EQ(seen,
            "released after run() returned; go_on(): fiber::go_on: the runtime has stopped (this "
            "spawn_blocking call outlived fiber::run, which left it to its thread)");
  // Once its call returned, the detached thread unmapped the fiber's stack and
  // ended. The two parked fibers were abandoned, as run() documents; nothing else
  // may be left.
  expect_only_abandoned_fibers(before, 2);
  EXPECT_FALSE(queued_ran.load()) << "a call still queued at shutdown ran";
}

TEST_P(BlockingTest, AGraceWithoutBoundWaitsForTheRunningCall) {
  Options o = options(2);
  o.blocking_shutdown_grace = std::chrono::nanoseconds::max();
  std::atomic<bool> blocking{false};
  std::atomic<bool> returned{false};
  const testing::ResourceSnapshot before = testing::take_resource_snapshot();
  run(
      [&] {
        go_on(1, [&] {
          spawn_blocking([&] {
            blocking = true;
            std::this_thread::sleep_for(50ms);  // the blocking work itself
            returned = true;
          });
          WaitGroup never;
          never.add(1);
          never.wait();  // parked when the runtime stops, whenever it resumed
        });
        while (!blocking.load()) yield();
      },
      o);
  EXPECT_TRUE(returned.load()) << "run() returned before the call";
  expect_only_abandoned_fibers(before, 1);
}

// A fiber that keeps calling spawn_blocking while run() stops: a call made
// after the stop never starts and parks the fiber for good (it is abandoned
// with the others) instead of throwing out of a fiber nobody can catch. Which
// state the loop is in when the stop comes varies (its call queued, running,
// or refused): 20 lifetimes make the refused one all but certain.
TEST_P(BlockingTest, CallsMadeWhileRunStopsNeverStartAndDoNotThrow) {
  constexpr int kLifetimes = 20;
  const testing::ResourceSnapshot before = testing::take_resource_snapshot();
  for (int i = 0; i < kLifetimes; ++i) {
    std::atomic<int> calls{0};
    run(
        [&] {
          go_on(1, [&] {
            for (;;) spawn_blocking([&] { calls.fetch_add(1); });
          });
          while (calls.load() < 100) yield();
        },
        options(2));
  }
  expect_only_abandoned_fibers(before, kLifetimes);
}

}  // namespace
}  // namespace fiber
