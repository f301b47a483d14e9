// The leak check linked into every test binary (Go's TestMain leak check): after
// each test, what the runtime holds must be back where it was before the test.
//
// Compared, before and after each test:
//   - fiber stacks mapped, socket and file handles alive, timer nodes alive;
//   - fibers, I/O operations and timers that a stopped runtime left behind (a
//     test whose main returned while fibers were still parked);
//   - threads (/proc/self/task) and open fds (/proc/self/fd).
// A difference fails the test, naming each count that moved.
//
// A test that leaves something behind on purpose says so with
// accept_current_resources() once it is done.
#pragma once

#include <cstdint>
#include <string>

namespace fiber::testing {

struct ResourceSnapshot {
  int64_t stacks_mapped = 0;
  int64_t io_handles = 0;
  int64_t timer_nodes = 0;
  int64_t fibers_abandoned = 0;
  int64_t io_ops_abandoned = 0;
  int64_t timers_abandoned = 0;
  int64_t threads = 0;
  int64_t fds = 0;

  // leaks_since() lists the counts that differ from `before` ("fds 5 -> 6, ..."),
  // empty when none does.
  std::string leaks_since(const ResourceSnapshot& before) const;
};

// take_resource_snapshot() reads the counts now.
ResourceSnapshot take_resource_snapshot();

// settled_snapshot() is a snapshot taken once it matches `before`, or after
// about a second of retrying: threads that were joined, and io_uring's kernel
// workers, leave /proc/self/task a little after they are done.
ResourceSnapshot settled_snapshot(const ResourceSnapshot& before);

// accept_current_resources() makes the counts of now the baseline that the
// running test is checked against at its end.
void accept_current_resources();

// count_open_fds() counts the process's open descriptors, less those onto its
// own loaded object files (the stall reports' symbolizer keeps those open).
int64_t count_open_fds();

}  // namespace fiber::testing
