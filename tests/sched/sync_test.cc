// Mutex, CondVar and WaitGroup, on one core and across cores.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class SyncTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(SyncTest);

TEST_P(SyncTest, CondVarPingPongsBetweenFibersOnDifferentCores) {
#if FIBER_TEST_TSAN
  constexpr int kRounds = 2000;
#else
  constexpr int kRounds = 20000;
#endif
  run(
      [] {
        Mutex mu;
        CondVar cv;
        int turn = 0;  // even: ping's turn (core 0), odd: pong's turn (core 1)
        auto pong = spawn_on(1, [&] {
          EXPECT_EQ(scheduler_index(), 1u);
          std::unique_lock<Mutex> lk(mu);
          for (int i = 0; i < kRounds; ++i) {
            cv.wait(lk, [&] { return turn % 2 == 1; });
            ++turn;
            cv.notify_one();
          }
        });
        {
          std::unique_lock<Mutex> lk(mu);
          for (int i = 0; i < kRounds; ++i) {
            cv.wait(lk, [&] { return turn % 2 == 0; });
            ++turn;
            cv.notify_one();
          }
          cv.wait(lk, [&] { return turn == 2 * kRounds; });
        }
        pong.join();
        EXPECT_EQ(turn, 2 * kRounds);
      },
      options(2));
}

TEST_P(SyncTest, WaitGroupWaitsForFibersOnEveryCore) {
  std::atomic<int> finished{0};
  run(
      [&] {
        WaitGroup wg;
        for (int i = 0; i < 1000; ++i) {
          wg.add(1);
          go_on(i % 2, [&, i] {
            if (i % 3 == 0) sleep_for(std::chrono::microseconds(i));
            finished.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(finished.load(), 1000);
      },
      options(2));
}

TEST_P(SyncTest, ManyWaitersOnBothCoresAllWakeWhenTheCountReachesZero) {
  run(
      [] {
        WaitGroup gate, woke;
        gate.add(1);
        for (int i = 0; i < 100; ++i) {
          woke.add(1);
          go_on(i % 2, [&] {
            gate.wait();
            woke.done();
          });
        }
        yield();
        gate.done();
        woke.wait();
      },
      options(2));
}

TEST_P(SyncTest, MutexGivesExclusionAcrossCores) {
#if FIBER_TEST_TSAN
  constexpr int kIncrements = 2000;
#else
  constexpr int kIncrements = 20000;
#endif
  long counter = 0;  // plain: the mutex is the only thing protecting it
  run(
      [&] {
        Mutex mu;
        WaitGroup wg;
        for (int f = 0; f < 8; ++f) {
          wg.add(1);
          go_on(f % 2, [&] {
            for (int i = 0; i < kIncrements; ++i) {
              std::lock_guard<Mutex> g(mu);
              long seen = counter;
              if (i % 64 == 0) yield();  // hold the lock across a switch now and then
              counter = seen + 1;
            }
            wg.done();
          });
        }
        wg.wait();
      },
      options(2));
  EXPECT_EQ(counter, 8L * kIncrements);
}

TEST_P(SyncTest, TryLockNeverParks) {
  run(
      [] {
        Mutex mu;
        EXPECT_TRUE(mu.try_lock());
        EXPECT_FALSE(mu.try_lock());
        EXPECT_FALSE(spawn_on(1, [&] { return mu.try_lock(); }).join());
        mu.unlock();
        EXPECT_TRUE(spawn_on(1, [&] {
                      bool got = mu.try_lock();
                      if (got) mu.unlock();
                      return got;
                    }).join());
      },
      options(2));
}

TEST_P(SyncTest, CondVarWaitForTimesOutWhenNobodyNotifies) {
  run(
      [] {
        Mutex mu;
        CondVar cv;
        std::unique_lock<Mutex> lk(mu);
        auto start = std::chrono::steady_clock::now();
        EXPECT_EQ(cv.wait_for(lk, 20ms), std::cv_status::timeout);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
        EXPECT_TRUE(lk.owns_lock());
      },
      options());
}

TEST_P(SyncTest, CondVarWaitForReturnsNoTimeoutWhenNotifiedFromAnotherCore) {
  run(
      [] {
        Mutex mu;
        CondVar cv;
        bool flag = false;
        std::unique_lock<Mutex> lk(mu);
        go_on(1, [&] {
          std::lock_guard<Mutex> g(mu);
          flag = true;
          cv.notify_all();
        });
        while (!flag) EXPECT_EQ(cv.wait_for(lk, 10s), std::cv_status::no_timeout);
      },
      options(2));
}

TEST_P(SyncTest, TimedWaitsRacingNotifiesEachResolveExactlyOnce) {
  // Each round, a waiter on core 0 waits with a tiny timeout while core 1
  // notifies: whichever wins, the waiter wakes once and the next round proceeds.
  static constexpr int kRounds = 2000;
  run(
      [] {
        Mutex mu;
        CondVar cv, round_cv;
        int round = 0;
        int timeouts = 0, notified = 0;
        auto notifier = spawn_on(1, [&] {
          for (int r = 0; r < kRounds; ++r) {
            std::unique_lock<Mutex> lk(mu);
            round_cv.wait(lk, [&] { return round > r; });
            cv.notify_one();
          }
        });
        for (int r = 0; r < kRounds; ++r) {
          std::unique_lock<Mutex> lk(mu);
          ++round;
          round_cv.notify_one();
          if (cv.wait_for(lk, std::chrono::microseconds(r % 20)) == std::cv_status::timeout) {
            ++timeouts;
          } else {
            ++notified;
          }
        }
        notifier.join();
        EXPECT_EQ(timeouts + notified, kRounds);
      },
      options(2));
}

}  // namespace
}  // namespace fiber
