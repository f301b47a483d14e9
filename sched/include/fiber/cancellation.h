// Context carries a cancellation signal and a deadline across fibers and cores,
// after Go's context.Context. background() is never cancelled; with_cancel(),
// with_deadline() and with_timeout() derive a child that ends when its cancel
// function is called, its deadline passes or its parent ends, whichever is first.
//
// done() is a channel that is closed when the context ends: receive from it, or
// put on_recv(ctx.done()) in a select. err() then says why: a ContextError,
// kCanceled or kDeadlineExceeded, whose messages are Go's ("context canceled",
// "context deadline exceeded") and which compare equal to
// std::errc::operation_canceled and std::errc::timed_out. cause() says what
// with_cancel_cause()'s cancel was given. with_value() attaches a value that
// the context and its descendants carry (Go's WithValue, keyed by a typed
// ContextKey). Channel send/recv and sleep_for take a Context to give up early.
//
// CancelHook runs a callback once when a context ends (Go's context.AfterFunc),
// for code that cannot park on done(), such as cancelling an in-flight I/O
// operation. The callback runs on the thread that ends the context: a fiber
// calling cancel, or a scheduler thread outside any fiber when a deadline passes.
// It must therefore be short and must not park.
//
// Threading: all calls are thread-safe; Context and CancelFunc are cheap copyable
// handles. Deadlines fire on the scheduler that made the context.
//
// Example:
//   auto [ctx, cancel] = fiber::with_timeout(fiber::background(), 100ms);
//   fiber::go_on(1, [ctx, out] {
//     for (int i = 0;; ++i) {
//       if (out.send(ctx, i)) return;   // ctx ended: operation_canceled or timed_out
//     }
//   });
//   ...
//   cancel();                           // releases the timer early; idempotent
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>

#include "absl/functional/any_invocable.h"
#include "fiber/chan.h"
#include "fiber/select.h"
#include "fiber/time.h"

namespace fiber {

// ContextError is why a context ended. Its codes are errno values and compare
// equal to std::errc::operation_canceled and std::errc::timed_out; their
// messages are Go's.
enum class ContextError { kCanceled = ECANCELED, kDeadlineExceeded = ETIMEDOUT };
// context_category() is ContextError's category ("fiber.context").
const std::error_category& context_category();
inline std::error_code make_error_code(ContextError e) {
  return {static_cast<int>(e), context_category()};
}

}  // namespace fiber

template <>
struct std::is_error_code_enum<fiber::ContextError> : std::true_type {};

namespace fiber {

class Context;
struct WithCancel;
struct WithCancelCause;

// ContextKey<T> names a value of type T carried by contexts; keys compare by
// address, so define each once (`inline const fiber::ContextKey<User> kUser;`).
template <class T>
class ContextKey {
 public:
  constexpr ContextKey() = default;
  ContextKey(const ContextKey&) = delete;
  ContextKey& operator=(const ContextKey&) = delete;
};

namespace detail {
class ContextState;
// ContextValue is one with_value() link; immutable once made.
struct ContextValue {
  const void* key;
  std::shared_ptr<const void> value;
  std::shared_ptr<const ContextValue> parent;
};
// derive_context() makes a child of `parent` with an absolute deadline (now_ns()
// clock; negative: none).
WithCancel derive_context(const ::fiber::Context& parent, int64_t deadline_ns);
}  // namespace detail

// Done is the element type of Context::done(): nothing is ever sent, it is closed.
using Done = std::monostate;

class Context {
 public:
  // Context() is background(): never cancelled, no deadline.
  Context() = default;

  // done() is closed when the context ends; a nil channel (never ready) for
  // background(). Do not close it yourself. Thread-safe.
  Chan<Done> done() const;
  // err() is {} while the context is live, then operation_canceled or timed_out.
  // Thread-safe.
  std::error_code err() const;
  // deadline() is when the context times out, if it has a deadline. Thread-safe.
  std::optional<TimePoint> deadline() const;
  // cause() is {} while the context is live; then the cause given to the cancel
  // of with_cancel_cause() (of this context or the ancestor that ended it), else
  // err(). Thread-safe.
  std::error_code cause() const;

  // value() is the value that with_value() attached under `key` to this context
  // or its nearest ancestor, or nullptr. It lives as long as the contexts that
  // carry it. Thread-safe.
  template <class T>
  const T* value(const ContextKey<T>& key) const {
    for (const detail::ContextValue* v = values_.get(); v != nullptr; v = v->parent.get()) {
      if (v->key == &key) return static_cast<const T*>(v->value.get());
    }
    return nullptr;
  }

 private:
  friend class CancelHook;
  friend WithCancel detail::derive_context(const ::fiber::Context&, int64_t);
  friend WithCancelCause with_cancel_cause(const Context& parent);
  template <class T, class V>
  friend Context with_value(const Context& parent, const ContextKey<T>& key, V&& v);
  explicit Context(std::shared_ptr<detail::ContextState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::ContextState> state_;
  std::shared_ptr<const detail::ContextValue> values_;  // nullptr: no values
};

// background() is the root context: never cancelled.
inline Context background() { return Context(); }

// CancelFunc ends its context with operation_canceled (and every descendant);
// calling it again, or after the deadline, does nothing. Thread-safe.
class CancelFunc {
 public:
  CancelFunc() = default;
  void operator()() const;

 private:
  friend WithCancel detail::derive_context(const ::fiber::Context&, int64_t);
  explicit CancelFunc(std::shared_ptr<detail::ContextState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::ContextState> state_;
};

// WithCancel is a derived context and its cancel function:
//   auto [ctx, cancel] = fiber::with_cancel(parent);
struct WithCancel {
  Context ctx;
  CancelFunc cancel;
};

// with_cancel() derives a context that ends when `cancel` is called or the parent
// ends. Thread-safe.
inline WithCancel with_cancel(const Context& parent) { return detail::derive_context(parent, -1); }

// CancelCauseFunc is CancelFunc with a cause: cancel(cause) ends the context with
// err() kCanceled and cause() `cause` ({}: kCanceled). Only the first call, or
// the parent ending first, counts. Thread-safe.
class CancelCauseFunc {
 public:
  CancelCauseFunc() = default;
  void operator()(std::error_code cause) const;

 private:
  friend WithCancelCause with_cancel_cause(const Context& parent);
  explicit CancelCauseFunc(std::shared_ptr<detail::ContextState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::ContextState> state_;
};

struct WithCancelCause {
  Context ctx;
  CancelCauseFunc cancel;
};

// with_cancel_cause() is with_cancel() whose cancel takes a cause (Go's
// WithCancelCause), which ctx.cause() returns. Thread-safe.
WithCancelCause with_cancel_cause(const Context& parent);

// with_value() derives a context that carries `v` under `key` (and every value of
// the parent); it ends with the parent. Keep values small and immutable: they are
// shared by every descendant, on any core. Thread-safe.
template <class T, class V>
Context with_value(const Context& parent, const ContextKey<T>& key, V&& v) {
  Context c = parent;
  c.values_ = std::make_shared<const detail::ContextValue>(
      detail::ContextValue{&key, std::make_shared<const T>(std::forward<V>(v)), parent.values_});
  return c;
}

// with_deadline() derives a context that also ends at `deadline` with timed_out (at
// once if it has passed). The deadline is the earlier of `deadline` and the
// parent's. Throws std::logic_error off a scheduler thread (the timer needs one).
template <class Clock, class Duration>
WithCancel with_deadline(const Context& parent,
                         const std::chrono::time_point<Clock, Duration>& deadline) {
  int64_t left = detail::to_ns(deadline - Clock::now());
  return detail::derive_context(parent, detail::now_ns() + (left > 0 ? left : 0));
}

// with_timeout() is with_deadline(parent, now + d).
template <class Rep, class Period>
WithCancel with_timeout(const Context& parent, const std::chrono::duration<Rep, Period>& d) {
  int64_t ns = detail::to_ns(d);
  return detail::derive_context(parent, detail::now_ns() + (ns > 0 ? ns : 0));
}

// CancelHook registers `f` to run once when `ctx` ends (at once, on the calling
// thread, if it already has; never for background()). stop() deregisters it.
// Not movable: its registration lives inside it, so registering allocates
// nothing beyond what `f` itself needs. Destroying it calls stop().
class CancelHook {
 public:
  CancelHook(const Context& ctx, absl::AnyInvocable<void()> f);
  ~CancelHook() { stop(); }
  CancelHook(const CancelHook&) = delete;
  CancelHook& operator=(const CancelHook&) = delete;

  // stop() deregisters the callback. Returns true if it stopped it from running;
  // false if it has run or is running, in which case stop() first waits for it to
  // return (unless called from inside the callback itself). Either way, once stop()
  // returns the callback is not running and will not run. Thread-safe; the wait
  // yields the fiber (or the thread) and lasts as long as the callback does.
  bool stop();

 private:
  friend class detail::ContextState;
  std::shared_ptr<detail::ContextState> state_;
  absl::AnyInvocable<void()> f_;
  CancelHook* prev_ = nullptr;  // guarded by the context's lock
  CancelHook* next_ = nullptr;  // guarded by the context's lock
  // kIdle (not registered) -> kRegistered -> kRunning -> kDone, or -> kIdle by stop().
  std::atomic<uint8_t> phase_{0};
  std::thread::id runner_;  // who runs f_ (kRunning); guarded by the context's lock
  uint64_t runner_fiber_ = 0;
};

// sleep_for(ctx, d) sleeps for `d` unless `ctx` ends first; returns {} after the
// full sleep, else ctx.err(). Fiber-only: parks the caller.
template <class Rep, class Period>
std::error_code sleep_for(const Context& ctx, const std::chrono::duration<Rep, Period>& d) {
  if (std::error_code e = ctx.err()) return e;
  if (select(on_recv(ctx.done()), on_timeout(d)) == 1) return {};
  return ctx.err();
}

// --- Chan's context-bounded operations (declared in fiber/chan.h) -------------

template <class T>
std::error_code Chan<T>::send(const Context& ctx, T v) const {
  if (core_ == nullptr) return std::make_error_code(std::errc::invalid_argument);
  if (std::error_code e = ctx.err()) return e;
  std::error_code result;
  int idx = select(on_send(*this, std::move(v), [&](std::error_code ec) { result = ec; }),
                   on_recv(ctx.done()));
  return idx == 0 ? result : ctx.err();
}

template <class T>
RecvResult<T> Chan<T>::recv(const Context& ctx) const {
  RecvResult<T> r;
  if (core_ == nullptr) {
    r.error = std::make_error_code(std::errc::invalid_argument);
    return r;
  }
  if ((r.error = ctx.err())) return r;
  int idx = select(on_recv(*this,
                           [&](std::optional<T> v) {
                             if (v) {
                               r.value = std::move(v);
                             } else {
                               r.error = std::make_error_code(std::errc::broken_pipe);
                             }
                           }),
                   on_recv(ctx.done()));
  if (idx != 0) r.error = ctx.err();
  return r;
}

}  // namespace fiber
