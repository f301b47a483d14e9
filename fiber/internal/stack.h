// Guarded fiber stacks and the per-thread pool that recycles them.
//
// Layout of one mapping (addresses grow upwards):
//   [base, base+page)     PROT_NONE guard page: an overflow faults here
//   [base+page, top)      usable stack, committed lazily by the kernel
// Each stack costs two memory maps (the guard and the rest), which is why the
// number of live fibers is bounded by vm.max_map_count / 2.
//
// Under AddressSanitizer a stack's shadow is cleared when the pool hands it out
// (frames a fiber abandoned, by its final switch or by being dropped parked,
// leave poisoned redzones), when it is freshly mapped and before it is
// unmapped: libasan (gcc 12) leaves the shadow of an unmapped range as it was,
// so a later mapping at that address would inherit stale poison.
//
// Under valgrind (FIBER_VALGRIND) each mapping's usable range is registered as
// a stack when it is mapped and deregistered before it is unmapped, so memcheck
// knows a fiber switch for a stack switch.
//
// Threading: a StackPool belongs to one thread and is never shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fiber::detail {

size_t page_size();

struct Stack {
  char* base = nullptr;  // start of the mapping (the guard page)
  size_t mapped = 0;     // bytes mapped, guard included
#ifdef FIBER_VALGRIND
  unsigned vg_id = 0;  // VALGRIND_STACK_REGISTER's id
#endif

  char* bottom() const { return base + page_size(); }
  char* top() const { return base + mapped; }
  size_t usable() const { return mapped - page_size(); }
};

// check_stack_size() returns `size` rounded up to whole pages, or throws
// std::invalid_argument when it is outside [kMinStackSize, kMaxStackSize].
size_t check_stack_size(size_t size);

class StackPool {
 public:
  // kKeepBytes is how much touched stack (from the top) a pooled stack may keep
  // committed; pages below it go back to the kernel when the stack is returned.
  static constexpr size_t kKeepBytes = 16 * 1024;
  // kMaxCached is how many free stacks the pool keeps; beyond it they are unmapped.
  static constexpr size_t kMaxCached = 4096;
  // kTrimBatch is how many cached stacks trim_idle() is meant to be asked to trim
  // in one idle turn of a scheduler: a wake-up waits for one batch at most.
  static constexpr size_t kTrimBatch = 16;

  StackPool() = default;
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool();

  // acquire() returns a stack with `usable` bytes (a multiple of the page size).
  // Throws std::system_error when the kernel refuses the mapping or its guard
  // page; the message names vm.max_map_count, the usual cause.
  Stack acquire(size_t usable);

  // release() takes a stack back. `low_water` is the lowest address the stack
  // pointer was seen at; pages touched below the keep threshold are given back
  // now when it is below the threshold, else by a later trim_idle() (a fiber
  // may have gone deep and come back up without switching down there).
  void release(Stack s, uintptr_t low_water);

  // trim_idle() gives back the pages below the keep threshold of up to `max`
  // cached stacks not trimmed since their release, oldest first, and returns
  // how many it trimmed. Meant for a scheduler with nothing to run.
  size_t trim_idle(size_t max);

  // live() is the number of stacks handed out and not yet released.
  size_t live() const { return live_; }
  // cached() is the number of free stacks kept for reuse.
  size_t cached() const { return trimmed_.size() + untrimmed_.size(); }
  // untrimmed() is how many of the cached stacks may still hold pages below
  // the keep threshold (trim_idle() has work to do).
  size_t untrimmed() const { return untrimmed_.size(); }

 private:
  void trim(const Stack& s);
  void unmap(const Stack& s);

  // Free stacks, of any sizes; each searched from the back, untrimmed_ first
  // (the most recently returned, whose pages are likely still committed).
  std::vector<Stack> trimmed_;    // nothing committed below the keep threshold; no order
  std::vector<Stack> untrimmed_;  // maybe something; oldest at the front
  size_t live_ = 0;
  uint32_t releases_ = 0;
};

}  // namespace fiber::detail
