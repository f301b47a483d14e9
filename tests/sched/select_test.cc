// select: readiness, default, timeout, nil channels, closing, fairness, and a
// stress across cores after Go's TestSelectStress.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class SelectTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(SelectTest);

TEST_P(SelectTest, DefaultFiresWhenNothingIsReady) {
  run(
      [] {
        auto a = *Chan<int>::make(1);
        bool dflt = false;
        EXPECT_EQ(select(on_recv(a), on_default([&] { dflt = true; })), 1);
        EXPECT_TRUE(dflt);
        EXPECT_FALSE(a.try_send(5));
        int got = 0;
        EXPECT_EQ(select(on_recv(a, [&](std::optional<int> v) { got = *v; }), on_default()), 0);
        EXPECT_EQ(got, 5);
      },
      options(1));
}

TEST_P(SelectTest, NilChannelCasesNeverFire) {
  run(
      [] {
        Chan<int> nil;
        auto a = *Chan<int>::make(1);
        EXPECT_FALSE(a.try_send(1));
        // The nil send and nil recv are ignored; the ready case fires.
        EXPECT_EQ(select(on_send(nil, 1), on_recv(nil), on_recv(a)), 2);
        // Only nil cases and a default: the default.
        EXPECT_EQ(select(on_recv(nil), on_default()), 1);
        // Only nil cases: nothing can ever fire; select says so instead of hanging.
        EXPECT_EQ(select(on_recv(nil), on_send(nil, 2)), kSelectNothing);
        // Nil cases and a timeout: the timeout.
        EXPECT_EQ(select(on_recv(nil), on_timeout(1ms)), 1);
      },
      options(1));
}

TEST_P(SelectTest, TimeoutFiresWhenNoChannelIsReady) {
  run(
      [] {
        auto a = *Chan<int>::make(0);
        bool timed_out = false;
        EXPECT_EQ(select(on_recv(a), on_timeout(2ms, [&] { timed_out = true; })), 1);
        EXPECT_TRUE(timed_out);
        // A ready channel wins over an expired timeout.
        auto b = *Chan<int>::make(1);
        EXPECT_FALSE(b.try_send(1));
        EXPECT_EQ(select(on_recv(b), on_timeout(0ms)), 0);
        // The channel is still usable: no stale waiter was left on it.
        EXPECT_EQ(a.try_send(3), std::errc::resource_unavailable_try_again);
      },
      options(1));
}

TEST_P(SelectTest, SendAndReceiveCasesMatchFibersOnAnotherCore) {
  run(
      [] {
        auto in = *Chan<int>::make(0);
        auto out = *Chan<int>::make(0);
        auto h = spawn_on(1, [in, out]() mutable {
          EXPECT_FALSE(in.send(41));
          return out.recv();
        });
        int got = 0;
        EXPECT_EQ(select(on_recv(in, [&](std::optional<int> v) { got = *v; }), on_timeout(1h)), 0);
        EXPECT_EQ(got, 41);
        bool sent = false;
        EXPECT_EQ(
            select(on_send(out, got + 1, [&](std::error_code ec) { sent = !ec; }), on_timeout(1h)),
            0);
        EXPECT_TRUE(sent);
        EXPECT_EQ(h.join(), 42);
      },
      options(2));
}

TEST_P(SelectTest, CloseWakesASelectingReceiverWithNullopt) {
  run(
      [] {
        auto a = *Chan<int>::make(0);
        auto b = *Chan<int>::make(0);
        auto h = spawn_on(1, [a, b] {
          bool closed = false;
          int idx = select(on_recv(a, [&](std::optional<int> v) { closed = !v; }),
                           on_recv(b, [&](std::optional<int>) {}));
          EXPECT_TRUE(closed);
          return idx;
        });
        EXPECT_FALSE(a.close());
        EXPECT_EQ(h.join(), 0);
        // The select's waiter on b was removed: a plain send on b finds no receiver.
        EXPECT_EQ(b.try_send(1), std::errc::resource_unavailable_try_again);
      },
      options(2));
}

TEST_P(SelectTest, SendCaseOnClosedChannelReportsTheError) {
  run(
      [] {
        auto a = *Chan<int>::make(0);
        EXPECT_FALSE(a.close());
        std::error_code err;
        EXPECT_EQ(select(on_send(a, 1, [&](std::error_code ec) { err = ec; })), 0);
        EXPECT_EQ(err, std::errc::broken_pipe);
      },
      options(1));
}

TEST_P(SelectTest, PicksUniformlyAmongReadyCases) {
  constexpr int kSelects = 100000;
  run(
      [] {
        auto a = *Chan<int>::make(1);
        auto b = *Chan<int>::make(1);
        EXPECT_FALSE(a.try_send(0));
        EXPECT_FALSE(b.try_send(0));
        int counts[2] = {0, 0};
        for (int i = 0; i < kSelects; ++i) {
          // Both channels are always ready: the chosen one is refilled.
          int idx = select(on_recv(a), on_recv(b));
          ASSERT_TRUE(idx == 0 || idx == 1);
          ++counts[idx];
          EXPECT_FALSE((idx == 0 ? a : b).try_send(0));
        }
        // 50% ± 2%: about 13 standard deviations, so a fair choice never fails.
        EXPECT_NEAR(counts[0], kSelects / 2, kSelects / 50);
        EXPECT_NEAR(counts[1], kSelects / 2, kSelects / 50);
      },
      options(1));
}

TEST_P(SelectTest, SelectOnTheSameChannelTwiceDoesNotMatchItself) {
  run(
      [] {
        auto a = *Chan<int>::make(0);
        // A select sending and receiving on one unbuffered channel must not pair
        // with itself; it times out.
        EXPECT_EQ(select(on_send(a, 1), on_recv(a), on_timeout(1ms)), 2);
        EXPECT_EQ(a.try_send(1), std::errc::resource_unavailable_try_again);
      },
      options(1));
}

// Port of Go's TestSelectStress: 4 channels (2 unbuffered, cap 2, cap 3); a plain
// sender and receiver per channel, plus one select-sender and one select-receiver
// over all four, on both cores; every channel carries exactly n values each way.
TEST_P(SelectTest, StressAcrossCoresDeliversEveryValueOnce) {
#if FIBER_TEST_TSAN
  constexpr int n = 10000;
#else
  constexpr int n = 100000;
#endif
  run(
      [] {
        Chan<int> c[4] = {*Chan<int>::make(0), *Chan<int>::make(0), *Chan<int>::make(2),
                          *Chan<int>::make(3)};
        std::atomic<int64_t> received[4] = {};
        WaitGroup wg;
        for (int k = 0; k < 4; ++k) {
          wg.add(2);
          go_on(k % 2, [&, k] {
            for (int i = 0; i < n; ++i) EXPECT_FALSE(c[k].send(i));
            wg.done();
          });
          go_on((k + 1) % 2, [&, k] {
            for (int i = 0; i < n; ++i) {
              if (c[k].recv()) received[k].fetch_add(1);
            }
            wg.done();
          });
        }
        wg.add(2);
        go_on(0, [&] {  // select-sender: n values on each channel
          int left[4] = {n, n, n, n};
          for (int total = 4 * n; total > 0; --total) {
            Chan<int> d[4];
            for (int k = 0; k < 4; ++k) {
              if (left[k] > 0) d[k] = c[k];
            }
            int idx =
                select(on_send(d[0], 0), on_send(d[1], 1), on_send(d[2], 2), on_send(d[3], 3));
            ASSERT_GE(idx, 0);
            --left[idx];
          }
          wg.done();
        });
        go_on(1, [&] {  // select-receiver: n values from each channel
          int left[4] = {n, n, n, n};
          for (int total = 4 * n; total > 0; --total) {
            Chan<int> d[4];
            for (int k = 0; k < 4; ++k) {
              if (left[k] > 0) d[k] = c[k];
            }
            int idx = select(on_recv(d[0]), on_recv(d[1]), on_recv(d[2]), on_recv(d[3]));
            ASSERT_GE(idx, 0);
            --left[idx];
            received[idx].fetch_add(1);
          }
          wg.done();
        });
        wg.wait();
        for (int k = 0; k < 4; ++k) EXPECT_EQ(received[k].load(), 2 * n) << "channel " << k;
        for (int k = 0; k < 4; ++k) EXPECT_EQ(c[k].len(), 0u);
      },
      options(2));
}

// Selects with a timeout race a close on another core; each select resolves once.
TEST_P(SelectTest, CloseRacingTimeoutsResolvesEachSelectOnce) {
#if FIBER_TEST_TSAN
  constexpr int kRounds = 300;
#else
  constexpr int kRounds = 3000;
#endif
  run(
      [] {
        for (int r = 0; r < kRounds; ++r) {
          auto a = *Chan<int>::make(0);
          auto b = *Chan<int>::make(0);
          std::atomic<int> resolved{0};
          WaitGroup wg;
          for (int f = 0; f < 3; ++f) {
            wg.add(1);
            go_on(f % 2, [&, f] {
              int idx =
                  select(on_recv(a), on_recv(b), on_timeout(std::chrono::microseconds(f * 20)));
              EXPECT_TRUE(idx >= 0 && idx <= 2);
              resolved.fetch_add(1);
              wg.done();
            });
          }
          EXPECT_FALSE((r % 2 == 0 ? a : b).close());
          wg.wait();
          EXPECT_EQ(resolved.load(), 3);
        }
      },
      options(2));
}

}  // namespace
}  // namespace fiber
