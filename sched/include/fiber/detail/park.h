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

#include "absl/base/thread_annotations.h"
#include "fiber/detail/wait_reason.h"

namespace fiber::detail {

struct Fiber;

// The running fiber of this thread (fiber/fiber.cc); constinit, so reading it
// costs one TLS load and no init-wrapper call.
extern thread_local constinit Fiber* t_current_fiber;

// not_in_fiber() throws std::logic_error naming `api` ("called outside a fiber").
[[noreturn]] void not_in_fiber(const char* api);

// current_fiber() returns the calling fiber, or throws std::logic_error naming
// `api` when called outside a fiber. Inline: every parking call starts with it.
inline Fiber* current_fiber(const char* api) {
  Fiber* f = t_current_fiber;
  if (f == nullptr) [[unlikely]]
    not_in_fiber(api);
  return f;
}

// park() suspends the calling fiber until ready() is called for it, noting
// why (for the runtime's reports): a deadline (`until_ns`, now_ns() clock,
// 0: none) and an fd where they apply. Fiber-only.
void park(WaitReason why = WaitReason::kUnknown, int64_t until_ns = 0, int32_t fd = -1);

// ready() makes a parked fiber runnable on its own scheduler. Thread-safe.
void ready(Fiber* f);

// SpinLock guards the short critical sections of the cross-core primitives (a
// few pointer moves; never held across a park or a syscall). A capability for
// clang's thread-safety analysis: fields it guards say ABSL_GUARDED_BY(lock_).
class ABSL_LOCKABLE SpinLock {
 public:
  void lock() noexcept ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  bool try_lock() noexcept ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept ABSL_UNLOCK_FUNCTION() { locked_.store(false, std::memory_order_release); }

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

// IntrusiveList is a FIFO of nodes that carry their own links (`prev`, `next`,
// `linked`): nodes live on parked fibers' stacks, so queueing allocates nothing.
// Guarded by its owner's lock (the owner's field says ABSL_GUARDED_BY).
template <class Node>
class IntrusiveList {
 public:
  bool empty() const { return head_ == nullptr; }
  Node* front() const { return head_; }

  void push_back(Node* n) {
    n->next = nullptr;
    n->prev = tail_;
    if (tail_ != nullptr) {
      tail_->next = n;
    } else {
      head_ = n;
    }
    tail_ = n;
    n->linked = true;
  }

  Node* pop_front() {
    Node* n = head_;
    if (n != nullptr) remove(n);
    return n;
  }

  // remove() unlinks `n`; a node not linked is left alone.
  void remove(Node* n) {
    if (!n->linked) return;
    if (n->prev != nullptr) {
      n->prev->next = n->next;
    } else {
      head_ = n->next;
    }
    if (n->next != nullptr) {
      n->next->prev = n->prev;
    } else {
      tail_ = n->prev;
    }
    n->prev = n->next = nullptr;
    n->linked = false;
  }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
};

// WaitList is the FIFO of fibers waiting on a Mutex, CondVar or WaitGroup.
using WaitList = IntrusiveList<Waiter>;

}  // namespace fiber::detail
