// T31: stacks the pool hands out again are clean, and pooled stacks give their
// pages back.
//
// Under AddressSanitizer a frame that is never returned from keeps its redzones
// poisoned in the shadow memory. Fibers abandon frames: each one's final switch,
// a fiber ending from deep inside its calls, a fiber still parked when the
// runtime stops. A stack reused from the pool, or freshly mapped where such a
// stack was unmapped, must not carry that poison into the next fiber. Each
// fiber here checks, first thing, that ASan sees nothing poisoned below its own
// stack pointer, then goes deep with alloca'd buffers (their redzones are on
// the real stack even when ASan moves frames to its fake stack) and abandons
// those frames.
#include <alloca.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "fiber/detail/park.h"
#include "fiber/detail/sanitizer.h"
#include "fiber/fiber.h"
#include "fiber/internal/control_block.h"
#include "fiber/internal/resource_counts.h"
#include "sched/internal/scheduler.h"
#include "tests/support/leak_check.h"

#if FIBER_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace fiber {
namespace {

#if FIBER_ASAN || FIBER_TSAN
constexpr int kFibers = 10'000;  // each switch costs far more under a sanitizer
#else
constexpr int kFibers = 100'000;
#endif
constexpr size_t kFrameBytes = 1000;  // alloca'd per frame
// Frames each fiber abandons: about 9 KiB, under StackPool::kKeepBytes, so that
// the pool keeps those pages (and the shadow keeps the poison) without trimming;
// every 16th fiber goes below the threshold, and its stack is trimmed on return.
constexpr int kDepth = 8;
constexpr int kDeepDepth = 48;

int depth_of(int i) { return i % 16 == 0 ? kDeepDepth : kDepth; }

Options one_scheduler() {
  Options o;
  o.schedulers = 1;
  return o;
}

[[gnu::always_inline]] inline char* stack_pointer() {
  char* sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  return sp;
}

// Counts kept by the fibers of one test.
struct Hygiene {
  int dirty = 0;        // fibers that started with poison below their stack pointer
  int poisoned = 0;     // fibers whose abandoned frames were poisoned (ASan only)
  std::string example;  // the first dirty one, described
};

// check_clean() records whether anything below the stack pointer of the running
// fiber is poisoned: nothing there is in use, so nothing may be.
[[gnu::noinline]] void check_clean(Hygiene& h) {
#if FIBER_ASAN
  const detail::Fiber* f = detail::t_current_fiber;
  char* bottom = f->stack.bottom();
  char* sp = stack_pointer() - 256;  // below anything this call uses
  if (void* bad = __asan_region_is_poisoned(bottom, static_cast<size_t>(sp - bottom))) {
    if (h.dirty++ == 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "fiber %llu: %p is poisoned, %zu bytes above its stack bottom",
                    static_cast<unsigned long long>(f->id), bad,
                    static_cast<size_t>(static_cast<char*>(bad) - bottom));
      h.example = buf;
    }
  }
#else
  (void)h;
#endif
}

// note_poison() counts the fiber if the frames above the stack pointer (the
// ones about to be abandoned) hold poison: proof that the test makes some.
[[gnu::noinline]] void note_poison(Hygiene& h) {
#if FIBER_ASAN
  const detail::Fiber* f = detail::t_current_fiber;
  char* sp = stack_pointer();
  char* top = reinterpret_cast<char*>(const_cast<detail::Fiber*>(f));
  if (__asan_region_is_poisoned(sp, static_cast<size_t>(top - sp)) != nullptr) ++h.poisoned;
#else
  (void)h;
#endif
}

enum class AtBottom {
  kExit,  // the fiber ends from the deepest frame: the frames above are never returned to
  kPark,  // the fiber parks for good: the runtime stops with it there
};

// descend() calls itself `depth` times, each frame with an alloca'd buffer, and
// never returns.
[[gnu::noinline]] void descend(int depth, size_t bytes, AtBottom at_bottom, Hygiene& h,
                               WaitGroup& reached) {
  auto* buf = static_cast<volatile char*>(alloca(bytes));
  buf[0] = static_cast<char>(depth);
  buf[bytes - 1] = static_cast<char>(depth);
  if (depth > 0) {
    descend(depth - 1, bytes, at_bottom, h, reached);
  } else {
    note_poison(h);
    reached.done();
    if (at_bottom == AtBottom::kExit) detail::fiber_exit(detail::t_current_fiber);
    detail::park();  // nobody wakes it
  }
  buf[1] = buf[0];  // not a tail call: the frame stays live across the call
}

// Fibers that end from deep inside their calls, in waves, so that their stacks
// go back to the pool and are handed out again. Two things clear the poison of
// those frames: ASan itself, which unpoisons the stack above a call to a
// [[noreturn]] function (the runtime's exit path is one), and the pool, which
// unpoisons a stack it hands out again; either is enough here.
TEST(StackReuseTest, AStackReusedAfterItsFiberEndedDeepIsClean) {
  constexpr int kWave = 100;
  Hygiene h;
  size_t stacks_used = 0;
  run(
      [&] {
        for (int done = 0; done < kFibers; done += kWave) {
          WaitGroup reached;
          reached.add(kWave);
          for (int i = 0; i < kWave; ++i) {
            go([&, depth = depth_of(done + i)] {
              check_clean(h);
              descend(depth, kFrameBytes, AtBottom::kExit, h, reached);
            });
          }
          reached.wait();
          yield();  // the last fiber of the wave is reclaimed once it is off its stack
        }
        const detail::StackPool& pool = detail::t_scheduler->stack_pool();
        stacks_used = pool.live() + pool.cached();
      },
      one_scheduler());
  EXPECT_EQ(h.dirty, 0) << h.example;
  // The stacks were reused: one per fiber of a wave, and main's.
  EXPECT_LE(stacks_used, static_cast<size_t>(kWave) + 1);
#if FIBER_ASAN
  EXPECT_EQ(h.poisoned, kFibers) << "the abandoned frames should have left poison behind";
#endif
}

// Runtimes that stop with fibers parked deep: their stacks are unmapped with the
// poison of the abandoned frames, and the next runtime maps its stacks at the
// same addresses. libasan leaves the shadow of an unmapped range as it was, so
// only the pool's unpoisoning (before it unmaps, and on a fresh mapping) keeps
// the next fibers clean; without it ASan reports a dynamic-stack-buffer-overflow
// in make_context().
TEST(StackReuseTest, AStackMappedWhereAnAbandonedOneWasIsClean) {
  constexpr int kRuns = 20;
  constexpr int kPerRun = 500;
  Hygiene h;
  std::set<char*> previous, reused;
  for (int r = 0; r < kRuns; ++r) {
    std::set<char*> bases;
    run(
        [&] {
          WaitGroup reached;
          reached.add(kPerRun);
          for (int i = 0; i < kPerRun; ++i) {
            go([&, depth = depth_of(i)] {
              char* base = detail::t_current_fiber->stack.base;
              bases.insert(base);
              if (previous.count(base) != 0) reused.insert(base);
              check_clean(h);
              descend(depth, kFrameBytes, AtBottom::kPark, h, reached);
            });
          }
          reached.wait();
        },
        one_scheduler());
    previous = std::move(bases);
  }
  EXPECT_EQ(h.dirty, 0) << h.example;
  // The kernel reuses the unmapped ranges (that is what makes the check bite).
  EXPECT_GT(reused.size(), static_cast<size_t>(kPerRun) / 2);
#if FIBER_ASAN
  EXPECT_EQ(h.poisoned, kRuns * kPerRun) << "the abandoned frames should have left poison behind";
#endif
  testing::accept_current_resources();  // the parked fibers, abandoned on purpose
}

// rss_bytes() is VmRSS from /proc/self/status.
int64_t rss_bytes() {
  int64_t kb = -1;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      long long v = 0;
      if (std::sscanf(line, "VmRSS: %lld kB", &v) == 1) kb = v;
    }
    std::fclose(f);
  }
  return kb * 1024;
}

// touch_deep() uses `bytes` of stack below the caller, then returns.
[[gnu::noinline]] void touch_deep(size_t bytes) {
  auto* buf = static_cast<volatile char*>(alloca(bytes));
  for (size_t i = 0; i < bytes; i += 4096) buf[i] = 1;
  buf[bytes - 1] = 1;
}

// Fibers that go deep and come back up before they park: their stacks return
// to the pool looking shallow, with the deep pages still committed, until the
// scheduler's idle turns trim them.
TEST(StackReuseTest, PooledStacksGiveTheirPagesBackOnceTheSchedulerIsIdle) {
  constexpr int kLive = 1024;
  constexpr size_t kDeep = 192 * 1024;
  int64_t before = 0, peak = 0, after = 0;
  size_t untrimmed_at_end = 0, untrimmed_after = 0;
  run(
      [&] {
        const detail::StackPool& pool = detail::t_scheduler->stack_pool();
        before = rss_bytes();
        WaitGroup deep, gate, finished;
        deep.add(kLive);
        gate.add(1);
        finished.add(kLive);
        for (int i = 0; i < kLive; ++i) {
          go([&] {
            touch_deep(kDeep);
            deep.done();
            gate.wait();  // parks shallow: the pool cannot tell it went deep
            finished.done();
          });
        }
        deep.wait();
        peak = rss_bytes();
        gate.done();
        finished.wait();
        yield();  // the last one is reclaimed once it is off its stack
        untrimmed_at_end = pool.untrimmed();
        // The trim runs in idle turns, that is while this fiber sleeps: each
        // sleep lets the scheduler trim at least one batch. Polled, with a bound
        // so that a pool that never trims fails below instead of hanging.
        for (int i = 0; i < 1000 && pool.untrimmed() > 0; ++i) {
          sleep_for(std::chrono::milliseconds(1));
        }
        untrimmed_after = pool.untrimmed();
        after = rss_bytes();
      },
      one_scheduler());
  const int64_t grown = peak - before;
  const int64_t kept = after - before;
  RecordProperty("rss_peak_growth_bytes", std::to_string(grown));
  RecordProperty("rss_kept_bytes", std::to_string(kept));
  // The premise: the stacks really were committed deep, and most went back to
  // the pool untrimmed (one in 64 is trimmed on return regardless).
  EXPECT_GE(grown, int64_t{kLive} * static_cast<int64_t>(kDeep) * 3 / 4);
  EXPECT_GE(untrimmed_at_end, static_cast<size_t>(kLive) * 9 / 10);
  EXPECT_EQ(untrimmed_after, 0u);
#if FIBER_ASAN || FIBER_TSAN
  // ASan and TSan keep the shadow of the touched stacks (ASan its fake stacks
  // too): RSS says nothing about the pool there.
  (void)kept;
#else
  // Each pooled stack may keep its top kKeepBytes, plus 10%.
  const int64_t threshold = int64_t{kLive} * int64_t{detail::StackPool::kKeepBytes} * 11 / 10;
  EXPECT_LE(kept, threshold) << "RSS grew by " << kept << " bytes (peak growth " << grown
                             << ") and stayed after the pool trim";
#endif
}

}  // namespace
}  // namespace fiber
