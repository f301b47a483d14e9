// Channels: rendezvous, buffering, close, errors, move-only values, and a
// many-producer many-consumer stress across cores.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"
#include "tests/support/settle.h"

namespace fiber {
namespace {

class ChanTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(ChanTest);

TEST_P(ChanTest, MakeRejectsBadCapacity) {
  EXPECT_FALSE(Chan<int>::make(-1).has_value());
  EXPECT_FALSE(Chan<int>::make(int64_t{1} << 40).has_value());
  auto ch = Chan<int>::make(3);
  ASSERT_TRUE(ch.has_value());
  EXPECT_EQ(ch->cap(), 3u);
  EXPECT_EQ(ch->len(), 0u);
}

TEST_P(ChanTest, UnbufferedSendWaitsForTheReceiverAndKeepsOrder) {
  run(
      [] {
        auto ch = *Chan<int>::make(0);
        std::vector<std::string> log;
        WaitGroup wg;
        wg.add(1);
        go([&] {
          for (int i = 0; i < 3; ++i) {
            log.push_back("send " + std::to_string(i));
            EXPECT_FALSE(ch.send(i));
            log.push_back("sent " + std::to_string(i));
          }
          wg.done();
        });
        for (int i = 0; i < 3; ++i) {
          testing::settle();  // the sender runs until it parks in send()
          log.push_back("recv");
          EXPECT_EQ(ch.recv(), i);
        }
        wg.wait();
        // A send completes only once a receiver took the value.
        std::vector<std::string> want = {"send 0", "recv",   "sent 0", "send 1", "recv",
                                         "sent 1", "send 2", "recv",   "sent 2"};
        EXPECT_EQ(log, want);
        EXPECT_EQ(ch.try_send(9), std::errc::resource_unavailable_try_again);
      },
      options(1));
}

TEST_P(ChanTest, BufferedChannelIsFifoAndParksWhenFull) {
  run(
      [] {
        auto ch = *Chan<int>::make(4);
        for (int i = 0; i < 4; ++i) EXPECT_FALSE(ch.try_send(i));
        EXPECT_EQ(ch.len(), 4u);
        EXPECT_EQ(ch.try_send(4), std::errc::resource_unavailable_try_again);
        // Two senders park on the full buffer; they go in in arrival order.
        WaitGroup wg;
        wg.add(2);
        go([&] {
          EXPECT_FALSE(ch.send(4));
          wg.done();
        });
        testing::settle();  // parked first
        go([&] {
          EXPECT_FALSE(ch.send(5));
          wg.done();
        });
        testing::settle();
        for (int i = 0; i < 6; ++i) EXPECT_EQ(ch.recv(), i);
        wg.wait();
        EXPECT_EQ(ch.try_recv().error, std::errc::resource_unavailable_try_again);
      },
      options(1));
}

TEST_P(ChanTest, WaitingReceiversAreServedFirstComeFirstServed) {
  run(
      [] {
        auto ch = *Chan<int>::make(0);
        std::vector<int> order;
        WaitGroup wg;
        for (int r = 0; r < 5; ++r) {
          wg.add(1);
          go([&, r] {
            auto v = ch.recv();
            order.push_back(r * 100 + *v);
            wg.done();
          });
          testing::settle();  // receiver r parks before r + 1 starts
        }
        for (int i = 0; i < 5; ++i) EXPECT_FALSE(ch.send(i));
        wg.wait();
        // Receiver r got value r; in which order the woken receivers ran is the
        // scheduler's business.
        std::sort(order.begin(), order.end());
        EXPECT_EQ(order, (std::vector<int>{0, 101, 202, 303, 404}));
      },
      options(1));
}

TEST_P(ChanTest, CloseWakesEveryReceiverAndTheyDrainTheBuffer) {
  run(
      [] {
        auto ch = *Chan<int>::make(3);
        for (int i = 0; i < 3; ++i) EXPECT_FALSE(ch.try_send(i));
        auto empty = *Chan<int>::make(0);
        std::atomic<int> woke{0};
        WaitGroup wg;
        for (int r = 0; r < 10; ++r) {
          wg.add(1);
          go_on(r % 2, [&] {
            EXPECT_EQ(empty.recv(), std::nullopt);
            woke.fetch_add(1);
            wg.done();
          });
        }
        // No sleeps: wait until every receiver is parked would need internals;
        // closing before or after they park must both wake them.
        EXPECT_FALSE(empty.close());
        wg.wait();
        EXPECT_EQ(woke.load(), 10);
        EXPECT_FALSE(ch.close());
        EXPECT_EQ(ch.close(), std::errc::broken_pipe);
        for (int i = 0; i < 3; ++i) EXPECT_EQ(ch.recv(), i);
        EXPECT_EQ(ch.recv(), std::nullopt);
        EXPECT_TRUE(ch.try_recv().closed());
      },
      options(2));
}

TEST_P(ChanTest, SendOnClosedChannelIsAnError) {
  run(
      [] {
        auto ch = *Chan<int>::make(1);
        EXPECT_FALSE(ch.close());
        EXPECT_EQ(ch.send(1), std::errc::broken_pipe);
        EXPECT_EQ(ch.try_send(1), std::errc::broken_pipe);
        // A sender parked when the channel closes fails too.
        auto un = *Chan<int>::make(0);
        auto h = spawn_on(1, [un]() mutable { return un.send(7); });
        // Close from this core while the sender is parked or about to be.
        EXPECT_FALSE(un.close());
        EXPECT_EQ(h.join(), std::errc::broken_pipe);
      },
      options(2));
}

TEST_P(ChanTest, NilChannelFailsInsteadOfParkingForever) {
  run(
      [] {
        Chan<int> nil;
        EXPECT_TRUE(nil.nil());
        EXPECT_EQ(nil.send(1), std::errc::invalid_argument);
        EXPECT_EQ(nil.recv(), std::nullopt);
        EXPECT_EQ(nil.try_recv().error, std::errc::invalid_argument);
        EXPECT_EQ(nil.close(), std::errc::invalid_argument);
        EXPECT_EQ(nil.len(), 0u);
        EXPECT_EQ(nil.cap(), 0u);
      },
      options(1));
}

TEST_P(ChanTest, MoveOnlyValuesPassThroughBufferedAndUnbufferedChannels) {
  run(
      [] {
        for (int64_t cap : {0, 2}) {
          auto ch = *Chan<std::unique_ptr<int>>::make(cap);
          auto h = spawn_on(1, [ch]() mutable {
            for (int i = 0; i < 10; ++i) EXPECT_FALSE(ch.send(std::make_unique<int>(i)));
            EXPECT_FALSE(ch.close());
          });
          int n = 0;
          while (auto v = ch.recv()) {
            ASSERT_NE(*v, nullptr);
            EXPECT_EQ(**v, n++);
          }
          EXPECT_EQ(n, 10);
          h.join();
        }
        // Values left in a buffer are destroyed with the channel (ASan checks).
        auto ch = *Chan<std::unique_ptr<int>>::make(4);
        EXPECT_FALSE(ch.try_send(std::make_unique<int>(1)));
        EXPECT_FALSE(ch.try_send(std::make_unique<int>(2)));
      },
      options(2));
}

TEST_P(ChanTest, StressManyProducersAndConsumersOnBothCores) {
  // 10^6 in every build, TSan's included (about 7 s a driver there).
  constexpr int64_t kMessages = 1000000;
  constexpr int kProducers = 8;
  constexpr int kConsumers = 8;
  for (int64_t cap : {0, 64}) {
    run(
        [&] {
          auto ch = *Chan<int64_t>::make(cap);
          std::atomic<int64_t> sum{0};
          std::atomic<int64_t> count{0};
          WaitGroup producers;
          WaitGroup consumers;
          for (int p = 0; p < kProducers; ++p) {
            producers.add(1);
            go_on(p % 2, [&, p] {
              for (int64_t v = p; v < kMessages; v += kProducers) EXPECT_FALSE(ch.send(v));
              producers.done();
            });
          }
          for (int c = 0; c < kConsumers; ++c) {
            consumers.add(1);
            go_on(c % 2, [&] {
              int64_t s = 0;
              int64_t n = 0;
              while (auto v = ch.recv()) {
                s += *v;
                ++n;
              }
              sum.fetch_add(s);
              count.fetch_add(n);
              consumers.done();
            });
          }
          producers.wait();
          EXPECT_FALSE(ch.close());
          consumers.wait();
          EXPECT_EQ(count.load(), kMessages);
          EXPECT_EQ(sum.load(), kMessages * (kMessages - 1) / 2);
        },
        options(2));
  }
}

}  // namespace
}  // namespace fiber
