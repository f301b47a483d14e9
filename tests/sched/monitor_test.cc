// The monitor: stall reports (Options::stall_threshold), polling by time, and
// time slices (Options::time_slice, fiber::maybe_yield()). Each test waits on
// what the runtime says (its counters), never on the clock; the clock only
// bounds a loop so that a broken runtime fails instead of hanging.
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "fiber/chan.h"
#include "fiber/join_handle.h"
#include "fiber/runtime.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class MonitorTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(MonitorTest);

uint64_t stalls() { return fiber::stats()[0].stalls; }

// Spins without a runtime call until the monitor has reported a stall.
[[gnu::noinline]] bool SpinUntilStallReported() {
  const auto give_up = Clock::now() + 30s;
  while (stalls() == 0) {
    if (Clock::now() > give_up) return false;
  }
  return true;
}

// Sits in a blocking system call, 5 ms at a time, until a stall is reported.
[[gnu::noinline]] bool BlockInPollUntilStallReported() {
  const auto give_up = Clock::now() + 30s;
  while (stalls() == 0) {
    if (Clock::now() > give_up) return false;
    ::poll(nullptr, 0, 5);
  }
  return true;
}

TEST_P(MonitorTest, AStallIsReportedWithTheFiberItsSpawnSiteAndItsStack) {
  Options o = options(1);
  o.stall_threshold = 20ms;
  ::testing::internal::CaptureStderr();
  uint64_t id = 0;
  int line = 0;
  bool reported = false;
  SchedulerStats st;
  run(
      [&] {
        line = __LINE__ + 1;
        auto h = fiber::spawn([&] {
          id = current_id();
          reported = SpinUntilStallReported();
        });
        h.join();
        st = fiber::stats()[0];
      },
      o);
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(reported) << err;
  EXPECT_EQ(st.stalls, 1u);
  EXPECT_GE(st.longest_stall_ns, 20'000'000u);
  EXPECT_NE(err.find("fiber: stall on scheduler 0: fiber " + std::to_string(id) + " "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("monitor_test.cc:" + std::to_string(line)), std::string::npos) << err;
  EXPECT_NE(err.find("stall on scheduler 0 ended: fiber " + std::to_string(id)), std::string::npos)
      << err;
#if !defined(FIBER_TEST_TSAN)
  // TSan delays signals to its own safe points, so the probe may go unanswered.
  EXPECT_NE(err.find("unwound in the thread"), std::string::npos) << err;
  EXPECT_NE(err.find("SpinUntilStallReported"), std::string::npos) << err;
#endif
}

TEST_P(MonitorTest, ABlockingSystemCallIsNamedInTheReport) {
  Options o = options(1);
  o.stall_threshold = 20ms;
  ::testing::internal::CaptureStderr();
  bool reported = false;
  run([&] { fiber::spawn([&] { reported = BlockInPollUntilStallReported(); }).join(); }, o);
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(reported) << err;
  EXPECT_TRUE(err.find("blocked in the system call poll") != std::string::npos ||
              err.find("blocked in the system call ppoll") != std::string::npos)
      << err;
  EXPECT_NE(err.find("monitor_test.cc:"), std::string::npos) << err;
  EXPECT_NE(err.find("BlockInPollUntilStallReported"), std::string::npos) << err;
}

// What must not fire: fibers that switch often, long sleeps, a fiber parked on
// a channel for a long time, an idle runtime.
TEST_P(MonitorTest, BusyFibersLongSleepsAndLongParksAreNoStall) {
  Options o = options(2);
  o.stall_threshold = 20ms;
  ::testing::internal::CaptureStderr();
  std::vector<SchedulerStats> st;
  run(
      [&] {
        auto ch = *Chan<int>::make(0);
        auto parked = fiber::spawn_on(1, [ch] { return ch.recv().value_or(-1); });
        auto sleeper = fiber::spawn([] { fiber::sleep_for(100ms); });
        // Ping-pong between the cores for about as long as the sleep.
        auto ping = *Chan<int>::make(0);
        auto pong = *Chan<int>::make(0);
        auto echo = fiber::spawn_on(1, [ping, pong] {
          while (auto v = ping.recv()) (void)pong.send(*v);
        });
        const auto until = Clock::now() + 100ms;
        for (int i = 0; Clock::now() < until; ++i) {
          (void)ping.send(i);
          (void)pong.recv();
        }
        ping.close();
        echo.join();
        sleeper.join();
        (void)ch.send(7);
        EXPECT_EQ(parked.join(), 7);
        st = fiber::stats();
      },
      o);
  std::string err = ::testing::internal::GetCapturedStderr();
  for (const SchedulerStats& s : st) EXPECT_EQ(s.stalls, 0u) << "scheduler " << s.index;
  EXPECT_EQ(err.find("stall"), std::string::npos) << err;
}

TEST_P(MonitorTest, AThresholdOfZeroReportsNothing) {
  Options o = options(1);
  o.stall_threshold = 0ns;
  o.time_slice = 0ns;
  ::testing::internal::CaptureStderr();
  uint64_t n = 1;
  run(
      [&] {
        const auto until = Clock::now() + 60ms;
        while (Clock::now() < until) {
        }
        n = stalls();
      },
      o);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(err.find("stall"), std::string::npos) << err;
}

TEST_P(MonitorTest, BadThresholdsAreRefused) {
  Options o = options(1);
  o.stall_threshold = -1ms;
  EXPECT_THROW(run([] {}, o), std::invalid_argument);
  o = options(1);
  o.time_slice = -1ms;
  EXPECT_THROW(run([] {}, o), std::invalid_argument);
  ::setenv("FIBER_STALL_THRESHOLD_MS", "ten", 1);
  EXPECT_THROW(run([] {}, options(1)), std::invalid_argument);
  ::unsetenv("FIBER_STALL_THRESHOLD_MS");
}

// Fairness in time: a fiber that yields every ~2 ms must not hold back a due
// timer for the 64 switches of a scheduler's budget.
TEST_P(MonitorTest, ATimerFiresWithinAFewYieldsOfAFiberThatYieldsOften) {
  Options o = options(1);
  o.stall_threshold = 0ns;
  int yields = 0;
  run(
      [&] {
        std::atomic<bool> fired{false};
        fiber::go([&] {
          fiber::sleep_for(1ms);
          fired = true;
        });
        fiber::yield();  // the sleeper arms its timer
        const auto give_up = Clock::now() + 30s;
        while (!fired && Clock::now() < give_up) {
          const auto until = Clock::now() + 2ms;
          while (Clock::now() < until) {
          }
          fiber::yield();
          ++yields;
        }
      },
      o);
  // Polled by switches only, the timer waits for 64 of them.
  EXPECT_LE(yields, 16);
}

// Time slices: a fiber whose channel operations never block still lets the
// other fibers of its core run once its slice is up...
TEST_P(MonitorTest, ASliceThatRanOutEndsAtTheNextChannelOperation) {
  Options o = options(1);
  o.stall_threshold = 0ns;
  o.time_slice = 5ms;
  bool other_ran = false;
  uint64_t slice_yields = 0;
  run(
      [&] {
        auto ch = *Chan<int>::make(1);
        fiber::go([&] { other_ran = true; });
        const auto give_up = Clock::now() + 30s;
        while (!other_ran && Clock::now() < give_up) {
          (void)ch.send(1);
          (void)ch.recv();
        }
        slice_yields = fiber::stats()[0].slice_yields;
      },
      o);
  EXPECT_TRUE(other_ran);
  EXPECT_GE(slice_yields, 1u);
}

// ...and so does a compute loop that calls maybe_yield()...
TEST_P(MonitorTest, MaybeYieldEndsASliceThatRanOut) {
  Options o = options(1);
  o.stall_threshold = 0ns;
  o.time_slice = 5ms;
  bool other_ran = false;
  run(
      [&] {
        fiber::go([&] { other_ran = true; });
        const auto give_up = Clock::now() + 30s;
        uint64_t x = 0;
        while (!other_ran && Clock::now() < give_up) {
          x = x * 6364136223846793005u + 1;
          fiber::maybe_yield();
        }
        EXPECT_NE(x, 1u);
      },
      o);
  EXPECT_TRUE(other_ran);
}

// ...but not when slices are off, nor before the slice is up.
TEST_P(MonitorTest, WithoutSlicesAFiberKeepsItsCore) {
  Options o = options(1);
  o.stall_threshold = 0ns;
  o.time_slice = 0ns;
  bool ran_during_loop = true;
  run(
      [&] {
        auto ch = *Chan<int>::make(1);
        bool other_ran = false;
        fiber::go([&] { other_ran = true; });
        const auto until = Clock::now() + 50ms;
        while (Clock::now() < until) {
          (void)ch.send(1);
          (void)ch.recv();
          fiber::maybe_yield();
        }
        ran_during_loop = other_ran;
      },
      o);
  EXPECT_FALSE(ran_during_loop);
}

TEST_P(MonitorTest, MaybeYieldOutsideAFiberDoesNothing) {
  fiber::maybe_yield();
  run([] { fiber::maybe_yield(); }, options(1));
}

}  // namespace
}  // namespace fiber
