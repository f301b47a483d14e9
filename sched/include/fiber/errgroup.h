// ErrGroup runs a group of fibers that each return an error, as Go's
// errgroup.Group: wait() waits for them all and returns the first error.
// Made with a parent context, the group also derives context(), which it
// cancels (cause: that first error) as soon as one fiber fails, and when wait()
// returns. set_limit() caps how many run at once: go() then parks until one ends.
//
// Threading: thread-safe; the fibers may be started on any core (go_on()).
// wait() and a limited go() are fiber-only. The destructor waits for the fibers
// (they refer to the group).
//
// Example:
//   fiber::ErrGroup g(ctx);                         // errgroup.WithContext(ctx)
//   for (auto& url : urls) {
//     g.go([&, ctx = g.context()] { return fetch(ctx, url); });  // std::error_code
//   }
//   if (std::error_code e = g.wait()) return e;     // the first failure
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "fiber/cancellation.h"
#include "fiber/detail/park.h"
#include "fiber/runtime.h"
#include "fiber/semaphore.h"
#include "fiber/wait_group.h"

namespace fiber {

class ErrGroup {
 public:
  // ErrGroup() is a group without a context (errgroup.Group{}).
  ErrGroup() = default;
  // ErrGroup(parent) is errgroup.WithContext(parent): context() is a child of
  // `parent` that ends at the first error or when wait() returns.
  explicit ErrGroup(const Context& parent);
  ErrGroup(const ErrGroup&) = delete;
  ErrGroup& operator=(const ErrGroup&) = delete;
  ~ErrGroup() {
    if (current_id() != 0) wg_.wait();
  }

  // context() is the group's context (background() for a group made without one).
  const Context& context() const { return ctx_; }

  // go() starts f() in a new fiber on this core; f returns std::error_code (or
  // void: never fails). With a limit, parks first until fewer than the limit
  // run. Fiber-only when limited.
  template <class F>
  void go(F&& f) {
    start();
    fiber::go(wrap(std::forward<F>(f)));
  }
  // go_on() is go() on scheduler `index`.
  template <class F>
  void go_on(unsigned index, F&& f) {
    start();
    fiber::go_on(index, wrap(std::forward<F>(f)));
  }
  // try_go() is go() that never parks: false (and f not started) at the limit.
  template <class F>
  bool try_go(F&& f) {
    if (sem_ != nullptr && !sem_->try_acquire(1)) return false;
    active_.fetch_add(1, std::memory_order_relaxed);
    wg_.add(1);
    fiber::go(wrap(std::forward<F>(f)));
    return true;
  }

  // set_limit() caps the fibers running at once at n (n < 0: no cap). Throws
  // std::logic_error while fibers of the group run (Go panics).
  void set_limit(int64_t n);

  // wait() parks until every fiber started so far has returned, cancels
  // context(), and returns the first error ({} if none). Fiber-only.
  std::error_code wait();

 private:
  void start() {
    if (sem_ != nullptr) sem_->acquire(1);
    active_.fetch_add(1, std::memory_order_relaxed);
    wg_.add(1);
  }
  // finish() records `e` if it is the first error, then counts the fiber out.
  void finish(std::error_code e);

  template <class F>
  auto wrap(F&& f) {
    return [this, f = std::forward<F>(f)]() mutable {
      if constexpr (std::is_void_v<std::invoke_result_t<std::decay_t<F>&>>) {
        f();
        finish({});
      } else {
        finish(f());
      }
    };
  }

  WaitGroup wg_;
  Context ctx_;
  CancelCauseFunc cancel_;
  std::unique_ptr<Semaphore> sem_;  // nullptr: no limit; changed only while idle
  std::atomic<int64_t> active_{0};  // fibers started and not finished
  detail::SpinLock lock_;
  std::error_code err_ ABSL_GUARDED_BY(lock_);  // the first error
};

}  // namespace fiber
