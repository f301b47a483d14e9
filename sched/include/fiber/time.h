// Time as channels, after Go's time package: after() delivers once, a Timer
// delivers once and can be stopped or reset, a Ticker delivers periodically. Their
// channels work in select() like any other.
//
// A timer fires on the scheduler (core) that created it and sends into its
// channel without parking (capacity 1: a ticker whose reader is slow drops ticks,
// as in Go). The channel may be received from on any core. stop() and reset() may
// be called from any core; after either returns, no value from before the call is
// left in the channel or will arrive (Go 1.23 semantics).
//
// Threading: creating one needs a scheduler thread (a fiber, normally); the
// objects' calls are thread-safe. A Timer or Ticker stops when destroyed.
//
// Example:
//   fiber::Ticker tick(std::chrono::milliseconds(100));
//   fiber::Timer done(std::chrono::seconds(1));
//   for (bool more = true; more;) {
//     fiber::select(fiber::on_recv(tick.chan(), [](auto) { poll(); }),
//                   fiber::on_recv(done.chan(), [&](auto) { more = false; }));
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "fiber/chan.h"

namespace fiber {

// TimePoint is what timers deliver: the steady_clock time they fired.
using TimePoint = std::chrono::steady_clock::time_point;

namespace detail {
class ChanTimer;
template <class Rep, class Period>
int64_t to_ns(const std::chrono::duration<Rep, Period>& d) {
  using Ns = std::chrono::duration<double, std::nano>;
  double ns = std::chrono::duration_cast<Ns>(d).count();  // no overflow on hours::max()
  if (ns >= 9.2e18) return INT64_MAX / 2;
  if (ns <= -9.2e18) return INT64_MIN / 2;
  return static_cast<int64_t>(ns);
}
Chan<TimePoint> after_ns(int64_t ns);
}  // namespace detail

// after() returns a channel that receives the time once, `d` from now (at once
// for d <= 0). Throws std::logic_error off a scheduler thread.
template <class Rep, class Period>
Chan<TimePoint> after(const std::chrono::duration<Rep, Period>& d) {
  return detail::after_ns(detail::to_ns(d));
}

// Timer sends the time on chan() once, `d` after it was made or last reset.
class Timer {
 public:
  // Timer() arms a timer for `d` (<= 0: fires at once). Throws std::logic_error off
  // a scheduler thread.
  template <class Rep, class Period>
  explicit Timer(const std::chrono::duration<Rep, Period>& d) : Timer(detail::to_ns(d), 0) {}
  Timer(Timer&& o) noexcept : core_(std::exchange(o.core_, nullptr)), ch_(std::move(o.ch_)) {}
  Timer& operator=(Timer&& o) noexcept;
  ~Timer();

  // chan() is the channel the time arrives on. Thread-safe.
  const Chan<TimePoint>& chan() const { return ch_; }
  // stop() prevents the timer from firing; returns true if it stopped it (false:
  // already fired or stopped). Thread-safe.
  bool stop();
  // reset() re-arms the timer for `d` from now; returns whether it was active.
  // Thread-safe.
  template <class Rep, class Period>
  bool reset(const std::chrono::duration<Rep, Period>& d) {
    return reset_ns(detail::to_ns(d), 0);
  }

 protected:
  Timer(int64_t ns, int64_t period_ns);
  bool reset_ns(int64_t ns, int64_t period_ns);

  detail::ChanTimer* core_ = nullptr;
  Chan<TimePoint> ch_;
};

// Ticker sends the time on chan() every `period`, dropping ticks a slow reader
// missed.
class Ticker : private Timer {
 public:
  // make() starts a ticker; std::nullopt if `period` is not positive. Throws
  // std::logic_error off a scheduler thread.
  template <class Rep, class Period>
  static std::optional<Ticker> make(const std::chrono::duration<Rep, Period>& period) {
    int64_t ns = detail::to_ns(period);
    if (ns <= 0) return std::nullopt;
    return Ticker(ns);
  }
  // Ticker(period) is make(period) for a period the program chose: throws
  // std::invalid_argument where make() returns std::nullopt.
  template <class Rep, class Period>
  explicit Ticker(const std::chrono::duration<Rep, Period>& period) : Ticker(checked(period)) {}
  Ticker(Ticker&&) noexcept = default;
  Ticker& operator=(Ticker&&) noexcept = default;

  using Timer::chan;
  // stop() stops the ticks; returns whether it was running. Thread-safe.
  bool stop() { return Timer::stop(); }
  // reset() restarts the ticks with a new period; std::errc::invalid_argument if
  // it is not positive. Thread-safe.
  template <class Rep, class Period>
  std::error_code reset(const std::chrono::duration<Rep, Period>& period) {
    int64_t ns = detail::to_ns(period);
    if (ns <= 0) return std::make_error_code(std::errc::invalid_argument);
    reset_ns(ns, ns);
    return {};
  }

 private:
  explicit Ticker(int64_t ns) : Timer(ns, ns) {}
  template <class Rep, class Period>
  static int64_t checked(const std::chrono::duration<Rep, Period>& period) {
    int64_t ns = detail::to_ns(period);
    if (ns <= 0) throw std::invalid_argument("fiber::Ticker: period must be positive");
    return ns;
  }
};

}  // namespace fiber
