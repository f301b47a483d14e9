// Fiber stack sizes. A stack is virtual memory reserved at spawn and committed by
// the kernel page by page as the fiber touches it, so a large default costs
// address space, not RAM: a parked fiber that used 3 KiB of stack holds about one
// page. Below every stack is a guard page; overflowing into it ends the process
// with "fiber stack overflow" and the fiber's id.
#pragma once

#include <cstddef>

namespace fiber {

// kDefaultStackSize is the usable stack of a fiber unless its spawn says otherwise.
inline constexpr size_t kDefaultStackSize = 256 * 1024;
// kMinStackSize and kMaxStackSize bound the stack size a spawn may ask for.
inline constexpr size_t kMinStackSize = 16 * 1024;
inline constexpr size_t kMaxStackSize = size_t{1} << 30;

// SpawnOptions are the per-fiber settings of a spawn.
struct SpawnOptions {
  // stack_size is the usable stack, in bytes, rounded up to whole pages.
  // Outside [kMinStackSize, kMaxStackSize] the spawn throws std::invalid_argument.
  size_t stack_size = kDefaultStackSize;
};

}  // namespace fiber
