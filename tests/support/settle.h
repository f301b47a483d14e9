// settle() lets every other fiber of the calling scheduler run until it parks
// (or ends): afterwards none of them is runnable. A test that needs fibers it
// started to have reached their waits, in a known order, starts them one at a
// time and settles after each, instead of relying on yield()'s FIFO order
// (which FIBER_SCHED_RANDOM shuffles on purpose). Fiber-only; one scheduler.
#pragma once

#include "fiber/runtime.h"
#include "sched/internal/scheduler.h"

namespace fiber::testing {

inline void settle() {
  do {
    yield();
  } while (detail::t_scheduler->has_runnable());
}

}  // namespace fiber::testing
