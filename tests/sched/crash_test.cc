// What ends the process, and how it says why: stack overflow, an exception
// escaping a detached fiber, running out of memory maps.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

#if FIBER_ASAN
// libasan's switch for detect_stack_use_after_return, read by instrumented code.
extern "C" int __asan_option_detect_stack_use_after_return;
#endif

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

// --- T32: the kernel's limit on memory maps --------------------------------

// Vma is one line of /proc/self/maps.
struct Vma {
  uintptr_t start = 0;
  uintptr_t end = 0;
  std::string perms;
};

std::vector<Vma> read_maps() {
  std::vector<Vma> maps;
  if (FILE* f = std::fopen("/proc/self/maps", "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      unsigned long start = 0, end = 0;
      char perms[8] = {};
      if (std::sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3) {
        maps.push_back(Vma{start, end, perms});
      }
    }
    std::fclose(f);
  }
  return maps;
}

long read_max_map_count() {
  long n = -1;
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    if (std::fscanf(f, "%ld", &n) != 1) n = -1;
    std::fclose(f);
  }
  return n;
}

[[gnu::always_inline]] inline uintptr_t stack_pointer() {
  uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  return sp;
}

// unguarded_stacks() counts the stack pointers in `sps` whose memory map does
// not sit right on top of a PROT_NONE map (the guard page); each is described
// in `why`.
int unguarded_stacks(const std::vector<uintptr_t>& sps, std::string* why) {
  const std::vector<Vma> maps = read_maps();
  int bad = 0;
  for (uintptr_t sp : sps) {
    size_t i = 0;
    while (i < maps.size() && !(maps[i].start <= sp && sp < maps[i].end)) ++i;
    const char* problem = nullptr;
    if (i == maps.size()) {
      problem = "is in no map";
    } else if (maps[i].perms.compare(0, 2, "rw") != 0) {
      problem = "is in a map that is not read-write";
    } else if (i == 0 || maps[i - 1].end != maps[i].start || maps[i - 1].perms != "---p") {
      problem = "has no PROT_NONE guard map right below its stack";
    }
    if (problem != nullptr && bad++ < 5) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "a fiber at sp %#lx %s\n", static_cast<unsigned long>(sp),
                    problem);
      *why += buf;
    }
  }
  return bad;
}

// exhaust_map_count() runs the runtime, uses up all but a few hundred of the
// process's memory maps (cheaply: one PROT_NONE mapping split by mprotect()ing
// every other page), then spawns parked fibers until go() fails. Returns 0 if
// go() failed with a message naming vm.max_map_count, at least one fiber was
// spawned, and every spawned fiber ran with a guard page below its stack; else
// prints what went wrong and returns 1.
int exhaust_map_count(const Options& o) {
  constexpr long kHeadroom = 600;  // maps left for the fibers: about 300 of them
  // With guard pages ignored, stacks merge into one map and go() never fails:
  // the spawning stops here, and the test fails.
  constexpr int kMaxFibers = 4 * kHeadroom;
  const long max = read_max_map_count();
  if (max <= 0) {
    std::fprintf(stderr, "cannot read vm.max_map_count\n");
    return 1;
  }
  const size_t pg = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::string message, why;
  std::vector<uintptr_t> sps;
  sps.reserve(kMaxFibers);
  int spawned = 0, unguarded = -1;
  run(
      [&] {
        const long fill = max - static_cast<long>(read_maps().size()) - kHeadroom;
        const size_t pages = static_cast<size_t>(fill) + 2;
        auto* filler = static_cast<char*>(mmap(nullptr, pages * pg, PROT_NONE,
                                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
        if (filler == MAP_FAILED) return;
        for (size_t i = 1; i + 1 < pages; i += 2) mprotect(filler + i * pg, pg, PROT_READ);
        WaitGroup gate, started, finished;
        gate.add(1);
        try {
          while (spawned < kMaxFibers) {
            started.add(1);
            finished.add(1);
            try {
              go([&] {
                sps.push_back(stack_pointer());
                started.done();
                gate.wait();
                finished.done();
              });
              ++spawned;
            } catch (...) {
              started.done();
              finished.done();
              throw;
            }
          }
        } catch (const std::system_error& e) {
          message = e.what();
        }
        started.wait();              // every fiber spawned has run
        munmap(filler, pages * pg);  // room to read the maps
        unguarded = unguarded_stacks(sps, &why);
        gate.done();
        finished.wait();
      },
      o);
  std::fprintf(stderr, "%d fibers spawned; go() then failed with: %s\n", spawned,
               message.empty() ? "(nothing: it never failed)" : message.c_str());
  int rc = message.find("vm.max_map_count") == std::string::npos ? 1 : 0;
  if (spawned == 0 || static_cast<int>(sps.size()) != spawned) {
    std::fprintf(stderr, "%zu of %d spawned fibers ran\n", sps.size(), spawned);
    rc = 1;
  }
  if (unguarded != 0) {
    std::fprintf(stderr, "%d fibers ran without a guard page:\n%s", unguarded, why.c_str());
    rc = 1;
  }
  return rc;
}

TEST_P(CrashDeathTest, ReachingVmMaxMapCountFailsGoClearlyAndNoFiberRunsUnguarded) {
  // At vm.max_map_count the guard page's mprotect() fails before the stack's
  // mmap() does (it splits a map in two); ignoring it would leave a fiber
  // without a guard (RELIABILITY.md B10, T32).
#if FIBER_ASAN
  if (__asan_option_detect_stack_use_after_return != 0) {
    GTEST_SKIP() << "ASan's use-after-return fake stacks (detect_stack_use_after_return=1) "
                    "take a map of their own per fiber, and ASan aborts when the kernel "
                    "refuses one; run with detect_stack_use_after_return=0 to test this";
  }
#endif
#if defined(FIBER_TEST_TSAN)
  GTEST_SKIP() << "not under TSan: its runtime maps memory of its own for every fiber "
                  "(__tsan_create_fiber) and dies when the kernel refuses a map, so the "
                  "process would end at the limit before go() could report it";
#endif
  Options o = options();
  EXPECT_EXIT(std::exit(exhaust_map_count(o)), ::testing::ExitedWithCode(0),
              "fiber: cannot add a guard page for a [0-9]+-byte fiber stack: .*"
              "vm.max_map_count = [0-9]+");
}

}  // namespace
}  // namespace fiber
