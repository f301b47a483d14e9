// StackPool: guard pages, reuse, and giving touched pages back to the kernel.
#include "fiber/stack.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "fiber/stack_size.h"

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

TEST(StackPoolDeathTest, TheGuardPageFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  StackPool pool;
  Stack s = pool.acquire(kDefaultStackSize);
  EXPECT_DEATH(*static_cast<volatile char*>(static_cast<void*>(s.base)) = 1, "");
  pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
}

}  // namespace
}  // namespace fiber::detail
