// Poller is what a scheduler waits in when it has nothing to run. The scheduler
// layer declares it; driver/ implements it on io_uring and on epoll and hands
// the scheduler a PollerFactory, so that sched never names driver.
//
// Threading: poll() belongs to the scheduler thread that made the poller;
// wake() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/functional/function_ref.h"
#include "fiber/options.h"

namespace fiber::detail {

class Poller {
 public:
  virtual ~Poller() = default;
  // poll() handles whatever the kernel reports, waiting for it at most
  // `timeout_ns` (< 0: until wake(); 0: do not wait). It returns early after a
  // wake(), a signal, or any completion. Core-local.
  virtual void poll(int64_t timeout_ns) = 0;
  // wake() makes the poll() in progress, or else the next one, return soon.
  // Thread-safe: any thread.
  virtual void wake() = 0;
  // has_pending() is true while I/O is queued or in flight: the loop then polls
  // (without waiting) before each turn that runs fibers.
  virtual bool has_pending() const { return false; }
  // events_visible() is true if events_ready() can see I/O completions without
  // a syscall; the scheduler then spins on it before sleeping, as it does on
  // its inbox. Otherwise a scheduler with I/O in flight sleeps at once.
  virtual bool events_visible() const { return false; }
  // events_ready() is true if poll(0) would find something. Core-local; must
  // not enter the kernel.
  virtual bool events_ready() const { return false; }
  // add_stats() fills in the driver's own counters of SchedulerStats.
  // Thread-safe: any thread.
  virtual void add_stats(SchedulerStats& stats) const { (void)stats; }
};

// PollerFactory is how the scheduler layer gets its pollers without naming the
// layer that makes them: the driver layer passes one to start_runtime()
// (driver/start.cc), and the runtime keeps it for its schedulers' threads.
struct PollerFactory {
  // choose() decides which driver a runtime will use, and why. Throws
  // std::system_error if `requested` (or $FIBER_DRIVER) forces a driver the
  // kernel refuses, or std::invalid_argument for a bad $FIBER_DRIVER.
  DriverInfo (*choose)(DriverKind requested);
  // make() builds a poller of `kind` (kIoUring or kEpoll) for the calling
  // thread, sized by `options`. Throws std::system_error with a message.
  std::unique_ptr<Poller> (*make)(DriverKind kind, const Options& options);
};

// start_runtime() is fiber::run()'s body (see fiber/runtime.h), with the
// pollers `factory` makes.
void start_runtime(absl::FunctionRef<void()> main, const Options& options,
                   const PollerFactory& factory);

}  // namespace fiber::detail
