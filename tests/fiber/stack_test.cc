// StackPool: guard pages, reuse, and giving touched pages back to the kernel.
#include "fiber/internal/stack.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "fiber/detail/sanitizer.h"
#include "fiber/stack_size.h"

#if FIBER_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace fiber::detail {
namespace {

// resident_pages() counts the pages of [p, p+len) that are in RAM.
size_t resident_pages(char* p, size_t len) {
  std::vector<unsigned char> vec(len / page_size());
  EXPECT_EQ(mincore(p, len, vec.data()), 0);
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

TEST(StackSize, RoundsUpToPagesAndRejectsAbsurdSizes) {
  EXPECT_EQ(check_stack_size(kMinStackSize + 1) % page_size(), 0u);
  EXPECT_GE(check_stack_size(kMinStackSize + 1), kMinStackSize + 1);
  EXPECT_THROW(check_stack_size(0), std::invalid_argument);
  EXPECT_THROW(check_stack_size(kMinStackSize - 1), std::invalid_argument);
  EXPECT_THROW(check_stack_size(kMaxStackSize + 1), std::invalid_argument);
}

TEST(StackPool, GivesAStackOfTheAskedSizeAndReusesIt) {
  StackPool pool;
  Stack a = pool.acquire(kDefaultStackSize);
  EXPECT_EQ(a.usable(), kDefaultStackSize);
  EXPECT_EQ(pool.live(), 1u);
  pool.release(a, reinterpret_cast<uintptr_t>(a.top()));
  EXPECT_EQ(pool.live(), 0u);
  EXPECT_EQ(pool.cached(), 1u);
  Stack b = pool.acquire(kDefaultStackSize);
  EXPECT_EQ(b.base, a.base);
  Stack c = pool.acquire(2 * kDefaultStackSize);  // another size: a new mapping
  EXPECT_NE(c.base, b.base);
  pool.release(b, reinterpret_cast<uintptr_t>(b.top()));
  pool.release(c, reinterpret_cast<uintptr_t>(c.top()));
}

TEST(StackPool, StacksAreCommittedLazily) {
  StackPool pool;
  Stack s = pool.acquire(kDefaultStackSize);
  EXPECT_EQ(resident_pages(s.bottom(), s.usable()), 0u);
  s.top()[-1] = 1;
  EXPECT_EQ(resident_pages(s.bottom(), s.usable()), 1u);
  pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
}

TEST(StackPool, ADeepStackGivesItsLowPagesBackWhenReturned) {
  StackPool pool;
  Stack s = pool.acquire(kDefaultStackSize);
  std::memset(s.bottom(), 0xab, s.usable());  // touch every page
  ASSERT_EQ(resident_pages(s.bottom(), s.usable()), s.usable() / page_size());
  pool.release(s, reinterpret_cast<uintptr_t>(s.bottom()));  // it went all the way down
  size_t kept = resident_pages(s.bottom(), s.usable());
  EXPECT_LE(kept * page_size(), StackPool::kKeepBytes);
  EXPECT_GT(kept, 0u);  // the top stays committed for the next fiber
}

TEST(StackPool, AStackThatLooksShallowIsTrimmedWhenIdle) {
  StackPool pool;
  Stack s = pool.acquire(kDefaultStackSize);
  std::memset(s.bottom(), 0xab, s.usable());  // deep, then back up before the switch
  pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
  EXPECT_EQ(pool.untrimmed(), 1u);
  EXPECT_EQ(resident_pages(s.bottom(), s.usable()), s.usable() / page_size());
  EXPECT_EQ(pool.trim_idle(StackPool::kTrimBatch), 1u);
  EXPECT_EQ(pool.untrimmed(), 0u);
  EXPECT_EQ(pool.cached(), 1u);
  EXPECT_LE(resident_pages(s.bottom(), s.usable()) * page_size(), StackPool::kKeepBytes);
  EXPECT_EQ(pool.trim_idle(StackPool::kTrimBatch), 0u);
}

TEST(StackPool, AnIdleTrimIsBoundedAndTakesTheOldestFirst) {
  StackPool pool;
  std::vector<Stack> stacks;
  for (int i = 0; i < 10; ++i) stacks.push_back(pool.acquire(kDefaultStackSize));
  for (Stack& s : stacks) {
    *(s.top() - kDefaultStackSize / 2) = 1;  // one page below the keep threshold
    pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
  }
  EXPECT_EQ(pool.trim_idle(4), 4u);
  EXPECT_EQ(pool.untrimmed(), 6u);
  for (size_t i = 0; i < stacks.size(); ++i) {
    const Stack& s = stacks[i];
    EXPECT_EQ(resident_pages(s.bottom(), s.usable()), i < 4 ? 0u : 1u) << "stack " << i;
  }
  // A stack handed out again comes from the untrimmed ones, the most recent first.
  Stack again = pool.acquire(kDefaultStackSize);
  EXPECT_EQ(again.base, stacks.back().base);
  pool.release(again, reinterpret_cast<uintptr_t>(again.top()));
}

// Stacks of several sizes, trimmed and not, are each handed out again once, at
// the size asked for, whatever order they are asked for in.
TEST(StackPool, MixedSizesAreEachReusedOnceAtTheirSize) {
  StackPool pool;
  const size_t sizes[] = {kDefaultStackSize, 2 * kDefaultStackSize, 4 * kDefaultStackSize};
  std::vector<Stack> stacks;
  for (int i = 0; i < 12; ++i) stacks.push_back(pool.acquire(sizes[i % 3]));
  for (size_t i = 0; i < stacks.size(); ++i) {
    const Stack& s = stacks[i];
    // Half go back deep (trimmed at once), half shallow (left untrimmed).
    pool.release(s, reinterpret_cast<uintptr_t>(i % 2 == 0 ? s.bottom() : s.top()));
  }
  ASSERT_EQ(pool.cached(), stacks.size());
  std::vector<void*> given;
  for (int i = 11; i >= 0; --i) {  // another order than the releases
    Stack s = pool.acquire(sizes[(i * 7) % 3]);
    EXPECT_EQ(s.usable(), sizes[(i * 7) % 3]);
    given.push_back(s.base);
  }
  EXPECT_EQ(pool.cached(), 0u);
  std::vector<void*> released;
  for (const Stack& s : stacks) released.push_back(s.base);
  std::sort(given.begin(), given.end());
  std::sort(released.begin(), released.end());
  EXPECT_EQ(given, released);  // each once, none made anew
  for (const Stack& s : stacks) pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
}

#if FIBER_ASAN
// Poison left on a stack (as by frames a fiber abandoned) must not reach the next
// user of that memory: a fiber given the stack again, or a mapping made where the
// stack was once the pool unmapped it.
TEST(StackPool, AReusedStackCarriesNoPoison) {
  StackPool pool;
  Stack s = pool.acquire(kDefaultStackSize);
  ASAN_POISON_MEMORY_REGION(s.bottom() + 4096, 4096);
  pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
  Stack again = pool.acquire(kDefaultStackSize);
  ASSERT_EQ(again.base, s.base);
  EXPECT_EQ(__asan_region_is_poisoned(again.base, again.mapped), nullptr);
  pool.release(again, reinterpret_cast<uintptr_t>(again.top()));
}

TEST(StackPool, AnUnmappedStackLeavesNoPoisonBehind) {
  Stack s;
  {
    StackPool pool;
    s = pool.acquire(kDefaultStackSize);
    ASAN_POISON_MEMORY_REGION(s.bottom() + 4096, 4096);
    pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
  }  // unmapped here
  // The shadow of the range is still there to read, and must be clear.
  EXPECT_EQ(__asan_region_is_poisoned(s.base, s.mapped), nullptr);
}

TEST(StackPool, AFreshStackCarriesNoPoisonFromAnEarlierMapping) {
  // Someone else's mapping, unmapped with poison in its shadow, where the pool's
  // next mapping is likely to land (the kernel reuses the hole it just made).
  const size_t len = kDefaultStackSize + page_size();
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(p) + 2 * page_size(), 4096);
  munmap(p, len);
  StackPool pool;
  Stack s = pool.acquire(kDefaultStackSize);
  if (s.base != p) {
    pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
    GTEST_SKIP() << "the kernel placed the stack elsewhere; nothing to check";
  }
  EXPECT_EQ(__asan_region_is_poisoned(s.base, s.mapped), nullptr);
  pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
}
#endif

TEST(StackPoolDeathTest, TheGuardPageFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  StackPool pool;
  Stack s = pool.acquire(kDefaultStackSize);
  EXPECT_DEATH(*static_cast<volatile char*>(static_cast<void*>(s.base)) = 1, "");
  pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
}

}  // namespace
}  // namespace fiber::detail
