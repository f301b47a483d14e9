// The ASan canaries (RELIABILITY.md T2): the fiber-switch annotations
// (fiber/internal/context.h) tell AddressSanitizer which stack is current; a wrong
// annotation would blind it or make it cry wolf. Two death tests must still be
// reported: a heap use-after-free across two fibers and a stack buffer overflow
// in a fiber's frame. And 1000 fibers, each suspended three times inside catch
// blocks, must run without a single report (the per-fiber exception state and
// the switch annotations agree). Skipped in builds without ASan.
#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

class AsanCanaryDeathTest : public testing::DriverTest {
 protected:
  void SetUp() override {
#if !defined(FIBER_ASAN)
    GTEST_SKIP() << "needs the AddressSanitizer build (FIBER_SANITIZE=address, tools/test.sh asan)";
#endif
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    DriverTest::SetUp();
  }
};
FIBER_INSTANTIATE_DRIVER_TESTS(AsanCanaryDeathTest);

// Opaque to the optimiser, so that the bad accesses below are really made.
[[gnu::noinline]] void touch(volatile char* p, size_t i) { p[i] = 1; }

void use_after_free_across_fibers(const Options& options) {
  run(
      [] {
        char* block = new char[64];
        Chan<int> freed = *Chan<int>::make(0);
        go([&] {
          delete[] block;
          (void)freed.send(1);
        });
        (void)freed.recv();
        touch(block, 8);  // freed by the other fiber
      },
      options);
}

void overflow_a_fiber_frame(const Options& options) {
  run(
      [] {
        WaitGroup done;
        done.add(1);
        go([&] {
          volatile char buf[16];
          touch(buf, 16);  // one past the end
          done.done();
        });
        done.wait();
      },
      options);
}

TEST_P(AsanCanaryDeathTest, AHeapUseAfterFreeAcrossFibersIsReported) {
  EXPECT_DEATH(use_after_free_across_fibers(options(1)), "heap-use-after-free");
}

TEST_P(AsanCanaryDeathTest, AStackBufferOverflowInAFiberIsReported) {
  EXPECT_DEATH(overflow_a_fiber_frame(options(1)), "stack-buffer-overflow");
}

// Not a death test: it must simply pass, with no report ending the process.
TEST_P(AsanCanaryDeathTest, ThousandFibersSuspendedInCatchBlocksRaiseNoReport) {
  constexpr int kFibers = 1000;
  int rethrown_own = 0;
  run(
      [&] {
        WaitGroup done;
        done.add(kFibers);
        for (int i = 0; i < kFibers; ++i) {
          go([&, i] {
            for (int round = 0; round < 3; ++round) {
              const std::string mine = std::to_string(i) + "/" + std::to_string(round);
              try {
                throw std::runtime_error(mine);
              } catch (const std::runtime_error&) {
                yield();  // the other fibers throw and catch meanwhile
                try {
                  throw;
                } catch (const std::runtime_error& again) {
                  if (again.what() == mine && round == 2) ++rethrown_own;
                }
              }
            }
            done.done();
          });
        }
        done.wait();
      },
      options(1));
  EXPECT_EQ(rethrown_own, kFibers);
}

}  // namespace
}  // namespace fiber
