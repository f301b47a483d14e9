// Poller is what a scheduler waits in when it has nothing to run. The scheduler
// layer declares it; driver/ implements it on io_uring and on epoll.
//
// Threading: poll() belongs to the scheduler thread that made the poller;
// wake() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>

#include "fiber/runtime.h"

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

// choose_driver() decides which driver a runtime will use, and why. Throws
// std::system_error if `requested` (or $FIBER_DRIVER) forces a driver the
// kernel refuses, or std::invalid_argument if $FIBER_DRIVER is not a driver name.
DriverInfo choose_driver(DriverKind requested);

// make_poller() builds a poller of `kind` (kIoUring or kEpoll) for the calling
// thread, sized by `options` (Options::uring_*). Throws std::system_error with a
// message on failure.
std::unique_ptr<Poller> make_poller(DriverKind kind, const Options& options);

}  // namespace fiber::detail
