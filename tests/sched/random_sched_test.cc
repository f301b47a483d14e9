// Randomised scheduling (FIBER_SCHED_RANDOM): a seed changes the run order,
// the same seed replays it on one scheduler, and sync points yield.
#include "sched/testing/random_sched.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <vector>

#include "fiber/chan.h"
#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

class RandomSchedTest : public testing::DriverTest {
 protected:
  void TearDown() override { detail::reset_sched_random_seed(); }

  // order() is the order in which 8 fibers, each yielding 4 times, record
  // their steps on one scheduler under `seed` (none: the mode off, FIFO).
  std::vector<int> order(std::optional<uint64_t> seed) {
    detail::set_sched_random_seed(seed);
    std::vector<int> steps;
    run(
        [&] {
          WaitGroup wg;
          for (int i = 0; i < 8; ++i) {
            wg.add(1);
            go([&, i] {
              for (int k = 0; k < 4; ++k) {
                steps.push_back(i);
                yield();
              }
              wg.done();
            });
          }
          wg.wait();
        },
        options(1));
    return steps;
  }
};
FIBER_INSTANTIATE_DRIVER_TESTS(RandomSchedTest);

TEST_P(RandomSchedTest, ASeedChangesTheOrderAndReplaysIt) {
  const std::vector<int> fifo = order(std::nullopt);
  std::set<std::vector<int>> seen;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::vector<int> once = order(seed);
    EXPECT_EQ(order(seed), once) << "seed " << seed << " did not replay";
    EXPECT_EQ(once.size(), fifo.size());
    seen.insert(once);
  }
  EXPECT_EQ(seen.count(fifo), 0u) << "a seed gave the FIFO order";
  EXPECT_GE(seen.size(), 4u) << "seeds barely change the order";
}

TEST_P(RandomSchedTest, SyncPointsYield) {
  detail::set_sched_random_seed(9);
  const uint64_t before = detail::sched_random_yields();
  run(
      [] {
        auto ch = *Chan<int>::make(0);
        go([ch]() mutable {
          for (int i = 0; i < 200; ++i) (void)ch.send(i);
          ch.close();
        });
        int expect = 0;
        while (auto v = ch.recv()) EXPECT_EQ(*v, expect++);
        EXPECT_EQ(expect, 200);
      },
      options(1));
  EXPECT_GT(detail::sched_random_yields(), before);
}

}  // namespace
}  // namespace fiber
