// The runtime's debugging reports: fiber::dump() (also on SIGQUIT and at the
// HTTP demo's /debug/fibers), the deadlock report and the leak report at exit.
// See README.md, "Fiber dump, deadlocks and leaks".
//
// A core's fibers are only ever read by that core's own thread: a report asks
// every scheduler for its part (Scheduler::request_dump(), answered at the
// loop's next turn) and waits a bounded time for the answers; a core that does
// not answer in time (one fiber holds it) is reported as stalled.
//
// Threading: DumpRequest is shared by the requester and the cores (a
// shared_ptr, so a core that answers after the requester gave up writes into
// a live object); DebugState's fields are atomics or guarded by their mutex.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "sched/internal/thread_mutex.h"

namespace fiber::detail {

class Runtime;
class Scheduler;
struct Fiber;

// DumpKind is what a core puts in its part.
enum class DumpKind : uint8_t {
  kFull,   // every fiber, with its state and stack (fiber::dump())
  kLeaks,  // the parked fibers, counted by spawn site (the leak report)
};

// DumpPart is one core's answer.
struct DumpPart {
  std::string text;                       // kFull
  std::map<std::string, uint64_t> sites;  // kLeaks: "site (reason)" -> parked fibers
  uint64_t parked = 0;
  uint64_t runnable = 0;
};

struct DumpRequest {
  DumpRequest(DumpKind k, unsigned cores) : kind(k), parts(cores), done(cores, false) {
    remaining = cores;
  }
  const DumpKind kind;
  // parts[i] is written by core i only, before it sets done[i] under mu.
  std::vector<DumpPart> parts;
  ThreadMutex mu;
  std::condition_variable cv;
  std::vector<bool> done ABSL_GUARDED_BY(mu);
  unsigned remaining ABSL_GUARDED_BY(mu) = 0;
  Fiber* waiter ABSL_GUARDED_BY(mu) = nullptr;  // a requesting fiber, parked
};

// answer_dump() writes scheduler `s`'s part of `req` and tells the requester.
// On s's thread, from its loop.
void answer_dump(Scheduler& s, DumpRequest& req);

// SigquitThread prints fiber::dump() to stderr on each SIGQUIT
// (Options::sigquit_dump). The signal handler only counts and posts a
// semaphore; this thread does the work.
class SigquitThread;

// DebugState is a Runtime's share of the reports.
struct DebugState {
  DebugState();
  ~DebugState();
  // Schedulers asleep with nothing of their own that could wake them (see
  // Scheduler::loop()): when it reaches the scheduler count, the last one in
  // checks for a deadlock (check_deadlock()).
  std::atomic<unsigned> quiet{0};
  // Set once main has returned: a runtime going down is no deadlock.
  std::atomic<bool> main_returned{false};
  std::atomic<bool> reported{false};
  // The thread that called fiber::run() (blocked in it until main returns).
  pid_t caller_tid = 0;
  std::unique_ptr<SigquitThread> sigquit;
};

// start_debug() starts what Options ask for (the SIGQUIT thread); stop_debug()
// ends it. On run()'s thread, around the schedulers' life.
void start_debug(Runtime& rt);
void stop_debug(Runtime& rt);

// check_deadlock() reports a deadlock and exits the process (status 2) if
// every fiber of `rt` is parked and nothing can wake one; else returns. On the
// thread of the scheduler that went quiet last, and now and then on the
// monitor's while every core stays quiet.
void check_deadlock(Runtime& rt);

// leak_report() prints the fibers still parked, by spawn site, when main has
// returned (Options::leak_report). On run()'s thread.
void leak_report(Runtime& rt);

// report_relock() says on stderr that the calling fiber locks a Mutex it
// already holds: where it locked it first (`first_pc`) and now (`again_pc`).
void report_relock(const void* first_pc, const void* again_pc);

// append_frames() appends the symbolized frames pcs[0..n) to `out`, one a line
// (sched/monitor.cc).
void append_frames(std::string& out, void* const* pcs, int n, bool first_is_pc);

}  // namespace fiber::detail
