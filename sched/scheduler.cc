#include "sched/internal/scheduler.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>

#include "fiber/internal/resource_counts.h"
#include "fiber/runtime.h"
#include "runtime_impl.h"
#include "timer_core.h"
#ifdef FIBER_TEST_HOOKS
#include "sched/testing/test_hooks.h"
#endif

namespace fiber::detail {

thread_local constinit Scheduler* t_scheduler = nullptr;
thread_local constinit Runtime* t_runtime = nullptr;

int64_t now_ns() {
#ifdef FIBER_TEST_HOOKS
  if (test::virtual_clock()) return test::virtual_now();
#endif
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Scheduler::Scheduler(Runtime* runtime, unsigned index)
    : runtime_(runtime),
      index_(index),
      idle_spin_ns_(
          std::chrono::duration_cast<std::chrono::nanoseconds>(runtime->options().idle_spin)
              .count()) {}

Scheduler::~Scheduler() {
  // Runs after every runtime thread has been joined: nobody can reach us.
  free_abandoned();
  poller_.reset();
}

void Scheduler::thread_main(int cpu, DriverKind kind, Startup* startup) {
  t_scheduler = this;
  t_runtime = runtime_;
  t_slice_due = &slice_due_;
  tid_ = static_cast<pid_t>(gettid());
  set_now_hint(now_ns());
  pthread_getcpuclockid(pthread_self(), &cpu_clock_);
  set_thread_stall_probe(&probe_);
  char name[16];
  std::snprintf(name, sizeof name, "fiber-sched-%u", index_);
  pthread_setname_np(pthread_self(), name);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    // Best effort: a container may forbid it; the runtime still works unpinned.
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
  SignalStack signal_stack;
  init_thread_context(&main_ctx_);
#if FIBER_RANDOM_SCHEDULING
  std::optional<SchedRandomScope> random_scope;
#endif
  std::exception_ptr error;
  try {
#if FIBER_RANDOM_SCHEDULING
    random_scope.emplace(index_);
#endif
    poller_ = runtime_->poller_factory().make(kind, runtime_->options());
  } catch (...) {
    error = std::current_exception();
  }
  if (startup->arrive_and_wait(error)) {
    loop();
    count_left_behind();
  }
  set_thread_stall_probe(nullptr);
  t_slice_due = &kNeverDue;
  t_scheduler = nullptr;
  t_runtime = nullptr;
}

void Scheduler::loop() {
  while (!stop_.load(std::memory_order_acquire)) {
    // A turn: the monitor sees activity; a slice asked of the fiber that ran
    // last is void.
    bump(turns_);
    if (slice_due_.load(std::memory_order_relaxed)) {
      slice_due_.store(false, std::memory_order_relaxed);
    }
    drain_inbox();
    fire_timers();
    // Before a turn that runs fibers: submit what the last turn queued and reap
    // what completed, so those fibers join this turn. With nothing to run the
    // sleep below does both in one call.
    if (!runq_.empty() && poller_->has_pending()) poller_->poll(0);
    if (!runq_.empty()) {
      ran_since_sleep_ = true;
      budget_.store(kBudget - 1, std::memory_order_relaxed);
      Fiber* f = take_next();
      f->state = FiberState::kRunning;
      current_.store(f, std::memory_order_relaxed);
      t_current_fiber = f;
      switch_context(&main_ctx_, f);
      continue;
    }
    if (ran_since_sleep_ && (!poller_->has_pending() || poller_->events_visible())) {
      ran_since_sleep_ = false;
      if (poller_->has_pending()) {
        poller_->poll(0);  // the spin waits on this turn's I/O: submit it first
        if (!runq_.empty()) continue;
      }
      spin_before_sleep();
      if (poller_->events_ready()) poller_->poll(0);
      if (inbox_hint_.load(std::memory_order_relaxed) || !runq_.empty()) continue;
    }
    if (stacks_.untrimmed() > 0) {
      // Nothing to run: give back the pages of stacks that went deep and came
      // back up, one batch per turn so that new work waits for one batch at most.
      // This turn's I/O is submitted (and what completed reaped) first.
      if (poller_->has_pending()) poller_->poll(0);
      if (runq_.empty()) stacks_.trim_idle(StackPool::kTrimBatch);
      continue;
    }
    sleeping_.store(true, std::memory_order_seq_cst);
    bool pending;
    {
      std::lock_guard<std::mutex> g(inbox_mu_);
      pending = !inbox_.empty() || !dump_requests_.empty();
    }
    if (pending || stop_.load(std::memory_order_acquire)) {
      sleeping_.store(false, std::memory_order_relaxed);
      continue;
    }
    int64_t timeout = -1;
    if (!timers_.empty()) {
      timeout = timers_.top()->deadline_ns - now_ns();
      if (timeout < 0) timeout = 0;
    }
#ifdef FIBER_TEST_HOOKS
    if (test::virtual_clock()) {
      // Virtual time (test_hooks.h): jump to the next timer rather than sleep;
      // with none, fibers alive and nothing runnable, every fiber is parked.
      if (timeout > 0) {
        test::advance_clock(timers_.top()->deadline_ns);
        timeout = 0;
      } else if (timeout < 0 && live_count_ > 0) {
        test::run_deadlock_hook();
        if (!runq_.empty()) {
          sleeping_.store(false, std::memory_order_relaxed);
          continue;
        }
      }
    }
#endif
    // Nothing of this core's own (a timer, an I/O operation) can end this
    // sleep: only another core, a thread or a signal can. Counted for the
    // deadlock check (see DebugState::quiet).
    const bool quiet = timeout < 0 && io_in_flight_ == 0;
    if (quiet) enter_quiet();
    poller_->poll(timeout);
    if (quiet) leave_quiet();
    sleeping_.store(false, std::memory_order_relaxed);
    set_now_hint(now_ns());
  }
}

void Scheduler::enter_quiet() {
#ifdef FIBER_TEST_HOOKS
  if (test::virtual_clock()) return;  // the tests' own deadlock hook decides
#endif
  if (!runtime_->options().deadlock_report) return;
  quiet_.store(true, std::memory_order_seq_cst);
  DebugState& d = runtime_->debug();
  if (d.quiet.fetch_add(1, std::memory_order_seq_cst) + 1 == runtime_->size()) {
    check_deadlock(*runtime_);
  }
}

void Scheduler::leave_quiet() {
  if (!quiet_.load(std::memory_order_relaxed)) return;
  quiet_epoch_.fetch_add(1, std::memory_order_seq_cst);
  quiet_.store(false, std::memory_order_seq_cst);
  runtime_->debug().quiet.fetch_sub(1, std::memory_order_seq_cst);
}

void Scheduler::count_left_behind() {
  // The loop has ended: what is still here is abandoned. Counted for leak checks
  // (fiber/resource_counts.h). TimerCore nodes still armed are not: this thread
  // releases them as it ends (time.cc); the other timers are parked fibers'.
  ResourceCounts& counts = resource_counts();
  count_resource(counts.fibers_abandoned, static_cast<int64_t>(live_count_));
  count_resource(counts.io_ops_abandoned, static_cast<int64_t>(io_in_flight_));
  count_resource(counts.timers_abandoned,
                 static_cast<int64_t>(timers_.size() - armed_timer_cores()));
}

void Scheduler::spin_before_sleep() {
  if (idle_spin_ns_ <= 0) return;
  int64_t until = now_ns() + idle_spin_ns_;
  if (!timers_.empty() && timers_.top()->deadline_ns < until) until = timers_.top()->deadline_ns;
  // The hint is checked after every pause (a wake-up seen a few hundred cycles
  // late is a few hundred cycles on every cross-core hand-off); the clock only
  // every 64 rounds.
  for (unsigned i = 1;; ++i) {
    if (inbox_hint_.load(std::memory_order_relaxed) || stop_.load(std::memory_order_relaxed) ||
        poller_->events_ready()) {
      return;
    }
    __builtin_ia32_pause();
    if (i % 64 == 0 && now_ns() >= until) return;
  }
}

void Scheduler::post(const InboxItem& item) {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    inbox_.push_back(item);
    inbox_hint_.store(true, std::memory_order_relaxed);
  }
  if (sleeping_.load(std::memory_order_seq_cst) &&
      sleeping_.exchange(false, std::memory_order_seq_cst)) {
    poller_->wake();
  }
}

bool Scheduler::drain_inbox() {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    if (!dump_requests_.empty()) [[unlikely]]
      answering_.swap(dump_requests_);
    if (inbox_.empty() && answering_.empty()) return false;
    drained_.swap(inbox_);
    inbox_hint_.store(false, std::memory_order_relaxed);
  }
  if (!answering_.empty()) [[unlikely]]
    answer_dumps();
  for (const InboxItem& item : drained_) {
    if (item.fiber != nullptr) {
#ifdef FIBER_TEST_HOOKS
      if (item.fiber->state != FiberState::kParked) {
        test::wake_not_parked(item.fiber->id, static_cast<int>(item.fiber->state));
      }
#endif
      item.fiber->state = FiberState::kReady;
      runq_.push(item.fiber);
      continue;
    }
    try {
      Fiber* f = create_fiber(stacks_, item.stack_size, item.body, /*body_on_heap=*/true);
      adopt(f);
      runq_.push(f);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fiber: could not start a fiber on scheduler %u: %s\n", index_,
                   e.what());
      item.body->fail(std::current_exception());
      delete item.body;
    }
  }
  drained_.clear();
  return true;
}

void Scheduler::fire_timers() {
  if (timers_.empty()) return;
  const int64_t now = now_ns();
  set_now_hint(now);
  while (!timers_.empty() && timers_.top()->deadline_ns <= now) {
    Timer* t = timers_.top();
    timers_.remove(t);
    t->fire(t);
  }
}

void Scheduler::ready(Fiber* f) {
  if (t_scheduler == this) {
#ifdef FIBER_TEST_HOOKS
    if (f->state != FiberState::kParked) test::wake_not_parked(f->id, static_cast<int>(f->state));
#endif
    f->state = FiberState::kReady;
    runq_.push(f);
    return;
  }
  post(InboxItem{f, nullptr, 0});
}

void Scheduler::post_spawn(FiberBody* body, size_t stack_size) {
  try {
    post(InboxItem{nullptr, body, stack_size});
  } catch (...) {  // out of memory for the inbox: the spawn fails, the body goes
    delete body;
    throw;
  }
}

void Scheduler::request_dump(std::shared_ptr<DumpRequest> req) {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    dump_requests_.push_back(std::move(req));
    inbox_hint_.store(true, std::memory_order_relaxed);
  }
  if (sleeping_.load(std::memory_order_seq_cst) &&
      sleeping_.exchange(false, std::memory_order_seq_cst)) {
    poller_->wake();
  }
}

void Scheduler::answer_dumps() {
  for (const auto& req : answering_) answer_dump(*this, *req);
  answering_.clear();
}

bool Scheduler::inbox_empty() {
  std::lock_guard<std::mutex> g(inbox_mu_);
  return inbox_.empty() && dump_requests_.empty();
}

void Scheduler::stop() {
  stop_.store(true, std::memory_order_release);
  if (poller_ != nullptr) poller_->wake();
}

void Scheduler::adopt(Fiber* f) {
  f->owner = this;
  f->id = ++next_id_ * runtime_->size() + index_ + 1 - runtime_->size();
  f->live_prev = nullptr;
  f->live_next = live_head_;
  if (live_head_ != nullptr) live_head_->live_prev = f;
  live_head_ = f;
  ++live_count_;
  bump(spawned_);
  alive_.store(live_count_, std::memory_order_relaxed);
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.index = index_;
  s.fibers_alive = alive_.load(std::memory_order_relaxed);
  s.fibers_spawned = spawned_.load(std::memory_order_relaxed);
  s.context_switches = switches_.load(std::memory_order_relaxed);
  s.io_ops = io_ops_.load(std::memory_order_relaxed);
  s.stalls = stalls_.load(std::memory_order_relaxed);
  s.longest_stall_ns = longest_stall_ns_.load(std::memory_order_relaxed);
  s.slice_yields = slice_yields_.load(std::memory_order_relaxed);
  if (poller_ != nullptr) poller_->add_stats(s);
  return s;
}

void Scheduler::spawn_local(FiberBody& body, size_t stack_size) {
  Fiber* f = create_fiber(stacks_, stack_size, &body, /*body_on_heap=*/false);
  adopt(f);
  f->state = FiberState::kReady;
  runq_.push(f);
}

void Scheduler::yield() {
  Fiber* self = current();
  self->state = FiberState::kReady;
  runq_.push(self);
  Context* next = next_context();
  if (next != self) switch_context(self, next);
}

void Scheduler::slice_yield() {
  slice_due_.store(false, std::memory_order_relaxed);
  if (current() == nullptr) return;  // the loop's own code: nothing to yield
  bump(slice_yields_);
  yield();
}

void Scheduler::exit(Fiber* self) {
  self->state = FiberState::kDead;
  exit_context(self, next_context());
}

void Scheduler::unlink_live(Fiber* f) {
  if (f->live_prev != nullptr) {
    f->live_prev->live_next = f->live_next;
  } else {
    live_head_ = f->live_next;
  }
  if (f->live_next != nullptr) f->live_next->live_prev = f->live_prev;
  f->live_prev = f->live_next = nullptr;
  --live_count_;
  alive_.store(live_count_, std::memory_order_relaxed);
}

void Scheduler::reclaim(Fiber* f) {
  unlink_live(f);
  free_fiber(stacks_, f);
}

void Scheduler::forget(Fiber* f) { unlink_live(f); }

void Scheduler::free_abandoned() {
  // Fibers still parked when the runtime stops are dropped without unwinding:
  // their stacks are unmapped, objects on them are not destroyed.
  while (live_head_ != nullptr) {
    Fiber* f = live_head_;
    live_head_ = f->live_next;
    --live_count_;
    free_fiber(stacks_, f);
  }
}

// --- hooks of the fiber layer ---------------------------------------------

void install_fiber_hooks() {
  on_context_exit = [](Context* dead) { t_scheduler->reclaim(static_cast<Fiber*>(dead)); };
  fiber_exit = [](Fiber* self) { static_cast<Scheduler*>(self->owner)->exit(self); };
}

}  // namespace fiber::detail
