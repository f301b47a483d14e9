// Monitor is the runtime's watchdog thread (Go's sysmon): it looks at every
// scheduler about once a millisecond and
//   - asks a busy scheduler to go back to its loop at its next switch, so that
//     timers and completions are polled at least every ~1 ms of running
//     however its fibers switch (Scheduler::request_poll());
//   - tells a fiber that has run for Options::time_slice without a switch to
//     yield at its next runtime call (Scheduler::request_yield());
//   - reports a stall: a scheduler that has run one fiber, or one blocking call
//     made by a fiber, for Options::stall_threshold. See README.md, "Stalls".
// It backs off to 10 ms ticks while every scheduler sleeps in its driver.
//
// Threading: start() and stop() are called by the thread of fiber::run(),
// between the schedulers' start-up and their stop; everything else runs on
// the monitor's own thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "fiber/health.h"
#include "sched/internal/thread_mutex.h"

namespace fiber::detail {

class Runtime;
class Scheduler;

// StallProbe is how the monitor gets the stack of a scheduler thread that is
// running user code: it asks with SIGURG and the thread's handler unwinds its
// own stack into `pcs`. One per scheduler; the states below order the two.
struct StallProbe {
  enum State : int { kIdle, kRequested, kBusy, kDone };
  static constexpr int kMaxFrames = 48;
  std::atomic<int> state{kIdle};
  int depth = 0;  // written by the handler between kBusy and kDone
  void* pcs[kMaxFrames] = {};
};

// install_stall_probe_handler() installs, once per process, the SIGURG handler
// that answers probes; a SIGURG it did not ask for goes to the handler that was
// there before. set_thread_stall_probe() names the calling thread's probe.
void install_stall_probe_handler();
void set_thread_stall_probe(StallProbe* probe);

// write_stderr() writes a whole report to stderr, across short writes and
// EINTR, without stdio (the reports come from signal-driven threads).
void write_stderr(const std::string& text);

class Monitor {
 public:
  explicit Monitor(Runtime& runtime);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // enabled() is false when both the stall threshold and the time slice are
  // zero: then no thread is started and polling falls back to the budget.
  bool enabled() const { return threshold_ns_ > 0 || slice_ns_ > 0; }
  void start();
  // stop() ends the thread, reporting the end of a stall in progress.
  void stop();
  // tid() is the monitor thread's id, 0 until it runs. Thread-safe.
  pid_t tid() const { return tid_.load(std::memory_order_acquire); }

  // Health (fiber/health.h). responsive() from any thread; add_watch() and
  // remove_watch() from any thread but the monitor's own.
  bool responsive(unsigned index) const {
    return responsive_ == nullptr || responsive_[index].load(std::memory_order_acquire);
  }
  void add_watch(HealthWatch* w);
  void remove_watch(HealthWatch* w);

 private:
  // Watch is what the monitor knows of one scheduler.
  struct Watch {
    uint64_t activity = 0;       // Scheduler::activity() when last seen changing
    int64_t since_ns = 0;        // when the monitor saw that activity first
    int64_t cpu_since_ns = 0;    // the thread's CPU time then
    int64_t next_report_ns = 0;  // run time of the next report of this stall
    bool slice_asked = false;
    bool stalled = false;       // a report of this stall went out
    bool unresponsive = false;  // fiber/health.h
    uint64_t fiber_id = 0;      // the stalled fiber, 0 for the loop itself
  };

  void main();
  // check() looks at one scheduler; returns whether it was awake.
  bool check(unsigned index, Watch& w, int64_t now);
  void report(unsigned index, Watch& w, int64_t ran_ns, bool first);
  void report_end(unsigned index, const Watch& w, int64_t ran_ns);
  // take_token() is the rate limit: 10 reports at once, then one per 6 s.
  bool take_token(int64_t now);
  void emit(const std::string& text);
  void set_responsive(unsigned index, bool responsive);

  Runtime& runtime_;
  const int64_t threshold_ns_;
  const int64_t slice_ns_;
  std::vector<Watch> watches_;
  double tokens_ = 10;
  int64_t tokens_at_ns_ = 0;
  uint64_t suppressed_ = 0;

  std::unique_ptr<std::atomic<bool>[]> responsive_;  // set before the thread starts
  ThreadMutex watch_mu_;                             // held while a watch is called
  std::vector<HealthWatch*> health_watches_ ABSL_GUARDED_BY(watch_mu_);

  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  ThreadMutex mu_;
  std::condition_variable cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fiber::detail
