// ResourceCounts are process-wide counts of what the runtime holds, kept for
// leak checks (tests/support/leak_check.cc compares them before and after each
// test). Two kinds:
//   - alive now: things with a lifetime of their own (stack mappings, socket and
//     file handles, timer nodes), counted where they are made and destroyed;
//   - left behind: what each runtime still held when it stopped (fibers still
//     parked, their I/O operations and their armed timers), added up by each
//     scheduler as its loop ends. The runtime abandons those by design (run() returns
//     when main does, as Go's main does), so a count that grows means a test or
//     a program left work parked, and whatever it held (an fd, heap memory) leaked.
//
// The hot paths (spawn, switch, I/O, sleep) touch none of these: only calls that
// already make a system call or a heap allocation do, with one relaxed atomic.
//
// Threading: every counter is a relaxed atomic, written from any thread; read
// them while no runtime runs for an exact value.
#pragma once

#include <atomic>
#include <cstdint>

namespace fiber::detail {

struct ResourceCounts {
  // Alive now.
  std::atomic<int64_t> stacks_mapped{0};  // fiber stack mappings, in use or pooled
  std::atomic<int64_t> io_handles{0};     // IoHandle objects (one per Socket or File)
  std::atomic<int64_t> timer_nodes{0};    // TimerCore objects (Timer, Ticker, after, Context)
  // Left behind by stopped runtimes (cumulative).
  std::atomic<int64_t> fibers_abandoned{0};  // fibers still parked at stop
  std::atomic<int64_t> io_ops_abandoned{0};  // I/O operations in flight at stop
  std::atomic<int64_t> timers_abandoned{0};  // parked fibers' timers still armed at stop
};

// resource_counts() is the one instance of the process.
ResourceCounts& resource_counts();

// count_resource() adds `delta` to `counter`. Thread-safe.
inline void count_resource(std::atomic<int64_t>& counter, int64_t delta) {
  counter.fetch_add(delta, std::memory_order_relaxed);
}

}  // namespace fiber::detail
