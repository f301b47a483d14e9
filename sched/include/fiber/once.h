// Once runs an initializer exactly once, as Go's sync.Once. Unlike std::call_once,
// the initializer may park (do I/O, sleep, lock): other callers park as fibers
// until it returns, so two fibers of one core calling it do not hang the core.
//
// Threading: thread-safe; call() is fiber-only when it has to wait for an
// initializer running in another fiber. If the initializer throws, the Once still
// counts as done (Go: "if f panics, Do considers it to have returned") and the
// exception reaches the caller that ran it.
//
// Example:
//   fiber::Once once;
//   Config* config = nullptr;
//   auto get = [&] { once.call([&] { config = load_config(); }); return config; };
#pragma once

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "fiber/detail/park.h"

namespace fiber {

class Once {
 public:
  Once() = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  // call() runs f() if no call() has run it yet; otherwise waits until the first
  // call's f has returned. When call() returns, f has run and returned. Calling
  // call() on the same Once from inside f throws std::logic_error (Go deadlocks).
  // Fiber-only when it waits: parks the caller.
  void call(absl::FunctionRef<void()> f) {
    if (done_.load(std::memory_order_acquire)) return;
    call_slow(f);
  }
  // done() is true once an initializer has returned. Thread-safe.
  bool done() const { return done_.load(std::memory_order_acquire); }

 private:
  void call_slow(absl::FunctionRef<void()> f);
  void finish();

  std::atomic<bool> done_{false};  // release by finish(), acquire by call()
  detail::SpinLock lock_;
  bool running_ ABSL_GUARDED_BY(lock_) = false;
  uint64_t runner_ ABSL_GUARDED_BY(lock_) = 0;  // the fiber id running f (0: a thread)
  detail::WaitList waiters_ ABSL_GUARDED_BY(lock_);
};

}  // namespace fiber
