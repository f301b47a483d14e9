// DynamicSelect (fiber/dynamic_select.h): select over a run-time set of cases.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <vector>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class DynamicSelectTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(DynamicSelectTest);

TEST_P(DynamicSelectTest, ReceivesFromWhicheverOfManyChannelsIsReadyAcrossCores) {
  run(
      [] {
        constexpr int kChans = 40;
        std::vector<Chan<int>> chans;
        for (int i = 0; i < kChans; ++i) chans.emplace_back(0);
        WaitGroup senders;
        for (int i = 0; i < kChans; ++i) {
          senders.add(1);
          go_on(i % 2, [&senders, ch = chans[i], i] {
            ch.send(i * 10);
            senders.done();
          });
        }
        std::set<int> seen;
        for (int round = 0; round < kChans; ++round) {
          DynamicSelect sel;
          int value = -1;
          for (const Chan<int>& ch : chans) {
            sel.add_recv(ch, [&](std::optional<int> v) { value = v.value_or(-2); });
          }
          int i = sel.wait();
          ASSERT_GE(i, 0);
          EXPECT_EQ(value, i * 10);  // the value came from the case reported
          seen.insert(i);
          chans[i] = Chan<int>();  // nil: never fires again
        }
        EXPECT_EQ(seen.size(), static_cast<size_t>(kChans));
        senders.wait();
        DynamicSelect none;  // only nil channels: nothing can ever fire
        for (const Chan<int>& ch : chans) none.add_recv(ch);
        EXPECT_EQ(none.wait(), kSelectNothing);
      },
      options(2));
}

TEST_P(DynamicSelectTest, SendsTimesOutAndDefaultsLikeSelect) {
  run(
      [] {
        Chan<int> full(1), empty(0);
        full.send(0);
        DynamicSelect sel;
        sel.add_send(full, 1);  // full: cannot proceed
        sel.add_recv(empty);    // nobody sends
        bool timed_out = false;
        EXPECT_EQ(sel.set_timeout(1ms, [&] { timed_out = true; }), 2);
        EXPECT_THROW(sel.set_timeout(1ms), std::logic_error);
        EXPECT_EQ(sel.wait(), 2);
        EXPECT_TRUE(timed_out);

        DynamicSelect poll;
        poll.add_recv(empty);
        EXPECT_EQ(poll.set_default(), 1);
        EXPECT_EQ(poll.wait(), 1);  // nothing ready: the default, without parking

        Chan<int> room(1);
        DynamicSelect send;
        std::error_code sent = std::make_error_code(std::errc::io_error);
        send.add_send(room, 7, [&](std::error_code e) { sent = e; });
        EXPECT_EQ(send.wait(), 0);
        EXPECT_FALSE(sent);
        EXPECT_EQ(room.recv(), 7);
      },
      options(1));
}

}  // namespace
}  // namespace fiber
