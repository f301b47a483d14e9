// spawn_blocking() runs a callable on the runtime's bounded thread pool and parks
// the calling fiber until it returns: the way to call code that blocks a thread
// (file I/O under epoll, getaddrinfo, CPU-heavy work) without stalling a core.
// The result (or exception) comes back to the caller on its own core.
//
// The pool has at most Options::blocking_threads threads (default 64), started
// on demand; calls beyond that wait in a queue, in order.
//
// At shutdown (once main has returned, see fiber::run()) the fibers waiting
// here are abandoned with the others, and run() does not wait for the calls
// for long: queued calls never start, and a call still running after
// Options::blocking_shutdown_grace (default 100 ms) is left to finish on its
// own thread, detached, after run() has returned. Until it returns, the
// caller's fiber stack stays mapped (the call's closure and result live there),
// so `f` may keep using what it captured from that fiber; whatever else it uses
// must outlive it, and its go_on() and other runtime calls throw
// std::logic_error ("the runtime has stopped"). A process that exits meanwhile
// ends the call with it, as Go does with a goroutine blocked in a syscall.
//
// Threading: fiber-only (parks the caller). `f` runs on a pool thread: it may
// call go_on() but not go() or anything that parks.
//
// Example:
//   auto addrs = fiber::spawn_blocking([&] { return resolve(host); });
#pragma once

#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/functional/function_ref.h"

namespace fiber {
namespace detail {
// run_blocking() runs `work` on the pool and parks until it returned. `work`
// must not throw. Fiber-only.
void run_blocking(absl::FunctionRef<void()> work);
}  // namespace detail

// spawn_blocking() returns f()'s result, or rethrows its exception. Throws
// std::logic_error outside a fiber.
template <class F>
std::invoke_result_t<F&> spawn_blocking(F&& f) {
  using R = std::invoke_result_t<F&>;
  std::exception_ptr error;
  if constexpr (std::is_void_v<R>) {
    detail::run_blocking([&]() noexcept {
      try {
        std::invoke(f);
      } catch (...) {
        error = std::current_exception();
      }
    });
    if (error) std::rethrow_exception(error);
  } else {
    std::optional<R> result;
    detail::run_blocking([&]() noexcept {
      try {
        result.emplace(std::invoke(f));
      } catch (...) {
        error = std::current_exception();
      }
    });
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }
}

}  // namespace fiber
