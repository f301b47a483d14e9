// spawn() starts a fiber as go() does and returns a JoinHandle<T> to its result:
// join() parks the caller until the fiber returns, then gives back its value or
// rethrows its exception. Dropping the handle detaches the fiber (its exception,
// if any, is then dropped with the result).
//
// Threading: a handle may be moved to and joined from any fiber on any core, once.
//
// Example:
//   auto h = fiber::spawn([] { return 6 * 7; });
//   int v = h.join();    // 42
#pragma once

#include <atomic>
#include <exception>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"
#include "fiber/runtime.h"

namespace fiber {
class Context;  // fiber/cancellation.h

namespace detail {

// JoinStateBase is shared by a fiber and its handle; the last to let go frees it.
class JoinStateBase {
 public:
  virtual ~JoinStateBase() = default;
  // wait() parks the calling fiber until complete(). Fiber-only.
  void wait();
  // wait(ctx) parks until complete() or the end of `ctx`: {} or ctx.err().
  // Fiber-only.
  std::error_code wait(const ::fiber::Context& ctx);
  // complete() marks the result final and wakes the joiner. Thread-safe.
  void complete();
  void release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::exception_ptr error;

 private:
  SpinLock lock_;
  bool done_ ABSL_GUARDED_BY(lock_) = false;
  Fiber* waiter_ ABSL_GUARDED_BY(lock_) = nullptr;
  std::atomic<int> refs_{2};
};

template <class T>
class JoinState final : public JoinStateBase {
 public:
  std::optional<T> value;
};
template <>
class JoinState<void> final : public JoinStateBase {};

// JoinBody runs the user's callable and stores its outcome in the shared state.
// Destroyed without having run (the fiber could not start), it fails the join.
template <class F, class R>
class JoinBody {
 public:
  JoinBody(F&& f, JoinState<R>* state) : f_(std::move(f)), state_(state) {}
  JoinBody(JoinBody&& other) noexcept
      : f_(std::move(other.f_)), state_(std::exchange(other.state_, nullptr)) {}
  JoinBody& operator=(JoinBody&&) = delete;
  ~JoinBody() {
    if (state_ == nullptr) return;
    state_->error = std::make_exception_ptr(
        std::runtime_error("fiber: the spawned fiber never ran (no stack, or runtime stopped)"));
    finish();
  }

  // fail() fails the join with `why`, the reason the fiber could not start.
  void fail(std::exception_ptr why) noexcept {
    if (state_ == nullptr) return;
    state_->error = std::move(why);
    finish();
  }

  void operator()() {
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(std::move(f_));
      } else {
        state_->value.emplace(std::invoke(std::move(f_)));
      }
    } catch (...) {
      state_->error = std::current_exception();
    }
    finish();
  }

 private:
  void finish() {
    JoinState<R>* s = std::exchange(state_, nullptr);
    s->complete();
    s->release();
  }

  F f_;
  JoinState<R>* state_;
};

}  // namespace detail

template <class T>
class JoinHandle {
 public:
  JoinHandle() = default;
  explicit JoinHandle(detail::JoinState<T>* state) : state_(state) {}
  JoinHandle(JoinHandle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  ~JoinHandle() { reset(); }

  // joinable() is true until join() is called or the handle is moved from.
  bool joinable() const { return state_ != nullptr; }

  // wait() parks the caller until the fiber has returned (then join() does
  // not park) or `ctx` ends, whichever comes first: {} or ctx.err(). The
  // handle stays joinable. Throws std::logic_error if not joinable().
  // Fiber-only: parks the caller.
  std::error_code wait(const Context& ctx) {
    if (state_ == nullptr) throw std::logic_error("fiber::JoinHandle::wait: not joinable");
    return state_->wait(ctx);
  }

  // join() parks the caller until the fiber returns; returns its result or
  // rethrows its exception. Throws std::logic_error if not joinable().
  // Fiber-only: parks the caller.
  T join() {
    if (state_ == nullptr) throw std::logic_error("fiber::JoinHandle::join: not joinable");
    state_->wait();
    detail::JoinState<T>* s = std::exchange(state_, nullptr);
    struct Release {
      detail::JoinState<T>* s;
      ~Release() { s->release(); }
    } release{s};
    if (s->error) std::rethrow_exception(s->error);
    if constexpr (!std::is_void_v<T>) return std::move(*s->value);
  }

 private:
  void reset() {
    if (state_ != nullptr) std::exchange(state_, nullptr)->release();
  }

  detail::JoinState<T>* state_ = nullptr;
};

namespace detail {
template <class F>
auto spawn_joinable(int index, const SpawnOptions& options, F&& f, const SpawnSite& site)
    -> JoinHandle<std::invoke_result_t<std::decay_t<F>&&>> {
  using R = std::invoke_result_t<std::decay_t<F>&&>;
  auto* state = new JoinState<R>();
  JoinHandle<R> handle(state);  // owns one reference, the body the other
  FnBody<JoinBody<std::decay_t<F>, R>> body(
      JoinBody<std::decay_t<F>, R>(std::decay_t<F>(std::forward<F>(f)), state));
  spawn_fiber(index, options, body, site);
  return handle;
}
}  // namespace detail

// spawn() is go() with a handle to the result. Throws as go() does.
template <class F>
auto spawn(const SpawnOptions& options, F&& f, detail::SpawnSite site = {}) {
  return detail::spawn_joinable(-1, options, std::forward<F>(f), site);
}
template <class F>
auto spawn(F&& f, detail::SpawnSite site = {}) {
  return detail::spawn_joinable(-1, SpawnOptions{}, std::forward<F>(f), site);
}

// spawn_on() is go_on() with a handle to the result. Throws as go_on() does.
template <class F>
auto spawn_on(unsigned index, F&& f, detail::SpawnSite site = {}) {
  return detail::spawn_joinable(static_cast<int>(index), SpawnOptions{}, std::forward<F>(f), site);
}
template <class F>
auto spawn_on(unsigned index, const SpawnOptions& options, F&& f, detail::SpawnSite site = {}) {
  return detail::spawn_joinable(static_cast<int>(index), options, std::forward<F>(f), site);
}

}  // namespace fiber
