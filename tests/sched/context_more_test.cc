// Context values, causes and Go-worded errors (fiber/cancellation.h), and
// after_func() (fiber/after_func.h).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"
#include "tests/support/settle.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class ContextMoreTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(ContextMoreTest);

const ContextKey<std::string> kUser;
const ContextKey<int> kDepth;
const ContextKey<std::string> kOther;

TEST_P(ContextMoreTest, ErrorsReadLikeGoAndCompareEqualToTheErrcCodes) {
  run(
      [] {
        auto [dead, cancel_dead] = with_timeout(background(), 0ms);
        std::error_code e = dead.err();
        EXPECT_EQ(e.message(), "context deadline exceeded");
        EXPECT_EQ(e, std::errc::timed_out);
        EXPECT_EQ(e, ContextError::kDeadlineExceeded);
        EXPECT_NE(e, std::errc::operation_canceled);
        EXPECT_EQ(e.value(), ETIMEDOUT);
        EXPECT_STREQ(e.category().name(), "fiber.context");

        auto [ctx, cancel] = with_cancel(background());
        cancel();
        e = ctx.err();
        EXPECT_EQ(e.message(), "context canceled");
        EXPECT_EQ(e, std::errc::operation_canceled);
        EXPECT_EQ(e, ContextError::kCanceled);
        EXPECT_NE(e, std::errc::timed_out);
        // Channel operations and sleeps hand the same code on.
        EXPECT_EQ(sleep_for(ctx, 1h).message(), "context canceled");
        EXPECT_EQ(sleep_for(dead, 1h).message(), "context deadline exceeded");
        cancel_dead();
      },
      options(1));
}

TEST_P(ContextMoreTest, WithValueCarriesValuesToDescendantsAndOtherCores) {
  run(
      [] {
        Context root = background();
        EXPECT_EQ(root.value(kUser), nullptr);
        Context a = with_value(root, kUser, "ann");
        Context b = with_value(a, kDepth, 1);
        auto [c, cancel] = with_cancel(b);  // a cancellable child keeps the values
        Context d = with_value(c, kUser, std::string("bob"));  // the nearest wins
        ASSERT_NE(a.value(kUser), nullptr);
        EXPECT_EQ(*a.value(kUser), "ann");
        EXPECT_EQ(a.value(kDepth), nullptr);  // a parent does not see a child's
        EXPECT_EQ(*c.value(kUser), "ann");
        EXPECT_EQ(*c.value(kDepth), 1);
        EXPECT_EQ(*d.value(kUser), "bob");
        EXPECT_EQ(d.value(kOther), nullptr);  // same type, another key
        std::string seen;
        spawn_on(1, [&, d = d] { seen = *d.value(kUser); }).join();
        EXPECT_EQ(seen, "bob");
        cancel();  // a value context ends with its parent
        EXPECT_EQ(d.err(), std::errc::operation_canceled);
        EXPECT_FALSE(a.err());
      },
      options(2));
}

TEST_P(ContextMoreTest, CancelCauseIsWhatCauseReturnsAndChildrenInheritIt) {
  run(
      [] {
        const std::error_code why = std::make_error_code(std::errc::connection_reset);
        auto [ctx, cancel] = with_cancel_cause(background());
        auto [child, cancel_child] = with_cancel(ctx);
        EXPECT_FALSE(ctx.cause());  // live
        EXPECT_FALSE(child.cause());
        go_on(1, [cancel = cancel, why] { cancel(why); });
        (void)child.done().recv();
        EXPECT_EQ(ctx.err(), ContextError::kCanceled);
        EXPECT_EQ(ctx.cause(), why);
        EXPECT_EQ(child.err(), ContextError::kCanceled);
        EXPECT_EQ(child.cause(), why);
        cancel(std::make_error_code(std::errc::io_error));  // only the first counts
        EXPECT_EQ(ctx.cause(), why);
        auto [late, cancel_late] = with_cancel(ctx);  // born under an ended parent
        EXPECT_EQ(late.cause(), why);

        auto [plain, cancel_plain] = with_cancel_cause(background());
        cancel_plain({});  // no cause: cause() is err()
        EXPECT_EQ(plain.cause(), ContextError::kCanceled);
        auto [timed, cancel_timed] = with_timeout(background(), 0ms);
        EXPECT_EQ(timed.cause(), ContextError::kDeadlineExceeded);
        EXPECT_FALSE(background().cause());
        cancel_child();
        cancel_late();
        cancel_timed();
      },
      options(2));
}

TEST_P(ContextMoreTest, AfterFuncRunsTheFunctionInItsOwnFiberOnThisCore) {
  run(
      [] {
        auto done = *Chan<uint64_t>::make(1);
        const uint64_t me = current_id();
        const unsigned core = scheduler_index();
        unsigned ran_on = 99;
        FuncTimer t = after_func(1ms, [&, done] {
          ran_on = scheduler_index();
          (void)done.try_send(current_id());
        });
        std::optional<uint64_t> id = done.recv();
        ASSERT_TRUE(id.has_value());
        EXPECT_NE(*id, me);
        EXPECT_EQ(ran_on, core);
        EXPECT_FALSE(t.stop());      // it has run
        EXPECT_FALSE(t.reset(0ms));  // not armed; re-armed now: it runs again
        EXPECT_TRUE(done.recv().has_value());
      },
      options(2));
}

TEST_P(ContextMoreTest, AStoppedAfterFuncNeverRuns) {
  run(
      [] {
        std::atomic<int> runs{0};
        FuncTimer t = after_func(0ms, [&] { runs.fetch_add(1); });
        EXPECT_TRUE(t.stop());  // before the scheduler loop could fire it
        EXPECT_FALSE(t.stop());
        // A later timer with a later deadline: once its function has run, the
        // stopped one would have run first.
        auto done = *Chan<int>::make(1);
        FuncTimer marker = after_func(1ms, [done] { (void)done.try_send(1); });
        (void)done.recv();
        testing::settle();
        EXPECT_EQ(runs.load(), 0);

        // Stopped from another core.
        FuncTimer far = after_func(1h, [&] { runs.fetch_add(1); });
        bool stopped = false;
        spawn_on(1, [&] { stopped = far.stop(); }).join();
        EXPECT_TRUE(stopped);
        EXPECT_EQ(runs.load(), 0);
      },
      options(2));
}

TEST_P(ContextMoreTest, DroppingAFuncTimerDoesNotStopIt) {
  run(
      [] {
        auto done = *Chan<int>::make(1);
        {
          (void)after_func(0ms, [done] { (void)done.try_send(7); });
        }
        EXPECT_EQ(done.recv(), 7);
      },
      options(1));
}

}  // namespace
}  // namespace fiber
