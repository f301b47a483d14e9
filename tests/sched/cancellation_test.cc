// Context (fiber/cancellation.h): cancellation, deadlines, propagation to children,
// channel operations and sleeps, and CancelHook.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class ContextTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(ContextTest);

TEST_P(ContextTest, BackgroundIsNeverCancelled) {
  run(
      [] {
        Context bg = background();
        EXPECT_FALSE(bg.err());
        EXPECT_TRUE(bg.done().nil());
        EXPECT_FALSE(bg.deadline().has_value());
        EXPECT_EQ(select(on_recv(bg.done()), on_default()), 1);
        EXPECT_FALSE(sleep_for(bg, 1ms));
      },
      options(1));
}

TEST_P(ContextTest, CancelClosesDoneAndSetsErrOnce) {
  run(
      [] {
        auto [ctx, cancel] = with_cancel(background());
        EXPECT_FALSE(ctx.err());
        EXPECT_EQ(select(on_recv(ctx.done()), on_default()), 1);
        cancel();
        EXPECT_EQ(ctx.err(), std::errc::operation_canceled);
        EXPECT_EQ(ctx.done().recv(), std::nullopt);  // closed
        cancel();                                    // idempotent
        EXPECT_EQ(ctx.err(), std::errc::operation_canceled);
      },
      options(1));
}

TEST_P(ContextTest, CancelWakesAThousandWaitersOnBothCores) {
#if FIBER_TEST_TSAN
  static constexpr int kWaiters = 300;
#else
  static constexpr int kWaiters = 1000;
#endif
  run(
      [] {
        auto [ctx, cancel] = with_cancel(background());
        auto empty = *Chan<int>::make(0);  // nobody ever sends
        auto full = *Chan<int>::make(0);   // nobody ever receives
        std::atomic<int> parked{0};
        std::atomic<int> woke{0};
        WaitGroup wg;
        for (int i = 0; i < kWaiters; ++i) {
          wg.add(1);
          go_on(i % 2, [&, ctx = ctx, i] {
            parked.fetch_add(1);
            if (i % 3 == 0) {
              EXPECT_EQ(empty.recv(ctx).error, std::errc::operation_canceled);
            } else if (i % 3 == 1) {
              EXPECT_EQ(full.send(ctx, i), std::errc::operation_canceled);
            } else {
              EXPECT_EQ(sleep_for(ctx, 1h), std::errc::operation_canceled);
            }
            woke.fetch_add(1);
            wg.done();
          });
        }
        // Let the waiters start (they may or may not have parked: both must work).
        while (parked.load() < kWaiters) yield();
        cancel();
        wg.wait();
        EXPECT_EQ(woke.load(), kWaiters);
      },
      options(2));
}

TEST_P(ContextTest, ChildrenEndWithTheirParent) {
  run(
      [] {
        auto [parent, cancel_parent] = with_cancel(background());
        auto [child, cancel_child] = with_cancel(parent);
        Context grandchild;
        {
          auto [mid, cancel_mid] = with_cancel(child);
          grandchild = with_cancel(mid).ctx;  // `mid`'s handles die here
        }
        auto [sibling, cancel_sibling] = with_cancel(parent);
        cancel_sibling();  // a child's cancel does not reach its parent
        EXPECT_FALSE(parent.err());
        cancel_parent();
        EXPECT_EQ(child.err(), std::errc::operation_canceled);
        EXPECT_EQ(grandchild.err(), std::errc::operation_canceled);
        EXPECT_EQ(grandchild.done().recv(), std::nullopt);
        // A child of an ended context starts ended.
        auto [late, cancel_late] = with_cancel(parent);
        EXPECT_EQ(late.err(), std::errc::operation_canceled);
      },
      options(1));
}

TEST_P(ContextTest, DeadlineEndsTheContextWithTimedOut) {
  run(
      [] {
        auto start = std::chrono::steady_clock::now();
        auto [ctx, cancel] = with_timeout(background(), 3ms);
        ASSERT_TRUE(ctx.deadline().has_value());
        EXPECT_EQ(ctx.done().recv(), std::nullopt);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 3ms);
        EXPECT_EQ(ctx.err(), std::errc::timed_out);
        cancel();  // after the deadline: err stays timed_out
        EXPECT_EQ(ctx.err(), std::errc::timed_out);
        // A past deadline ends the context at once.
        auto [past, c2] = with_deadline(background(), std::chrono::steady_clock::now() - 1s);
        EXPECT_EQ(past.err(), std::errc::timed_out);
        // A child inherits the earlier deadline of its parent, and its error.
        auto [parent, c3] = with_timeout(background(), 2ms);
        auto [child, c4] = with_timeout(parent, 1h);
        EXPECT_EQ(child.deadline(), parent.deadline());
        EXPECT_EQ(child.done().recv(), std::nullopt);
        EXPECT_EQ(child.err(), std::errc::timed_out);
      },
      options(1));
}

TEST_P(ContextTest, DeadlineMadeOnOneCoreWakesAWaiterOnTheOther) {
  run(
      [] {
        auto made = spawn_on(1, [] { return with_timeout(background(), 2ms); });
        WithCancel wc = made.join();
        auto ch = *Chan<int>::make(0);
        EXPECT_EQ(ch.recv(wc.ctx).error, std::errc::timed_out);
        EXPECT_EQ(sleep_for(wc.ctx, 1h), std::errc::timed_out);
      },
      options(2));
}

TEST_P(ContextTest, BoundedOperationsSucceedWhenTheChannelIsReady) {
  run(
      [] {
        auto [ctx, cancel] = with_cancel(background());
        auto ch = *Chan<std::unique_ptr<int>>::make(1);
        EXPECT_FALSE(ch.send(ctx, std::make_unique<int>(7)));
        auto r = ch.recv(ctx);
        ASSERT_TRUE(r);
        EXPECT_EQ(**r, 7);
        EXPECT_FALSE(ch.close());
        EXPECT_TRUE(ch.recv(ctx).closed());
        EXPECT_EQ(ch.send(ctx, nullptr), std::errc::broken_pipe);
        cancel();
        auto other = *Chan<int>::make(1);
        EXPECT_EQ(other.send(ctx, 1), std::errc::operation_canceled);
      },
      options(1));
}

TEST_P(ContextTest, CancelHookRunsOnceOnCancelAndNotAfterStop) {
  run(
      [] {
        auto [ctx, cancel] = with_cancel(background());
        std::atomic<int> ran{0};
        std::atomic<int> stopped_ran{0};
        CancelHook hook(ctx, [&] { ran.fetch_add(1); });
        CancelHook stopped(ctx, [&] { stopped_ran.fetch_add(1); });
        EXPECT_TRUE(stopped.stop());
        EXPECT_FALSE(stopped.stop());
        auto h = spawn_on(1, [cancel = cancel] { cancel(); });  // runs on core 1
        h.join();
        EXPECT_EQ(ran.load(), 1);
        EXPECT_EQ(stopped_ran.load(), 0);
        EXPECT_FALSE(hook.stop());  // it ran
        cancel();
        EXPECT_EQ(ran.load(), 1);
        // Registered on an ended context: runs at once, here.
        bool now = false;
        CancelHook late(ctx, [&] { now = true; });
        EXPECT_TRUE(now);
        // Background never runs it.
        bool never = false;
        {
          CancelHook bg(background(), [&] { never = true; });
        }
        EXPECT_FALSE(never);
      },
      options(2));
}

// stop() racing cancel() on another core: after stop() returns, the callback is not
// running and never runs again, and it ran at most once.
TEST_P(ContextTest, CancelHookStopRacingCancelNeverLeavesTheCallbackRunning) {
#if FIBER_TEST_TSAN
  constexpr int kRounds = 500;
#else
  constexpr int kRounds = 5000;
#endif
  run(
      [] {
        for (int r = 0; r < kRounds; ++r) {
          auto [ctx, cancel] = with_cancel(background());
          std::atomic<int> inside{0};
          std::atomic<int> runs{0};
          auto hook = std::make_unique<CancelHook>(ctx, [&] {
            inside.store(1);
            runs.fetch_add(1);
            inside.store(0);
          });
          auto h = spawn_on(1, [cancel = cancel] { cancel(); });
          bool stopped = hook->stop();
          EXPECT_EQ(inside.load(), 0);
          hook.reset();
          h.join();
          EXPECT_EQ(runs.load(), stopped ? 0 : 1);
        }
      },
      options(2));
}

TEST_P(ContextTest, JoinWaitEndsWithTheContextAndTheHandleStaysJoinable) {
  run(
      [] {
        Chan<int> release = *Chan<int>::make(0);
        auto worker = spawn_on(1, [release] { return *release.recv() * 2; });
        {
          auto [ctx, cancel] = with_timeout(background(), 20ms);
          EXPECT_EQ(worker.wait(ctx), std::errc::timed_out);
        }
        {
          auto [ctx, cancel] = with_cancel(background());
          cancel();
          EXPECT_EQ(worker.wait(ctx), std::errc::operation_canceled);
        }
        EXPECT_TRUE(worker.joinable());
        ASSERT_FALSE(release.send(21));
        auto [ctx, cancel] = with_cancel(background());
        EXPECT_EQ(worker.wait(ctx), std::error_code());  // the fiber returned
        cancel();
        EXPECT_EQ(worker.join(), 42);
      },
      options(2));
}

}  // namespace
}  // namespace fiber
