// Scheduler runs the fibers of one core on one thread. Runtime owns the
// schedulers, their threads and the blocking pool of one fiber::run().
//
// How a scheduler spends its time (see README.md):
//   loop: drain the inbox -> fire due timers -> run up to kBudget fibers
//         -> if nothing is runnable, sleep in the poller until the next timer
// A fiber that parks or yields switches straight to the next runnable fiber
// while the budget lasts, and to the loop otherwise, so one switch costs one
// jump and the loop still gets to look at its inbox, timers and poller.
//
// Threading: every member is core-local (the scheduler's own thread) except
// ready(), post_spawn() and stop(), which any thread may call, and the
// monitor's calls (sched/internal/monitor.h), marked "Monitor".
#pragma once

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "fiber/internal/control_block.h"
#include "fiber/options.h"
#include "sched/internal/debug.h"
#include "sched/internal/monitor.h"
#include "sched/internal/poller.h"
#include "sched/internal/timer.h"
#include "sched/testing/random_sched.h"

namespace fiber::detail {

class Runtime;
class BlockingPool;

// RunQueue is an intrusive FIFO of ready fibers, linked through Fiber::next.
class RunQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  void push(Fiber* f) {
    f->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = f;
    } else {
      head_ = f;
    }
    tail_ = f;
  }
  Fiber* pop() {
    Fiber* f = head_;
    if (f == nullptr) return nullptr;
    head_ = f->next;
    if (head_ == nullptr) tail_ = nullptr;
    f->next = nullptr;
    return f;
  }
#if FIBER_RANDOM_SCHEDULING
  // pop_random() takes a fiber chosen by `r` among the first SchedRandom::kWindow.
  Fiber* pop_random(SchedRandom& r) {
    unsigned n = 0;
    for (Fiber* f = head_; f != nullptr && n < SchedRandom::kWindow; f = f->next) ++n;
    if (n <= 1) return pop();
    unsigned i = r.below(n);
    if (i == 0) return pop();
    Fiber* prev = head_;
    while (--i > 0) prev = prev->next;
    Fiber* f = prev->next;
    prev->next = f->next;
    if (tail_ == f) tail_ = prev;
    f->next = nullptr;
    return f;
  }
#endif

 private:
  Fiber* head_ = nullptr;
  Fiber* tail_ = nullptr;
};

class Scheduler {
 public:
  // kBudget is how many fibers run back to back before the loop checks its
  // inbox, timers and poller again.
  static constexpr int kBudget = 64;

  Scheduler(Runtime* runtime, unsigned index);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Startup handshake between the threads and run(), see runtime.cc.
  struct Startup;
  void thread_main(int cpu, DriverKind kind, Startup* startup);

  // ready() makes a parked fiber of this scheduler runnable. Thread-safe.
  void ready(Fiber* f);
  // post_spawn() starts a fiber running `body` (heap-allocated; adopted) here.
  // If its stack cannot be mapped there, the body is told so (FiberBody::fail())
  // and deleted. Throws std::bad_alloc (and deletes the body) when the inbox
  // cannot grow. Thread-safe.
  void post_spawn(FiberBody* body, size_t stack_size);
  // stop() makes the loop return at its next turn. Thread-safe.
  void stop();

  // spawn_local() starts a fiber running `body` (moved onto its stack). Core-local.
  void spawn_local(FiberBody& body, size_t stack_size);
  // yield() / park(): see fiber::yield() and detail::park(). park() records
  // why (see WaitReason). Core-local, fiber-only.
  void yield();
  inline void park(WaitReason why = WaitReason::kUnknown, int64_t until_ns = 0,
                   int32_t fd = -1);  // inline: see switch_context()
  // exit() ends the current fiber. Core-local, fiber-only.
  [[noreturn]] void exit(Fiber* self);
  // reclaim() frees a fiber that exited. Core-local.
  void reclaim(Fiber* f);
  // forget() drops a parked fiber from this scheduler without freeing its
  // stack, which now belongs to someone else (a blocking call that outlived
  // fiber::run, see BlockingPool::release()). Only after the scheduler's
  // thread has ended.
  void forget(Fiber* f);
  void add_timer(Timer* t) { timers_.push(t); }
  void cancel_timer(Timer* t) { timers_.remove(t); }

  Fiber* current() const { return current_.load(std::memory_order_relaxed); }
  Poller* poller() const { return poller_.get(); }
  unsigned index() const { return index_; }
  Runtime* runtime() const { return runtime_; }
  // has_runnable() is true while some fiber of this core waits to run (other
  // than the caller). Core-local.
  bool has_runnable() const { return !runq_.empty(); }
  // live_fibers() counts fibers started and not yet exited. Core-local.
  size_t live_fibers() const { return live_count_; }
  // io_begin() counts an I/O operation started, io_end() one that returned.
  // Core-local.
  void io_begin() {
    bump(io_ops_);
    ++io_in_flight_;
  }
  void io_end() { --io_in_flight_; }
  // stats() reads the counters. Thread-safe.
  SchedulerStats stats() const;
  // stack_pool() is this core's pool of fiber stacks. Core-local.
  const StackPool& stack_pool() const { return stacks_; }

  // --- for the monitor (sched/internal/monitor.h); thread-safe --------------------
  // activity() changes whenever a fiber stops running or the loop turns: the
  // same value over some time means one fiber (or the loop) ran all along.
  // Monitor.
  uint64_t activity() const {
    return switches_.load(std::memory_order_acquire) + turns_.load(std::memory_order_acquire);
  }
  // asleep() is true while the loop waits in its driver. Monitor.
  bool asleep() const { return sleeping_.load(std::memory_order_relaxed); }
  // running() is the fiber on the CPU, or nullptr for the loop. Only its
  // address may be used: it may exit at any time (see Monitor::report()).
  // Monitor.
  Fiber* running() const { return current_.load(std::memory_order_relaxed); }
  // request_poll() makes the next switch go to the loop, which then polls its
  // timers, inbox and driver. Monitor.
  void request_poll() { budget_.store(0, std::memory_order_relaxed); }
  // request_yield() makes the running fiber yield at its next runtime call
  // (fiber::maybe_yield()). Monitor.
  void request_yield() { slice_due_.store(true, std::memory_order_relaxed); }
  // record_stall() counts a stall (`first`) and keeps the longest. Monitor.
  void record_stall(bool first, uint64_t ns) {
    if (first)
      stalls_.store(stalls_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (ns > longest_stall_ns_.load(std::memory_order_relaxed)) {
      longest_stall_ns_.store(ns, std::memory_order_relaxed);
    }
  }
  // tid() is the scheduler thread's id; set before run() starts the monitor.
  pid_t tid() const { return tid_; }
  // cpu_clock() is the scheduler thread's CPU-time clock. Monitor.
  clockid_t cpu_clock() const { return cpu_clock_; }
  StallProbe& probe() { return probe_; }
  // slice_yield() yields the running fiber because its slice ran out (see
  // fiber::maybe_yield()). Core-local.
  void slice_yield();
  // set_now_hint() refreshes the clock reading that park() stamps fibers with
  // (Fiber::wait_since_ns). Monitor, and the scheduler itself.
  void set_now_hint(int64_t ns) { now_hint_.store(ns, std::memory_order_relaxed); }

  // --- for the reports (sched/internal/debug.h) ---------------------------------
  // request_dump() asks this scheduler for its part of `req`, answered at its
  // loop's next turn. Thread-safe.
  void request_dump(std::shared_ptr<DumpRequest> req);
  // describe() writes this core's part of a report: its fibers, the calling
  // fiber (if any) listed as running. Core-local.
  void describe(DumpKind kind, DumpPart& out);
  // quiet() is true while this scheduler sleeps with nothing of its own that
  // could wake it (no timer, no I/O); `epoch` changes each time it wakes.
  // Thread-safe.
  bool quiet(uint64_t* epoch) const {
    *epoch = quiet_epoch_.load(std::memory_order_seq_cst);
    return quiet_.load(std::memory_order_seq_cst);
  }
  // inbox_empty() is true when nothing waits in the inbox. Thread-safe.
  bool inbox_empty();
  // alive() is live_fibers() as of this core's last spawn or exit. Thread-safe.
  uint64_t alive() const { return alive_.load(std::memory_order_relaxed); }

 private:
  struct InboxItem {
    Fiber* fiber;     // a fiber to wake, or
    FiberBody* body;  // a fiber to start
    size_t stack_size;
  };

  // bump() adds one to a counter only this thread writes: a relaxed load and
  // store, no locked instruction, yet other threads may read it (stats()).
  static void bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  void loop();
  void count_left_behind();
  // take_next() pops the next fiber to run: the oldest, or in random mode
  // (sched/random_sched.h) one of the oldest few.
  Fiber* take_next() {
#if FIBER_RANDOM_SCHEDULING
    if (t_sched_random != nullptr) [[unlikely]]
      return runq_.pop_random(*t_sched_random);
#endif
    return runq_.pop();
  }
  void spin_before_sleep();
  void post(const InboxItem& item);
  bool drain_inbox();
  void fire_timers();
  void adopt(Fiber* f);
  void unlink_live(Fiber* f);
  inline Context* next_context();
  void free_abandoned();
  void answer_dumps();
  void enter_quiet();
  void leave_quiet();

  Runtime* const runtime_;
  const unsigned index_;
  std::unique_ptr<Poller> poller_;

  // Core-local state.
  Context main_ctx_;
  // current_ and budget_ are atomics only for the monitor, which reads the one
  // and zeroes the other (request_poll()); relaxed, they cost what plain
  // fields do. A decrement is a load and a store, not a read-modify-write: a
  // zero stored in between may be lost, and is asked for again next tick.
  std::atomic<Fiber*> current_{nullptr};
  RunQueue runq_;
  std::atomic<int> budget_{0};
  // now_ns() as of the last loop wake-up, timer check or monitor tick; park()
  // stamps fibers with it. Next to budget_, which the monitor writes too.
  std::atomic<int64_t> now_hint_{0};
  TimerHeap timers_;
  StackPool stacks_;
  Fiber* live_head_ = nullptr;
  size_t live_count_ = 0;
  size_t io_in_flight_ = 0;  // operations between io_begin() and io_end()
  uint64_t next_id_ = 0;
  std::vector<InboxItem> drained_;
  bool ran_since_sleep_ = false;
  int64_t idle_spin_ns_ = 0;

  // Counters: written by this thread only, read by stats() from any thread.
  std::atomic<uint64_t> alive_{0};
  std::atomic<uint64_t> spawned_{0};
  std::atomic<uint64_t> switches_{0};
  std::atomic<uint64_t> io_ops_{0};
  std::atomic<uint64_t> turns_{0};  // loop turns, for activity()
  std::atomic<uint64_t> slice_yields_{0};
  // Written by the monitor only.
  std::atomic<uint64_t> stalls_{0};
  std::atomic<uint64_t> longest_stall_ns_{0};
  // Set by the monitor (request_yield()), cleared by this thread when the
  // fiber yields for it or when the loop turns.
  std::atomic<bool> slice_due_{false};
  pid_t tid_ = 0;
  clockid_t cpu_clock_ = CLOCK_THREAD_CPUTIME_ID;
  StallProbe probe_;

  // Cross-thread state. The inbox is the synchronisation: a producer pushes under
  // inbox_mu_, then reads sleeping_; the loop stores sleeping_ before it checks
  // the inbox under inbox_mu_ and sleeps. The mutex orders the two, so either
  // the loop sees the item or the producer sees sleeping_ and calls wake().
  // Aligned away from the core-local counters above, which change on every
  // switch: sharing a cache line with them would cost each producer a miss.
  alignas(64) std::mutex inbox_mu_;
  std::vector<InboxItem> inbox_;  // guarded by inbox_mu_
  std::atomic<bool> sleeping_{false};
  // A hint, set under inbox_mu_ with each push and cleared by drain_inbox(): lets
  // the idle spin watch the inbox without taking the mutex.
  std::atomic<bool> inbox_hint_{false};
  std::atomic<bool> stop_{false};
  // Reports asked of this core (request_dump()); guarded by inbox_mu_.
  std::vector<std::shared_ptr<DumpRequest>> dump_requests_;
  std::vector<std::shared_ptr<DumpRequest>> answering_;  // core-local
  // See quiet(). Written by this thread, read by the deadlock check.
  std::atomic<bool> quiet_{false};
  std::atomic<uint64_t> quiet_epoch_{0};
};

// The scheduler whose thread this is, or nullptr.
extern thread_local constinit Scheduler* t_scheduler;
// The runtime of this scheduler thread, or nullptr. Blocking-pool threads reach
// theirs through BlockingPool::RuntimeLock instead: it may stop before them.
extern thread_local constinit Runtime* t_runtime;

// next_context() picks what runs after the current fiber stops: the next
// runnable fiber while the turn's budget lasts, else the loop (main_ctx_).
inline Context* Scheduler::next_context() {
  bump(switches_);
  const int budget = budget_.load(std::memory_order_relaxed);
  if (budget > 0) {
    if (Fiber* next = take_next()) {
      budget_.store(budget - 1, std::memory_order_relaxed);
      next->state = FiberState::kRunning;
      current_.store(next, std::memory_order_relaxed);
      t_current_fiber = next;
      return next;
    }
  }
  current_.store(nullptr, std::memory_order_relaxed);
  t_current_fiber = nullptr;
  return &main_ctx_;
}

inline void Scheduler::park(WaitReason why, int64_t until_ns, int32_t fd) {
  Fiber* self = current();
  self->state = FiberState::kParked;
  self->wait_reason = why;
  self->wait_until_ns = until_ns;
  self->wait_fd = fd;
  self->wait_since_ns = now_hint_.load(std::memory_order_relaxed);
  switch_context(self, next_context());
}

// install_fiber_hooks() gives the fiber layer the scheduler's exit and reclaim
// (fiber_exit, on_context_exit). Before a runtime's threads start.
void install_fiber_hooks();

}  // namespace fiber::detail
