// How a runtime picks its driver and builds a scheduler's poller. fiber::run()
// hands both to the scheduler layer as a PollerFactory (driver/start.cc).
#pragma once

#include <memory>

#include "fiber/options.h"
#include "sched/internal/poller.h"

namespace fiber::detail {

// choose_driver() decides which driver a runtime will use, and why. Throws
// std::system_error if `requested` (or $FIBER_DRIVER) forces a driver the
// kernel refuses, or std::invalid_argument if $FIBER_DRIVER is not a driver name.
DriverInfo choose_driver(DriverKind requested);

// make_poller() builds a poller of `kind` (kIoUring or kEpoll) for the calling
// thread, sized by `options` (Options::uring_*); under FIBER_FAULTS it wraps it
// in the fault-injecting poller (driver/testing/). Throws std::system_error with
// a message on failure.
std::unique_ptr<Poller> make_poller(DriverKind kind, const Options& options);

}  // namespace fiber::detail
