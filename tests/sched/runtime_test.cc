// fiber::run, go, go_on, spawn/join, yield, sleep, ids, fiber-local storage.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class RuntimeTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(RuntimeTest);

TEST_P(RuntimeTest, RunReturnsWhatMainReturns) {
  EXPECT_EQ(run([] { return 42; }, options()), 42);
  std::string s = run([] { return std::string("hello"); }, options(2));
  EXPECT_EQ(s, "hello");
}

TEST_P(RuntimeTest, RunRethrowsWhatEscapesMain) {
  EXPECT_THROW(run([]() -> int { throw std::runtime_error("boom"); }, options()),
               std::runtime_error);
}

TEST_P(RuntimeTest, ReportsTheDriverItRuns) {
  run(
      [&] {
        EXPECT_EQ(driver_info().kind, GetParam());
        EXPECT_NE(driver_info().reason.find(to_string(GetParam())), std::string::npos)
            << driver_info().reason;
        EXPECT_EQ(scheduler_count(), 2u);
      },
      options(2));
}

TEST_P(RuntimeTest, GoRunsOnTheCallersSchedulerAndGoOnOnTheChosenOne) {
  run(
      [] {
        EXPECT_EQ(scheduler_index(), 0u);
        WaitGroup wg;
        std::atomic<unsigned> here{99}, there{99};
        wg.add(2);
        go([&] {
          here = scheduler_index();
          wg.done();
        });
        go_on(1, [&] {
          there = scheduler_index();
          wg.done();
        });
        wg.wait();
        EXPECT_EQ(here.load(), 0u);
        EXPECT_EQ(there.load(), 1u);
      },
      options(2));
}

TEST_P(RuntimeTest, FiberIdsAreUniqueAndNonZero) {
  std::vector<uint64_t> ids(200);
  run(
      [&] {
        WaitGroup wg;
        wg.add(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) {
          go_on(i % 2, [&, i] {
            ids[i] = current_id();
            wg.done();
          });
        }
        wg.wait();
      },
      options(2));
  std::sort(ids.begin(), ids.end());
  EXPECT_NE(ids.front(), 0u);
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_EQ(current_id(), 0u);  // not a fiber
}

// Live fibers beyond vm.max_map_count / 2 need the sysctl raised.
bool ensure_max_map_count(long needed, std::string* why) {
  long current = 0;
  std::ifstream("/proc/sys/vm/max_map_count") >> current;
  if (current >= needed) return true;
  if (geteuid() != 0) {
    *why = "vm.max_map_count is " + std::to_string(current) + ", needs " + std::to_string(needed) +
           " and only root can raise it";
    return false;
  }
  std::ofstream("/proc/sys/vm/max_map_count") << needed;
  std::ifstream("/proc/sys/vm/max_map_count") >> current;
  if (current >= needed) return true;
  *why = "could not raise vm.max_map_count to " + std::to_string(needed);
  return false;
}

TEST_P(RuntimeTest, HundredThousandLiveFibersSpawnAndJoin) {
#if FIBER_TEST_TSAN
  constexpr int kFibers = 5000;  // TSan keeps ~90 KiB of shadow per live fiber
#else
  constexpr int kFibers = 100000;
#endif
  std::string why;
  if (!ensure_max_map_count(2L * kFibers + 65536, &why)) GTEST_SKIP() << why;
  long sum = run(
      [] {
        WaitGroup started, gate;
        gate.add(1);
        std::vector<JoinHandle<int>> handles;
        handles.reserve(kFibers);
        for (int i = 0; i < kFibers; ++i) {
          started.add(1);
          handles.push_back(spawn_on(i % 2, [&, i] {
            started.done();
            gate.wait();  // every fiber is alive at once
            return i;
          }));
        }
        started.wait();
        gate.done();
        long total = 0;
        for (auto& h : handles) total += h.join();
        return total;
      },
      options(2));
  EXPECT_EQ(sum, static_cast<long>(kFibers) * (kFibers - 1) / 2);
}

TEST_P(RuntimeTest, JoinGivesBackValuesVoidMoveOnlyAndExceptions) {
  run(
      [] {
        EXPECT_EQ(spawn([] { return 7; }).join(), 7);
        bool ran = false;
        spawn([&] { ran = true; }).join();
        EXPECT_TRUE(ran);
        auto p = spawn_on(1, [] { return std::make_unique<int>(5); }).join();
        EXPECT_EQ(*p, 5);
        auto h = spawn_on(1, []() -> int { throw std::out_of_range("fiber failed"); });
        try {
          h.join();
          ADD_FAILURE() << "join() did not rethrow";
        } catch (const std::out_of_range& e) {
          EXPECT_STREQ(e.what(), "fiber failed");
        }
        EXPECT_FALSE(h.joinable());
        EXPECT_THROW(h.join(), std::logic_error);
      },
      options(2));
}

TEST_P(RuntimeTest, JoiningAFiberThatAlreadyEndedDoesNotPark) {
  run(
      [] {
        auto h = spawn([] { return 3; });
        yield();  // let it finish first
        EXPECT_EQ(h.join(), 3);
      },
      options());
}

TEST_P(RuntimeTest, YieldLetsTheOtherFibersRunInTurn) {
  std::vector<int> order;
  run(
      [&] {
        WaitGroup wg;
        for (int id = 0; id < 3; ++id) {
          wg.add(1);
          go([&, id] {
            for (int round = 0; round < 3; ++round) {
              order.push_back(id);
              yield();
            }
            wg.done();
          });
        }
        wg.wait();
      },
      options());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2}));
}

TEST_P(RuntimeTest, AFiberThatOnlyYieldsDoesNotStarveTimers) {
  run(
      [] {
        std::atomic<bool> stop{false};
        WaitGroup spinner;
        spinner.add(1);
        go([&] {
          while (!stop) yield();
          spinner.done();
        });
        for (int i = 0; i < 20; ++i) sleep_for(1ms);  // hangs if timers starve
        stop = true;
        spinner.wait();
      },
      options());
}

TEST_P(RuntimeTest, SleepersWakeInDeadlineOrder) {
  std::vector<int> order;
  run(
      [&] {
        WaitGroup wg;
        // One start for all: the deadlines, not the moments each fiber
        // first runs (a loaded machine may delay those), set the order.
        const auto start = std::chrono::steady_clock::now();
        for (int ms : {50, 10, 40, 20, 30}) {
          wg.add(1);
          go([&, ms] {
            sleep_until(start + std::chrono::milliseconds(ms));
            order.push_back(ms);
            wg.done();
          });
        }
        wg.wait();
      },
      options());
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30, 40, 50}));
}

TEST_P(RuntimeTest, SleepLastsAtLeastItsDurationAndNotMuchLonger) {
  run(
      [] {
        for (auto d : {1ms, 20ms}) {
          auto start = std::chrono::steady_clock::now();
          sleep_for(d);
          auto took = std::chrono::steady_clock::now() - start;
          EXPECT_GE(took, d);
          EXPECT_LT(took, d + 200ms);  // generous: these machines are shared
        }
        auto start = std::chrono::steady_clock::now();
        sleep_until(start + 15ms);
        EXPECT_GE(std::chrono::steady_clock::now(), start + 15ms);
        sleep_for(-5ms);  // in the past: returns at once
        sleep_until(start);
      },
      options(2));
}

TEST_P(RuntimeTest, AnEarlierTimerFromAnotherCoreCutsTheIdleWaitShort) {
  run(
      [] {
        // Scheduler 1 sleeps in its driver until a 10 s timer; then a fiber
        // arrives there with a 1 ms sleep. It must not wait the 10 s.
        WaitGroup long_sleeper_parked;
        long_sleeper_parked.add(1);
        std::atomic<bool> cancel{false};
        auto long_sleeper = spawn_on(1, [&] {
          long_sleeper_parked.done();
          for (int i = 0; i < 100 && !cancel; ++i) sleep_for(100ms);
        });
        long_sleeper_parked.wait();
        auto start = std::chrono::steady_clock::now();
        spawn_on(1, [] { sleep_for(1ms); }).join();
        EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
        cancel = true;
        long_sleeper.join();
      },
      options(2));
}

TEST_P(RuntimeTest, AnIdleRuntimeDoesNotSpin) {
  double cpu_ms = run(
      [] {
        sleep_for(50ms);  // let start-up settle
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        auto start = std::chrono::steady_clock::now();
        sleep_for(300ms);
        getrusage(RUSAGE_SELF, &after);
        auto wall = std::chrono::steady_clock::now() - start;
        EXPECT_GE(wall, 300ms);
        auto ms = [](const timeval& tv) { return tv.tv_sec * 1e3 + tv.tv_usec / 1e3; };
        return ms(after.ru_utime) - ms(before.ru_utime) + ms(after.ru_stime) - ms(before.ru_stime);
      },
      options(2));
  EXPECT_LT(cpu_ms, 30.0) << "an idle runtime used " << cpu_ms << " ms of CPU in 300 ms";
}

TEST_P(RuntimeTest, ASpawnStormFromAnotherCoreRunsEveryFiberOnce) {
#if FIBER_TEST_TSAN
  constexpr int kSpawns = 4000;  // TSan counts fibers as threads: at most 8128 alive
#else
  constexpr int kSpawns = 20000;
#endif
  std::atomic<int> ran{0};
  run(
      [&] {
        WaitGroup wg;
        wg.add(kSpawns);
        go_on(1, [&] {
          for (int i = 0; i < kSpawns; ++i) {
            go_on(0, [&] {
              ran.fetch_add(1, std::memory_order_relaxed);
              wg.done();
            });
            if (i % 100 == 0) yield();  // let scheduler 0 go idle now and then
          }
        });
        wg.wait();
      },
      options(2));
  EXPECT_EQ(ran.load(), kSpawns);
}

std::atomic<int> g_counted_live{0};
struct Counted {
  Counted() { ++g_counted_live; }
  ~Counted() { --g_counted_live; }
  int value = 0;
};

TEST_P(RuntimeTest, FiberLocalValuesArePerFiberAndDestroyedWithIt) {
  FiberLocal<Counted> local;
  run(
      [&] {
        WaitGroup wg;
        for (int i = 1; i <= 10; ++i) {
          wg.add(1);
          go_on(i % 2, [&, i] {
            local->value = i;
            yield();
            EXPECT_EQ(local->value, i);
            wg.done();
          });
        }
        wg.wait();
        spawn([&] { EXPECT_EQ(local->value, 0); }).join();  // a new fiber, a new value
      },
      options(2));
  EXPECT_EQ(g_counted_live.load(), 0);
  EXPECT_THROW(local.get(), std::logic_error);  // not a fiber
}

TEST_P(RuntimeTest, FibersSuspendedInCatchBlocksKeepTheirOwnException) {
  run(
      [] {
        WaitGroup wg;
        std::string a_got, b_got;
        auto fiber_body = [&](const char* mine, std::string* got) {
          try {
            throw std::runtime_error(mine);
          } catch (...) {
            yield();  // the other fiber throws and suspends in its catch block
            yield();
            try {
              throw;  // must rethrow *this* fiber's exception
            } catch (const std::runtime_error& e) {
              *got = e.what();
            }
          }
          wg.done();
        };
        wg.add(2);
        go([&] { fiber_body("a", &a_got); });
        go([&] { fiber_body("b", &b_got); });
        wg.wait();
        EXPECT_EQ(a_got, "a");
        EXPECT_EQ(b_got, "b");
        EXPECT_EQ(std::uncaught_exceptions(), 0);
      },
      options());
}

// --- bad input ---------------------------------------------------------------

TEST_P(RuntimeTest, BadOptionsAreRejectedWithAMessage) {
  Options o = options();
  o.schedulers = 0;
  EXPECT_THROW(run([] {}, o), std::invalid_argument);
  o.schedulers = 100000;
  EXPECT_THROW(run([] {}, o), std::invalid_argument);
  o = options();
  o.blocking_threads = 0;
  EXPECT_THROW(run([] {}, o), std::invalid_argument);
  o = options();
  o.blocking_shutdown_grace = -1ms;
  EXPECT_THROW(run([] {}, o), std::invalid_argument);
  o = options();
  o.stack_size = 0;
  EXPECT_THROW(run([] {}, o), std::invalid_argument);
  o.stack_size = size_t{1} << 40;
  EXPECT_THROW(run([] {}, o), std::invalid_argument);
}

TEST_P(RuntimeTest, BadSpawnsAreErrorsAtTheCall) {
  run(
      [] {
        try {
          go_on(2, [] {});
          ADD_FAILURE() << "go_on(2) did not throw";
        } catch (const std::out_of_range& e) {
          EXPECT_NE(std::string(e.what()).find("scheduler index 2"), std::string::npos);
        }
        EXPECT_THROW(go(SpawnOptions{0}, [] {}), std::invalid_argument);
        EXPECT_THROW(go(SpawnOptions{kMaxStackSize * 2}, [] {}), std::invalid_argument);
        EXPECT_THROW(run([] {}), std::logic_error);  // nested run
        // A callable bigger than a quarter of its stack is refused, not overflowed.
        struct Big {
          char bytes[8192];
          void operator()() const {}
        };
        EXPECT_THROW(go(SpawnOptions{kMinStackSize}, Big{}), std::length_error);
        // go() from a blocking-pool thread: not a scheduler thread.
        EXPECT_THROW(spawn_blocking([] { go([] {}); }), std::logic_error);
      },
      options(2));
}

TEST(RuntimeOutside, CallsThatNeedARuntimeThrowOutsideOne) {
  EXPECT_THROW(go([] {}), std::logic_error);
  EXPECT_THROW(go_on(0, [] {}), std::logic_error);
  EXPECT_THROW(yield(), std::logic_error);
  EXPECT_THROW(sleep_for(1ms), std::logic_error);
  EXPECT_THROW(scheduler_index(), std::logic_error);
  EXPECT_THROW(driver_info(), std::logic_error);
  WaitGroup wg;
  wg.add(1);
  EXPECT_THROW(wg.wait(), std::logic_error);
  EXPECT_THROW(wg.add(-2), std::logic_error);
  wg.done();
  Mutex mu;
  EXPECT_THROW(mu.unlock(), std::logic_error);
}

}  // namespace
}  // namespace fiber
