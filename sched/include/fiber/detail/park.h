// The parking protocol that every blocking primitive is built on.
//
// A fiber that waits (1) publishes itself somewhere a waker will find it (a wait
// list, a timer, a blocking-pool task) under that place's lock, (2) releases the
// lock and (3) calls park(). A waker removes it under the same lock and calls
// ready() exactly once. ready() may run on another core before (3) happens: it
// only queues the fiber in its scheduler's inbox, which that scheduler drains
// after the fiber has switched off its stack, so the fiber is never resumed twice
// or while still running.
#pragma once

#include <atomic>
#include <cstdint>

namespace fiber::detail {

struct Fiber;

// current_fiber() returns the calling fiber, or throws std::logic_error naming
// `api` when called outside a fiber.
Fiber* current_fiber(const char* api);

// park() suspends the calling fiber until ready() is called for it. Fiber-only.
void park();

// ready() makes a parked fiber runnable on its own scheduler. Thread-safe.
void ready(Fiber* f);

// SpinLock guards the short critical sections of the cross-core primitives (a
// few pointer moves; never held across a park or a syscall).
class SpinLock {
 public:
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// Waiter is a parked fiber's entry in a wait list; it lives on that fiber's stack.
struct Waiter {
  Fiber* fiber = nullptr;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  bool linked = false;
};

// WaitList is an intrusive FIFO of waiters. Guarded by its owner's SpinLock.
class WaitList {
 public:
  bool empty() const { return head_ == nullptr; }
  void push_back(Waiter* w);
  Waiter* pop_front();
  void remove(Waiter* w);

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

}  // namespace fiber::detail
