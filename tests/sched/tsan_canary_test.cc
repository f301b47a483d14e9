// The TSan canary (RELIABILITY.md T4): the fiber-switch annotations
// (fiber/context.cc) make every switch a synchronisation point between the
// fibers of one thread; they must not hide a race between fibers on two
// cores. Two fibers, one per scheduler, increment a plain int 1000 times each,
// and the TSan build must report "data race". Skipped in other builds.
#include <gtest/gtest.h>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

#if defined(FIBER_TEST_TSAN)
// A report must end the death test's child whatever TSAN_OPTIONS says
// elsewhere (the tsan test preset sets the same).
extern "C" const char* __tsan_default_options() { return "halt_on_error=1"; }
#endif

namespace fiber {
namespace {

class TsanCanaryDeathTest : public testing::DriverTest {
 protected:
  void SetUp() override {
#if !defined(FIBER_TEST_TSAN)
    GTEST_SKIP() << "needs the ThreadSanitizer build (FIBER_SANITIZE=thread, tools/test.sh tsan)";
#endif
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    DriverTest::SetUp();
  }
};
FIBER_INSTANTIATE_DRIVER_TESTS(TsanCanaryDeathTest);

int g_unguarded = 0;  // written from both cores with no synchronisation

void race_on_two_cores(const Options& options) {
  run(
      [] {
        WaitGroup start, finished;
        start.add(1);
        finished.add(2);
        for (unsigned core = 0; core < 2; ++core) {
          go_on(core, [&] {
            start.wait();  // both start after main's done(): nothing orders the two loops
            for (int i = 0; i < 1000; ++i) {
              ++g_unguarded;
              asm volatile("" ::: "memory");  // one access per iteration
            }
            finished.done();
          });
        }
        start.done();
        finished.wait();
      },
      options);
}

TEST_P(TsanCanaryDeathTest, TwoFibersOnTwoCoresRacingOnAPlainIntAreReported) {
  EXPECT_DEATH(race_on_two_cores(options(2)), "ThreadSanitizer: data race");
}

}  // namespace
}  // namespace fiber
