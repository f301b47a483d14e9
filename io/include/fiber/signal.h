// Signals as channel values, after Go's os/signal: signal_notify() relays the
// given signals to a channel, notify_context() derives a context that ends when
// one of them arrives (Go's signal.NotifyContext).
//
// The runtime installs its handler for a signal while some channel asks for it,
// and puts back the handler it found when the last one stops. The handler
// writes the signal's number to a socket that a fiber reads; that fiber sends
// it to each channel asking for it without parking (a full channel misses it,
// as in Go: give the channel room). SIGKILL and SIGSTOP cannot be caught.
//
// Threading: thread-safe; the relaying fiber runs on the core of the first
// signal_notify() (which must run in a fiber).
//
// Example:
//   auto [ctx, stop] = fiber::notify_context(fiber::background(), {SIGINT, SIGTERM});
//   serve(ctx);          // returns once ctx.done() is closed by Ctrl-C
//   stop();              // unregisters; the next Ctrl-C kills the process again
#pragma once

#include <initializer_list>
#include <memory>
#include <system_error>

#include "fiber/cancellation.h"
#include "fiber/chan.h"
#include "fiber/result.h"

namespace fiber {

// signal_notify() relays each of `signals` to `ch` from now on, until
// signal_stop(ch). Calling it again for the same channel adds signals.
// std::errc::invalid_argument for a nil channel or a signal that cannot be
// caught. Fiber-only (the first call starts the relaying fiber).
Result<void> signal_notify(const Chan<int>& ch, std::initializer_list<int> signals);

// signal_stop() stops relaying to `ch`; once no channel asks for a signal, its
// previous handler is back. When it stops the last channel, the relaying fiber
// ends; called in a fiber, signal_stop() waits for that. Thread-safe.
void signal_stop(const Chan<int>& ch);

namespace detail {
struct SignalWatch;
}  // namespace detail

// StopFunc is notify_context()'s stop: it ends the context and unregisters its
// signals; called in a fiber, it returns once they are unregistered. Idempotent.
// Thread-safe.
class StopFunc {
 public:
  void operator()() const;

 private:
  friend struct WithStop notify_context(const Context&, std::initializer_list<int>);
  std::shared_ptr<detail::SignalWatch> w_;
};

// WithStop is a context and its stop function:
//   auto [ctx, stop] = fiber::notify_context(parent, {SIGINT});
struct WithStop {
  Context ctx;
  StopFunc stop;
};

// notify_context() derives a context that ends (kCanceled) when one of
// `signals` arrives, when the parent ends, or when `stop` is called; either way
// the signals stop being relayed to it. Call stop when done, as in Go. A signal
// that cannot be caught ends the context at once. Fiber-only: starts a fiber
// that waits for the signal.
WithStop notify_context(const Context& parent, std::initializer_list<int> signals);

}  // namespace fiber
