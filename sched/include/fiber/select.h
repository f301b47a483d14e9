// select() is Go's select statement: it waits until one of several channel
// operations can proceed, does exactly that one, runs its callback and returns its
// position among the arguments.
//
//   on_recv(ch, f)       receive; f(std::optional<T>), std::nullopt once ch is closed
//   on_send(ch, v, f)    send v; f() or f(std::error_code) (broken_pipe: ch closed)
//   on_timeout(d, f)     fires if nothing else did within d (a std::chrono duration)
//   on_default(f)        fires at once if nothing else is ready (a non-blocking select)
//
// When several cases are ready, one is picked uniformly at random, so none starves.
// Cases on a nil channel never fire. A select with no case that could ever fire (only
// nil channels, no timeout, no default) returns kSelectNothing (-1) at once instead
// of parking forever as Go would. The value of an on_send case that did not fire
// stays in the case (it is dropped with it; keep a copy if you need it back).
//
// Threading: fiber-only when it may park (no on_default). The channels may be
// shared with fibers on any core; the timeout runs on the caller's core.
//
// Example:
//   int got = 0;
//   switch (fiber::select(
//       fiber::on_recv(results, [&](std::optional<int> v) { got = v.value_or(-1); }),
//       fiber::on_send(requests, job, [] {}),
//       fiber::on_recv(ctx.done(), [](auto) {}),
//       fiber::on_timeout(std::chrono::milliseconds(50), [] { log("slow"); }))) {
//     case 0: ...   // received into got
//     case 3: ...   // timed out
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "fiber/chan.h"
#include "fiber/runtime.h"

namespace fiber {

// kSelectNothing is what select() returns when no case could ever fire.
inline constexpr int kSelectNothing = -1;

namespace detail {

enum class SelectKind : uint8_t { kRecv, kSend, kDefault, kTimeout };

// SelectCase describes one case to select_impl(); core is nullptr for a nil channel.
struct SelectCase {
  SelectKind kind = SelectKind::kDefault;
  ChanCore* core = nullptr;
  void* elem = nullptr;  // send: the value; recv: raw storage for one
};

struct SelectOutcome {
  int index;  // the case that fired, or kSelectNothing
  bool ok;    // channel cases: a value moved (false: the channel was closed)
};

// select_impl() runs one select over cases[0..n); `waiters` has n entries and
// `scratch` 2n. deadline_ns is the on_timeout case's deadline (now_ns() clock).
SelectOutcome select_impl(SelectCase* cases, ChanWaiter* waiters, uint16_t* scratch, int n,
                          int64_t deadline_ns);

struct Noop {
  template <class... A>
  void operator()(A&&...) const {}
};

template <class T, class F>
class RecvCase {
 public:
  RecvCase(Chan<T> ch, F f) : ch_(std::move(ch)), f_(std::move(f)) {}
  void fill(SelectCase& c, int64_t&) {
    c.kind = SelectKind::kRecv;
    c.core = ch_.core();
    c.elem = raw_;
  }
  void dispatch(bool ok) {
    if (!ok) {
// gcc 12 at -O0 with sanitizers reports the empty optional's inlined destructor
// as reading an uninitialised member (a known false positive of
// -Wmaybe-uninitialized with optional<unique_ptr>): the optional is empty.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
      f_(std::optional<T>());
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
      return;
    }
    T* p = std::launder(reinterpret_cast<T*>(raw_));
    std::optional<T> v(std::move(*p));
    p->~T();
    f_(std::move(v));
  }

 private:
  Chan<T> ch_;
  F f_;
  alignas(T) unsigned char raw_[sizeof(T)];
};

template <class T, class F>
class SendCase {
 public:
  SendCase(Chan<T> ch, T v, F f) : ch_(std::move(ch)), v_(std::move(v)), f_(std::move(f)) {}
  void fill(SelectCase& c, int64_t&) {
    c.kind = SelectKind::kSend;
    c.core = ch_.core();
    c.elem = &v_;
  }
  void dispatch(bool ok) {
    if constexpr (std::is_invocable_v<F&, std::error_code>) {
      f_(ok ? std::error_code() : std::make_error_code(std::errc::broken_pipe));
    } else {
      f_();
    }
  }

 private:
  Chan<T> ch_;
  T v_;
  F f_;
};

template <class F>
class TimeoutCase {
 public:
  TimeoutCase(int64_t ns, F f) : ns_(ns), f_(std::move(f)) {}
  void fill(SelectCase& c, int64_t& deadline) {
    c.kind = SelectKind::kTimeout;
    deadline = ns_ <= 0 ? 0 : now_ns() + ns_;
  }
  void dispatch(bool) { f_(); }

 private:
  int64_t ns_;
  F f_;
};

template <class F>
class DefaultCase {
 public:
  explicit DefaultCase(F f) : f_(std::move(f)) {}
  void fill(SelectCase& c, int64_t&) { c.kind = SelectKind::kDefault; }
  void dispatch(bool) { f_(); }

 private:
  F f_;
};

template <class C>
struct IsTimeout : std::false_type {};
template <class F>
struct IsTimeout<TimeoutCase<F>> : std::true_type {};
template <class C>
struct IsDefault : std::false_type {};
template <class F>
struct IsDefault<DefaultCase<F>> : std::true_type {};

}  // namespace detail

// on_recv() is a receive case; f gets std::optional<T> (std::nullopt: closed).
template <class T, class F = detail::Noop>
detail::RecvCase<T, F> on_recv(const Chan<T>& ch, F f = {}) {
  return detail::RecvCase<T, F>(ch, std::move(f));
}

// on_send() is a send case of `v`; f() or f(std::error_code) runs if it fired.
template <class T, class V, class F = detail::Noop>
detail::SendCase<T, F> on_send(const Chan<T>& ch, V&& v, F f = {}) {
  return detail::SendCase<T, F>(ch, T(std::forward<V>(v)), std::move(f));
}

// on_timeout() fires when `d` has passed since select() began and nothing else
// fired; d <= 0 makes it fire at once unless a channel case is ready.
template <class Rep, class Period, class F = detail::Noop>
detail::TimeoutCase<F> on_timeout(const std::chrono::duration<Rep, Period>& d, F f = {}) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return detail::TimeoutCase<F>(static_cast<int64_t>(ns), std::move(f));
}

// on_default() fires when no channel case is ready at once.
template <class F = detail::Noop>
detail::DefaultCase<F> on_default(F f = {}) {
  return detail::DefaultCase<F>(std::move(f));
}

// select() waits for the first case that can proceed, runs its callback and
// returns its index among the arguments; kSelectNothing if no case can ever fire.
// At most one on_timeout and one on_default. Fiber-only: parks the caller unless
// there is an on_default case.
template <class... Cases>
int select(Cases&&... cases) {
  constexpr int n = static_cast<int>(sizeof...(Cases));
  static_assert(n > 0, "fiber::select needs at least one case");
  static_assert((0 + ... + int(detail::IsTimeout<std::decay_t<Cases>>::value)) <= 1,
                "fiber::select: at most one on_timeout case");
  static_assert((0 + ... + int(detail::IsDefault<std::decay_t<Cases>>::value)) <= 1,
                "fiber::select: at most one on_default case");
  detail::SelectCase sc[n];
  detail::ChanWaiter waiters[n];
  uint16_t scratch[2 * n];
  int64_t deadline = -1;
  int i = 0;
  (cases.fill(sc[i++], deadline), ...);
  detail::SelectOutcome out = detail::select_impl(sc, waiters, scratch, n, deadline);
  i = 0;
  ((i++ == out.index ? cases.dispatch(out.ok) : void()), ...);
  return out.index;
}

}  // namespace fiber
