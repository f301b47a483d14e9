// What ends the process, and how it says why: stack overflow, an exception
// escaping a detached fiber, running out of memory maps.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

class CrashDeathTest : public testing::DriverTest {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    DriverTest::SetUp();
  }
};
FIBER_INSTANTIATE_DRIVER_TESTS(CrashDeathTest);

[[gnu::noinline]] int recurse(int depth) {
  volatile char pad[512];
  pad[0] = static_cast<char>(depth);
  return depth == -1 ? 0 : recurse(depth + 1) + pad[0];
}

[[gnu::noinline]] void big_frame() {
  volatile char frame[128 * 1024];  // larger than the guard page: must not hop it
  frame[0] = 1;
  frame[sizeof frame - 1] = 1;
}

TEST_P(CrashDeathTest, DeepRecursionReportsAFiberStackOverflow) {
  Options o = options();
  EXPECT_DEATH(run([] { spawn(SpawnOptions{64 * 1024}, [] { recurse(0); }).join(); }, o),
               "fiber stack overflow: fiber [0-9]+ used all of its 65536-byte stack");
}

TEST_P(CrashDeathTest, OneHugeFrameReportsAFiberStackOverflow) {
  Options o = options();
  EXPECT_DEATH(run([] { spawn(SpawnOptions{64 * 1024}, [] { big_frame(); }).join(); }, o),
               "fiber stack overflow: fiber [0-9]+ used all of its 65536-byte stack");
}

TEST_P(CrashDeathTest, AnExceptionEscapingADetachedFiberEndsTheProcess) {
  Options o = options(2);
  EXPECT_DEATH(run(
                   [] {
                     go_on(1, [] { throw std::runtime_error("no one catches this"); });
                     WaitGroup forever;
                     forever.add(1);
                     forever.wait();
                   },
                   o),
               "uncaught exception in fiber [0-9]+: no one catches this");
}

TEST_P(CrashDeathTest, RunningOutOfMemoryMapsIsAClearError) {
  // In a child process with a small address-space limit, spawning live fibers
  // until the kernel refuses must end in an error naming the sysctl.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers reserve terabytes of address space, so RLIMIT_AS cannot be lowered";
#endif
  Options o = options();
  EXPECT_EXIT(
      {
        struct rlimit rl = {};
        getrlimit(RLIMIT_AS, &rl);
        rl.rlim_cur = 4ull << 30;
        setrlimit(RLIMIT_AS, &rl);
        std::string message;
        run(
            [&] {
              WaitGroup gate, finished;
              gate.add(1);
              try {
                for (;;) {
                  finished.add(1);
                  try {
                    go([&] {
                      gate.wait();
                      finished.done();
                    });
                  } catch (...) {
                    finished.done();
                    throw;
                  }
                }
              } catch (const std::system_error& e) {
                message = e.what();
              }
              gate.done();
              finished.wait();
            },
            o);
        std::fprintf(stderr, "%s\n", message.c_str());
        std::exit(message.find("vm.max_map_count") != std::string::npos ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "fiber: cannot .*fiber stack");
}

}  // namespace
}  // namespace fiber
