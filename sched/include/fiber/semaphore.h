// Semaphore is a weighted semaphore, as golang.org/x/sync/semaphore: acquire(n)
// takes n units of a fixed capacity, release(n) gives them back. Waiters are
// served in arrival order, so a big request is not starved by a stream of small
// ones (a small one waits behind a big one at the head of the queue).
//
// Threading: thread-safe; acquire() is fiber-only (it parks the caller).
//
// Example:
//   fiber::Semaphore sem(4);               // at most 4 jobs at once
//   if (std::error_code e = sem.acquire(ctx, 1)) return e;   // ctx ended
//   fiber::go([&] { work(); sem.release(1); });
#pragma once

#include <cstdint>
#include <system_error>

#include "absl/base/thread_annotations.h"
#include "fiber/cancellation.h"
#include "fiber/detail/park.h"

namespace fiber {
namespace detail {
class WakeList;
}  // namespace detail

class Semaphore {
 public:
  // Semaphore() makes a semaphore of `capacity` units, all free.
  explicit Semaphore(int64_t capacity) : size_(capacity) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // acquire() takes n units, parking until they are free and every earlier waiter
  // is served, or until `ctx` ends. Returns {} with the units taken, or ctx.err()
  // with none taken (units granted just as `ctx` ended are given back, as Go's
  // semaphore does). A request over the capacity waits for ctx. Fiber-only:
  // parks the caller.
  [[nodiscard]] std::error_code acquire(const Context& ctx, int64_t n = 1);
  // acquire(n) waits without a context. Fiber-only: parks the caller.
  void acquire(int64_t n = 1) { (void)acquire(background(), n); }
  // try_acquire() takes n units if they are free and nobody waits; never parks.
  bool try_acquire(int64_t n = 1);
  // release() gives back n units and wakes the waiters that now fit, in order.
  // Throws std::logic_error if more units are released than are held.
  void release(int64_t n = 1);

 private:
  struct Waiter {
    detail::Fiber* fiber = nullptr;
    int64_t n = 0;
    bool acquired = false;  // set under lock_ by release()
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
    bool linked = false;
  };
  // grant_locked() gives units to the waiters at the head that fit; their fibers
  // go on `wake`, to be readied once the lock is released.
  void grant_locked(detail::WakeList& wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);

  const int64_t size_;
  detail::SpinLock lock_;
  int64_t cur_ ABSL_GUARDED_BY(lock_) = 0;  // units held
  detail::IntrusiveList<Waiter> waiters_ ABSL_GUARDED_BY(lock_);
};

}  // namespace fiber
