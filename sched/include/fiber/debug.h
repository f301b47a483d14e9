// fiber::dump() lists what every fiber of the running runtime is doing, as
// Go's goroutine dump does: for each live fiber, its id, its core, its state
// (running, runnable, or parked on what: a channel, select, a mutex, a
// condvar, a wait group, a join, a sleep, I/O on an fd, spawn_blocking), how
// long it has been parked, where it was spawned and its symbolized stack.
//
// The same dump is printed on SIGQUIT (Options::sigquit_dump,
// $FIBER_SIGQUIT_DUMP=1), with the deadlock report (Options::deadlock_report)
// and at /debug/fibers in the HTTP demo. See sched/README.md, "Fiber dump,
// deadlocks and leaks", for what it shows and what it costs.
//
// Threading: each core lists its own fibers at its loop's next turn; dump()
// waits up to a second for each, and says of a core that did not answer
// (one fiber holds it) that it is stalled.
//
// Example:
//   fiber::go([] {
//     std::ostringstream out;
//     fiber::dump(out);
//     std::fputs(out.str().c_str(), stderr);
//   });
#pragma once

#include <iosfwd>

namespace fiber {

// dump() writes every live fiber of the running runtime to `out`, the caller
// listed as running. Throws std::logic_error outside a fiber. Fiber-only:
// parks the caller while the other cores answer.
void dump(std::ostream& out);

}  // namespace fiber
