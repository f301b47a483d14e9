// Once, RWMutex, Semaphore and ErrGroup (Go's sync.Once, sync.RWMutex,
// x/sync/semaphore and x/sync/errgroup), on one core and across cores.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"
#include "tests/support/settle.h"

namespace fiber {
namespace {

class GoSyncTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(GoSyncTest);

// --- Once ------------------------------------------------------------------

TEST_P(GoSyncTest, OnceWhoseInitializerParksDoesNotHangASecondFiberOnTheSameCore) {
  run(
      [] {
        Once once;
        int calls = 0;
        int returned = 0;
        auto gate = *Chan<int>::make(0);
        WaitGroup wg;
        for (int i = 0; i < 2; ++i) {
          wg.add(1);
          go([&] {
            once.call([&] {
              ++calls;
              (void)gate.recv();  // parks inside the initializer
            });
            ++returned;
            wg.done();
          });
          testing::settle();
        }
        EXPECT_EQ(calls, 1);
        EXPECT_EQ(returned, 0);  // the second caller waits for the first's f
        EXPECT_FALSE(once.done());
        EXPECT_FALSE(gate.send(1));
        wg.wait();
        EXPECT_EQ(calls, 1);
        EXPECT_EQ(returned, 2);
        EXPECT_TRUE(once.done());
        once.call([&] { ++calls; });  // done: f is not run again
        EXPECT_EQ(calls, 1);
      },
      options(1));
}

TEST_P(GoSyncTest, OnceRunsOnceForFibersOnEveryCoreAndAllSeeItsResult) {
  run(
      [] {
        Once once;
        std::atomic<int> calls{0};
        int value = 0;  // written by f, read after call(): Once orders them
        std::atomic<int> seen{0};
        WaitGroup wg;
        for (int i = 0; i < 200; ++i) {
          wg.add(1);
          go_on(i % 2, [&] {
            once.call([&] {
              calls.fetch_add(1);
              for (int k = 0; k < 10; ++k) yield();
              value = 42;
            });
            if (value == 42) seen.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(calls.load(), 1);
        EXPECT_EQ(seen.load(), 200);
      },
      options(2));
}

TEST_P(GoSyncTest, OnceCalledFromItsOwnInitializerThrowsInsteadOfHanging) {
  run(
      [] {
        Once once;
        bool threw = false;
        once.call([&] {
          try {
            once.call([] {});
          } catch (const std::logic_error&) {
            threw = true;
          }
        });
        EXPECT_TRUE(threw);
        EXPECT_TRUE(once.done());
      },
      options(1));
}

TEST_P(GoSyncTest, OnceWhoseInitializerThrowsCountsAsDone) {
  run(
      [] {
        Once once;
        EXPECT_THROW(once.call([] { throw std::runtime_error("boom"); }), std::runtime_error);
        bool ran = false;
        once.call([&] { ran = true; });
        EXPECT_FALSE(ran);
      },
      options(1));
}

// --- RWMutex ---------------------------------------------------------------

TEST_P(GoSyncTest, ReadersShareTheLockAndExcludeAWriter) {
  run(
      [] {
        RWMutex mu;
        mu.rlock();
        EXPECT_TRUE(mu.try_rlock());  // a second reader gets in
        EXPECT_FALSE(mu.try_lock());  // a writer does not
        mu.runlock();
        mu.runlock();
        EXPECT_TRUE(mu.try_lock());
        EXPECT_FALSE(mu.try_rlock());
        mu.unlock();
        EXPECT_THROW(mu.unlock(), std::logic_error);
        EXPECT_THROW(mu.runlock(), std::logic_error);
      },
      options(1));
}

TEST_P(GoSyncTest, AWaitingWriterBlocksNewReadersAndTheReadersQueuedBehindItGoNext) {
  run(
      [] {
        RWMutex mu;
        bool writer_in = false, reader_in = false;
        auto release_writer = *Chan<int>::make(0);
        mu.rlock();
        go([&] {
          mu.lock();
          writer_in = true;
          (void)release_writer.recv();
          mu.unlock();
        });
        testing::settle();
        EXPECT_FALSE(writer_in);       // the reader holds the lock
        EXPECT_FALSE(mu.try_rlock());  // a waiting writer keeps new readers out
        go([&] {
          std::shared_lock r(mu);
          reader_in = true;
        });
        testing::settle();
        EXPECT_FALSE(reader_in);
        mu.runlock();  // the last reader out lets the writer in
        testing::settle();
        EXPECT_TRUE(writer_in);
        EXPECT_FALSE(reader_in);
        EXPECT_FALSE(release_writer.send(1));
        testing::settle();
        EXPECT_TRUE(reader_in);
        EXPECT_TRUE(mu.try_lock());
        mu.unlock();
      },
      options(1));
}

TEST_P(GoSyncTest, RWMutexKeepsWritersExclusiveAcrossCores) {
  run(
      [] {
        RWMutex mu;
        int a = 0, b = 0;  // a writer keeps them equal
        std::atomic<int> bad{0};
        WaitGroup wg;
        for (int i = 0; i < 40; ++i) {
          wg.add(1);
          go_on(i % 2, [&, i] {
            for (int k = 0; k < 50; ++k) {
              if (i % 4 == 0) {
                std::lock_guard w(mu);
                ++a;
                yield();
                ++b;
              } else {
                std::shared_lock r(mu);
                if (a != b) bad.fetch_add(1);
                yield();
                if (a != b) bad.fetch_add(1);
              }
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(bad.load(), 0);
        EXPECT_EQ(a, 10 * 50);
        EXPECT_EQ(b, a);
      },
      options(2));
}

// --- Semaphore -------------------------------------------------------------

TEST_P(GoSyncTest, SemaphoreServesWaitersInOrderSoABigRequestIsNotStarved) {
  run(
      [] {
        Semaphore sem(10);
        ASSERT_TRUE(sem.try_acquire(6));
        bool big_in = false, small_in = false;
        go([&] {
          sem.acquire(10);
          big_in = true;
        });
        testing::settle();
        go([&] {
          sem.acquire(1);  // 4 are free, but the big request is first
          small_in = true;
        });
        testing::settle();
        EXPECT_FALSE(big_in);
        EXPECT_FALSE(small_in);
        EXPECT_FALSE(sem.try_acquire(1));  // waiters first
        sem.release(6);
        testing::settle();
        EXPECT_TRUE(big_in);
        EXPECT_FALSE(small_in);
        sem.release(10);
        testing::settle();
        EXPECT_TRUE(small_in);
        sem.release(1);
        EXPECT_TRUE(sem.try_acquire(10));
        sem.release(10);
        EXPECT_THROW(sem.release(1), std::logic_error);
      },
      options(1));
}

TEST_P(GoSyncTest, SemaphoreAcquireGivesUpWhenItsContextEndsAndLetsTheNextWaiterIn) {
  run(
      [] {
        Semaphore sem(10);
        ASSERT_TRUE(sem.try_acquire(5));
        auto [ctx, cancel] = with_cancel(background());
        std::error_code big_err;
        bool big_done = false, small_in = false;
        go([&, ctx = ctx] {
          big_err = sem.acquire(ctx, 10);
          big_done = true;
        });
        testing::settle();
        go([&] {
          sem.acquire(1);
          small_in = true;
        });
        testing::settle();
        EXPECT_FALSE(big_done);
        EXPECT_FALSE(small_in);
        cancel();  // the head waiter leaves: the small one now fits
        testing::settle();
        EXPECT_TRUE(big_done);
        EXPECT_EQ(big_err, std::errc::operation_canceled);
        EXPECT_TRUE(small_in);
        EXPECT_EQ(sem.acquire(ctx, 1), std::errc::operation_canceled);  // ended: no units
        sem.release(6);
        EXPECT_TRUE(sem.try_acquire(10));  // the cancelled request took nothing
        sem.release(10);
      },
      options(1));
}

TEST_P(GoSyncTest, SemaphoreUnitsGrantedAsTheContextEndsAreGivenBack) {
  run(
      [] {
        Semaphore sem(4);
        ASSERT_TRUE(sem.try_acquire(4));
        auto [ctx, cancel] = with_cancel(background());
        std::error_code err;
        bool done = false;
        go([&, ctx = ctx] {
          err = sem.acquire(ctx, 3);
          done = true;
        });
        testing::settle();
        ASSERT_FALSE(done);
        // One core: the waiter is granted its units and then its context ends,
        // both before it runs again.
        sem.release(4);
        cancel();
        testing::settle();
        EXPECT_TRUE(done);
        EXPECT_EQ(err, std::errc::operation_canceled);
        EXPECT_TRUE(sem.try_acquire(4));  // the 3 units came back
        sem.release(4);
      },
      options(1));
}

TEST_P(GoSyncTest, SemaphoreBoundsConcurrencyAcrossCores) {
  run(
      [] {
        Semaphore sem(3);
        std::atomic<int> inside{0}, most{0};
        WaitGroup wg;
        for (int i = 0; i < 60; ++i) {
          wg.add(1);
          go_on(i % 2, [&] {
            sem.acquire(1);
            int now = inside.fetch_add(1) + 1;
            int m = most.load();
            while (now > m && !most.compare_exchange_weak(m, now)) {
            }
            yield();
            inside.fetch_sub(1);
            sem.release(1);
            wg.done();
          });
        }
        wg.wait();
        EXPECT_LE(most.load(), 3);
        EXPECT_GE(most.load(), 1);
      },
      options(2));
}

// --- ErrGroup --------------------------------------------------------------

TEST_P(GoSyncTest, ErrGroupReturnsTheFirstErrorAndCancelsItsContextWithItAsCause) {
  run(
      [] {
        ErrGroup g(background());
        Context ctx = g.context();
        const std::error_code boom = std::make_error_code(std::errc::io_error);
        std::atomic<int> saw_cancel{0};
        for (int i = 0; i < 10; ++i) {
          g.go_on(i % 2, [&, ctx] {
            (void)ctx.done().recv();  // until the group fails
            if (ctx.err() == std::errc::operation_canceled) saw_cancel.fetch_add(1);
            return ctx.err();
          });
        }
        g.go([&] { return boom; });
        EXPECT_EQ(g.wait(), boom);
        EXPECT_EQ(saw_cancel.load(), 10);
        EXPECT_EQ(ctx.err(), std::errc::operation_canceled);
        EXPECT_EQ(ctx.cause(), boom);
      },
      options(2));
}

TEST_P(GoSyncTest, ErrGroupWithoutErrorsReturnsNothingAndCancelsItsContextAtWait) {
  run(
      [] {
        ErrGroup g(background());
        std::atomic<int> ran{0};
        for (int i = 0; i < 20; ++i) {
          g.go_on(i % 2, [&] { ran.fetch_add(1); });  // void: never fails
        }
        EXPECT_FALSE(g.context().err());
        EXPECT_FALSE(g.wait());
        EXPECT_EQ(ran.load(), 20);
        EXPECT_EQ(g.context().err(), std::errc::operation_canceled);
        EXPECT_EQ(g.context().cause(), std::errc::operation_canceled);

        ErrGroup plain;  // errgroup.Group{}: no context
        plain.go([] { return std::error_code(); });
        EXPECT_FALSE(plain.wait());
        EXPECT_FALSE(plain.context().err());
      },
      options(2));
}

TEST_P(GoSyncTest, ErrGroupLimitCapsTheFibersRunningAtOnce) {
  run(
      [] {
        ErrGroup g;
        g.set_limit(2);
        std::atomic<int> inside{0}, most{0}, ran{0};
        for (int i = 0; i < 30; ++i) {
          g.go_on(i % 2, [&] {
            int now = inside.fetch_add(1) + 1;
            int m = most.load();
            while (now > m && !most.compare_exchange_weak(m, now)) {
            }
            yield();
            inside.fetch_sub(1);
            ran.fetch_add(1);
          });
        }
        EXPECT_FALSE(g.wait());
        EXPECT_EQ(ran.load(), 30);
        EXPECT_LE(most.load(), 2);

        auto gate = *Chan<int>::make(0);
        g.set_limit(1);
        g.go([&] { (void)gate.recv(); });
        EXPECT_FALSE(g.try_go([] {}));  // at the limit: not started
        EXPECT_THROW(g.set_limit(5), std::logic_error);
        gate.close();
        EXPECT_FALSE(g.wait());
      },
      options(2));
}

}  // namespace
}  // namespace fiber
