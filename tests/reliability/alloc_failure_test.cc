// T39: a fiber whose stack cannot be mapped fails with the kernel's reason
// wherever it was spawned, and run() does not wait for ever for a main fiber
// that could not start. In a child process the address space is limited, so
// that a 1 GiB stack cannot be mapped. tools/ci/alloc_faults.sh covers the
// other allocations (scheduler threads, rings, channels) with strace.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

class AllocFailureTest : public testing::DriverTest {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
#if FIBER_ASAN || defined(FIBER_TEST_TSAN)
    GTEST_SKIP() << "sanitizers reserve terabytes of address space, so RLIMIT_AS cannot be "
                    "lowered";
#endif
    DriverTest::SetUp();
  }
};
FIBER_INSTANTIATE_DRIVER_TESTS(AllocFailureTest);

// limit_address_space() lets the process map 512 MiB more than it has now:
// room for scheduler threads and ordinary stacks, not for a 1 GiB one. A hang
// would end the child after a minute (and fail the test).
void limit_address_space() {
  long long vm_kb = -1;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::sscanf(line, "VmSize: %lld kB", &vm_kb) == 1) break;
    }
    std::fclose(f);
  }
  if (vm_kb < 0) std::exit(2);
  struct rlimit rl = {};
  getrlimit(RLIMIT_AS, &rl);
  rl.rlim_cur = static_cast<rlim_t>(vm_kb) * 1024 + (512ull << 20);
  if (setrlimit(RLIMIT_AS, &rl) != 0) std::exit(2);
  alarm(60);
}

constexpr char kStackError[] =
    "fiber: cannot map memory for a 1073741824-byte fiber stack: .*vm.max_map_count";

TEST_P(AllocFailureTest, RunFailsWhenTheMainFiberGetsNoStack) {
  Options o = options(2);
  o.stack_size = kMaxStackSize;
  EXPECT_EXIT(
      {
        limit_address_space();
        try {
          run([] {}, o);
          std::fprintf(stderr, "run() returned\n");
        } catch (const std::system_error& e) {
          std::fprintf(stderr, "run() threw: %s\n", e.what());
          std::exit(0);
        }
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), std::string("run\\(\\) threw: ") + kStackError);
}

// spawn_failures() spawns a fiber too big for the address space locally and
// on the other core, and prints how each failed; exits 0 if both did.
[[noreturn]] void spawn_failures(const Options& o) {
  limit_address_space();
  std::string local, remote;
  run(
      [&] {
        const SpawnOptions huge{kMaxStackSize};
        try {
          spawn(huge, [] { return 1; }).join();
        } catch (const std::system_error& e) {
          local = e.what();
        }
        auto h = spawn_on(1, huge, [] { return 1; });  // fails on core 1, later
        try {
          h.join();
        } catch (const std::system_error& e) {
          remote = e.what();
        }
      },
      o);
  std::fprintf(stderr, "local: %s\nremote: %s\n", local.c_str(), remote.c_str());
  std::exit(!local.empty() && !remote.empty() ? 0 : 1);
}

TEST_P(AllocFailureTest, AFiberThatGetsNoStackFailsItsSpawnOrJoinWithTheReason) {
  Options o = options(2);
  EXPECT_EXIT(spawn_failures(o), ::testing::ExitedWithCode(0),
              std::string("local: ") + kStackError + ".*\nremote: " + kStackError);
}

}  // namespace
}  // namespace fiber
