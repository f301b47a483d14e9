// after_func() is Go's time.AfterFunc: it runs f in a fiber of its own once `d`
// has passed, and returns a FuncTimer that can stop or re-arm it.
//
// The timer lives on the core that called after_func(), and f's fiber starts
// there. Dropping the FuncTimer does not stop it (as in Go, the function still
// runs); keep it to call stop().
//
// Threading: after_func() needs a scheduler thread (a fiber, normally); a
// FuncTimer's calls are thread-safe.
//
// Example:
//   fiber::FuncTimer t = fiber::after_func(2s, [conn] { conn->cancel(); });
//   ... the work finished in time:
//   t.stop();
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "fiber/time.h"

namespace fiber {

namespace detail {
class FuncTimerCore;
}  // namespace detail

class FuncTimer {
 public:
  FuncTimer() = default;
  FuncTimer(FuncTimer&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  FuncTimer& operator=(FuncTimer&& o) noexcept;
  // ~FuncTimer() lets go of the timer without stopping it.
  ~FuncTimer();

  // stop() keeps f from starting; true if it did (false: f has started, or the
  // timer was stopped already). It does not wait for a running f. Thread-safe.
  bool stop();
  // reset() re-arms the timer to start f (again) `d` from now; true if it was
  // armed. Thread-safe.
  template <class Rep, class Period>
  bool reset(const std::chrono::duration<Rep, Period>& d) {
    return reset_ns(detail::to_ns(d));
  }

 private:
  friend FuncTimer after_func_ns(int64_t ns, absl::AnyInvocable<void()> f);
  explicit FuncTimer(detail::FuncTimerCore* core) : core_(core) {}
  bool reset_ns(int64_t ns);

  detail::FuncTimerCore* core_ = nullptr;
};

FuncTimer after_func_ns(int64_t ns, absl::AnyInvocable<void()> f);

// after_func() starts f() in a new fiber on this core `d` from now (at once for
// d <= 0), unless stop() comes first. f runs once per arming; reset() after it
// ran starts it again. Throws std::logic_error off a scheduler thread.
template <class Rep, class Period>
FuncTimer after_func(const std::chrono::duration<Rep, Period>& d, absl::AnyInvocable<void()> f) {
  return after_func_ns(detail::to_ns(d), std::move(f));
}

}  // namespace fiber
