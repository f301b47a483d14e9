// The runtime: one scheduler per CPU, each on its own pinned thread, running
// fibers. fiber::run() starts it; the Go-like calls below use it.
//
// Threading: each scheduler runs only its own fibers (no work stealing), so a
// fiber stays on one thread for life and thread_local data is safe in fibers.
// go() spawns on the caller's scheduler; go_on() picks one.
//
// Example:
//   int main() {
//     return fiber::run([] {
//       fiber::WaitGroup wg;
//       for (int i = 0; i < 1000; ++i) {
//         wg.add(1);
//         fiber::go([&wg] { fiber::sleep_for(std::chrono::milliseconds(10)); wg.done(); });
//       }
//       wg.wait();
//       return 0;
//     });
//   }
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "fiber/detail/body.h"
#include "fiber/options.h"
#include "fiber/stack_size.h"

namespace fiber {

namespace detail {
void run_main(absl::FunctionRef<void()> main, const Options& options);
void spawn_fiber(int scheduler, const SpawnOptions& options, FiberBody& body,
                 const SpawnSite& site);
void sleep_until_ns(int64_t deadline_ns);
int64_t now_ns();
// The calling thread's "time slice is up" flag: its scheduler's, which the
// runtime's monitor sets, or kNeverDue off scheduler threads.
extern const std::atomic<bool> kNeverDue;
extern thread_local constinit const std::atomic<bool>* t_slice_due;
void slice_yield();
}  // namespace detail

// run() starts the runtime, runs `main` in a fiber on scheduler 0 and returns its
// result once it returns. Then the runtime stops: fibers still parked are
// abandoned without unwinding (as goroutines are when Go's main returns).
// spawn_blocking() calls not yet started never start; calls running get
// Options::blocking_shutdown_grace to return, and those still running after it
// are left to finish on their own threads, which run() detaches. So run()
// returns at most that grace after `main` returned, plus the time each
// scheduler takes to reach its next turn (a fiber that never parks holds its
// core). An exception escaping `main` is rethrown by run().
// Throws std::invalid_argument for bad options, std::logic_error when called
// from inside a fiber, std::system_error when the driver cannot start (the
// message says why).
template <class F>
std::invoke_result_t<F&> run(F&& main, const Options& options = {}) {
  using R = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<R>) {
    detail::run_main(main, options);
  } else {
    std::optional<R> result;
    detail::run_main([&] { result.emplace(main()); }, options);
    return std::move(*result);
  }
}

// go() starts f() in a new fiber on the caller's scheduler. An exception escaping
// f ends the process with its what() and the fiber's id. Throws
// std::logic_error outside a runtime's scheduler thread, std::invalid_argument
// for a bad stack size, std::system_error when no stack can be mapped.
// The call site (`site`) is kept for the runtime's reports (stalls, dumps).
template <class F>
void go(F&& f, detail::SpawnSite site = {}) {
  detail::FnBody<std::decay_t<F>> body(std::forward<F>(f));
  detail::spawn_fiber(-1, SpawnOptions{}, body, site);
}
template <class F>
void go(const SpawnOptions& options, F&& f, detail::SpawnSite site = {}) {
  detail::FnBody<std::decay_t<F>> body(std::forward<F>(f));
  detail::spawn_fiber(-1, options, body, site);
}

// go_on() starts f() in a new fiber on scheduler `index` (0 ≤ index <
// scheduler_count()); callable from any thread of the runtime, including
// spawn_blocking() threads. Throws std::out_of_range for a bad index; otherwise
// as go(), except that a failure to map a stack on another core is reported on
// stderr there (the caller has moved on).
template <class F>
void go_on(unsigned index, F&& f, detail::SpawnSite site = {}) {
  detail::FnBody<std::decay_t<F>> body(std::forward<F>(f));
  detail::spawn_fiber(static_cast<int>(index), SpawnOptions{}, body, site);
}
template <class F>
void go_on(unsigned index, const SpawnOptions& options, F&& f, detail::SpawnSite site = {}) {
  detail::FnBody<std::decay_t<F>> body(std::forward<F>(f));
  detail::spawn_fiber(static_cast<int>(index), options, body, site);
}

// yield() lets the other runnable fibers of this scheduler run. Fiber-only.
void yield();

// maybe_yield() yields if the calling fiber has used up its time slice
// (Options::time_slice), and otherwise costs a load and a branch: call it in
// long compute loops, which would otherwise hold the core. Runtime calls (I/O
// that completes at once, channel operations, locks) do the same. Anywhere:
// outside a fiber it does nothing.
inline void maybe_yield() {
  if (detail::t_slice_due->load(std::memory_order_relaxed)) [[unlikely]] {
    detail::slice_yield();
  }
}

// sleep_until() parks the caller until `deadline`; a past deadline returns at
// once. Fiber-only: parks the caller.
template <class Clock, class Duration>
void sleep_until(const std::chrono::time_point<Clock, Duration>& deadline) {
  auto left = deadline - Clock::now();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  detail::sleep_until_ns(ns <= 0 ? 0 : detail::now_ns() + ns);
}

// sleep_for() parks the caller for at least `d`. Fiber-only: parks the caller.
template <class Rep, class Period>
void sleep_for(const std::chrono::duration<Rep, Period>& d) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  detail::sleep_until_ns(ns <= 0 ? 0 : detail::now_ns() + ns);
}

// current_id() is the calling fiber's id (unique within a run, never 0), or 0
// when the caller is not a fiber.
uint64_t current_id();

// scheduler_index() is the index of the caller's scheduler. Throws
// std::logic_error outside a scheduler thread.
unsigned scheduler_index();

// scheduler_count() is the number of schedulers of the running runtime. Throws
// std::logic_error outside a runtime's threads.
unsigned scheduler_count();

// stats() reads every scheduler's counters. Each counter is exact for its core
// at some instant of the call, not a snapshot of all cores at one instant.
// Throws std::logic_error outside a runtime's threads.
std::vector<SchedulerStats> stats();

// driver_info() says which driver the running runtime uses and why. Throws
// std::logic_error outside a runtime's threads.
const DriverInfo& driver_info();

}  // namespace fiber
