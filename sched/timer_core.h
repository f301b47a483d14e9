// TimerCore is a reference-counted scheduler timer that any thread may stop or
// reset: the heap node of fiber::Timer, fiber::Ticker, fiber::after() and the
// deadline of a fiber::Context.
//
// The node sits in the heap of the scheduler that created it (its owner); only
// that thread touches the heap. stop() and reset() may run anywhere: they bump a
// generation under mu_, and a firing whose generation is stale delivers nothing.
// On the owner's thread they also take the node out of the heap at once; from
// another core, stop() leaves it there to fire harmlessly and reset() re-arms it
// through a short fiber posted to the owner.
//
// Lifetime: the creator's handle holds one reference and the heap one more while
// the node is armed. Nodes still armed when a scheduler thread ends are released
// by that thread (a thread-local registry), so a timer pending at shutdown does
// not leak.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"
#include "sched/internal/timer.h"

namespace fiber::detail {

class Scheduler;

class TimerCore : public Timer {
 public:
  // TimerCore() makes an unarmed timer owned by the calling scheduler thread, with
  // one reference. Throws std::logic_error off a scheduler thread (`api` names the
  // public call).
  explicit TimerCore(const char* api);
  TimerCore(const TimerCore&) = delete;
  TimerCore& operator=(const TimerCore&) = delete;

  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // reset() (re)arms the timer to fire `delay_ns` from now (<= 0: at once), then
  // every `period_ns` if positive. Returns whether it was active. Thread-safe.
  bool reset(int64_t delay_ns, int64_t period_ns);
  // stop() disarms the timer; returns whether it was active (armed and not yet
  // fired, or a ticker). Thread-safe.
  bool stop();

  // Used by the thread-local registry of armed nodes (timer_core.cc).
  TimerCore* reg_prev = nullptr;
  TimerCore* reg_next = nullptr;

 protected:
  virtual ~TimerCore();
  // deliver_locked() runs on the owner thread, with mu_ held, when the timer fires
  // for the current generation.
  virtual void deliver_locked(int64_t /*now_ns*/) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // deliver_unlocked() runs right after deliver_locked(), mu_ released.
  virtual void deliver_unlocked() {}
  // drain_locked() runs in stop() and reset() with mu_ held: drop whatever an
  // earlier firing delivered and nobody consumed (Go 1.23 timer semantics).
  virtual void drain_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}

 private:
  static void on_fire(Timer* t);
  void arm_local(int64_t deadline_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);  // owner thread

  Scheduler* const owner_;
  std::atomic<int> refs_{1};
  SpinLock mu_;
  uint64_t gen_ ABSL_GUARDED_BY(mu_) = 0;        // bumped by stop() and reset()
  uint64_t armed_gen_ ABSL_GUARDED_BY(mu_) = 0;  // the generation the heap node is for
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  int64_t period_ns_ ABSL_GUARDED_BY(mu_) = 0;
};

// armed_timer_cores() is how many TimerCore nodes sit armed in this scheduler
// thread's heap (the rest of the heap is fibers' own timers). Core-local.
size_t armed_timer_cores();

}  // namespace fiber::detail
