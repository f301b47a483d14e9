// signal_notify / signal_stop / notify_context (fiber/signal.h) on both drivers,
// with signals raised by the process to itself.
#include "fiber/signal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"
#include "tests/support/settle.h"

namespace fiber {
namespace {

class SignalTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(SignalTest);

void (*current_handler(int sig))(int) {
  struct sigaction sa = {};
  sigaction(sig, nullptr, &sa);
  return sa.sa_handler;
}

TEST_P(SignalTest, NotifyRelaysOnlyTheSignalsEachChannelAskedFor) {
  run(
      [] {
        Chan<int> usr1(4), usr2(4);
        ASSERT_TRUE(signal_notify(usr1, {SIGUSR1}));
        ASSERT_TRUE(signal_notify(usr2, {SIGUSR2}));
        ASSERT_EQ(raise(SIGUSR1), 0);
        EXPECT_EQ(usr1.recv(), SIGUSR1);
        EXPECT_EQ(kill(getpid(), SIGUSR2), 0);
        EXPECT_EQ(usr2.recv(), SIGUSR2);
        // Each was relayed in its own batch, after the other channel was looked at.
        EXPECT_FALSE(usr1.try_recv());
        EXPECT_FALSE(usr2.try_recv());
        signal_stop(usr1);
        signal_stop(usr2);
      },
      options(2));
}

TEST_P(SignalTest, StopPutsBackTheHandlerThatWasThere) {
  run(
      [] {
        signal(SIGUSR1, SIG_IGN);
        Chan<int> ch(1);
        ASSERT_TRUE(signal_notify(ch, {SIGUSR1}));
        EXPECT_NE(current_handler(SIGUSR1), SIG_IGN);
        signal_stop(ch);
        EXPECT_EQ(current_handler(SIGUSR1), SIG_IGN);
        ASSERT_EQ(raise(SIGUSR1), 0);  // ignored again: no relay, no crash
        EXPECT_FALSE(ch.try_recv());
        signal(SIGUSR1, SIG_DFL);
      },
      options(1));
}

TEST_P(SignalTest, NotifyRefusesSignalsThatCannotBeCaughtAndNilChannels) {
  run(
      [] {
        Chan<int> ch(1);
        EXPECT_EQ(signal_notify(ch, {SIGKILL}).error(), std::errc::invalid_argument);
        EXPECT_EQ(signal_notify(ch, {0}).error(), std::errc::invalid_argument);
        EXPECT_EQ(signal_notify(Chan<int>(), {SIGUSR1}).error(), std::errc::invalid_argument);
      },
      options(1));
}

TEST_P(SignalTest, NotifyContextEndsOnTheSignalForFibersOnEveryCore) {
  run(
      [] {
        auto [ctx, stop] = notify_context(background(), {SIGUSR1, SIGUSR2});
        EXPECT_FALSE(ctx.err());
        WaitGroup wg;
        for (unsigned i = 0; i < 2; ++i) {
          wg.add(1);
          go_on(i, [&, ctx = ctx] {
            (void)ctx.done().recv();
            wg.done();
          });
        }
        go_on(1, [] { kill(getpid(), SIGUSR2); });
        wg.wait();
        EXPECT_EQ(ctx.err(), std::errc::operation_canceled);
        stop();
      },
      options(2));
}

TEST_P(SignalTest, StoppedNotifyContextNoLongerCatchesTheSignal) {
  run(
      [] {
        auto [ctx, stop] = notify_context(background(), {SIGUSR1});
        stop();
        EXPECT_EQ(ctx.err(), std::errc::operation_canceled);
        testing::settle();  // the context's fiber sees the stop and unregisters
        EXPECT_EQ(current_handler(SIGUSR1), SIG_DFL);
      },
      options(1));
}

}  // namespace
}  // namespace fiber
