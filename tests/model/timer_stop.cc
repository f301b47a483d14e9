// Model (f): a channel timer fired by its owner core while another core
// resets or stops it. Checks Go 1.23 timer semantics across cores: no value
// from an arming before reset() or stop() is received after the call; stop()
// returns true only if that arming never delivered; the node is freed exactly
// once, never touched afterwards and never leaked.
//
// The heap of timers is core-local (only the owner touches it), so the race
// that crosses cores is the one modelled here: TimerCore::on_fire() on the
// owner against TimerCore::stop() and TimerCore::reset() from another core
// (sched/time.cc, sched/timer_core.h), with ChanTimer's deliver_locked()
// (try_send into the capacity-1 channel) and drain_locked() (try_recv), all
// under the node's mu_. A reset() from another core bumps the generation and
// posts a short fiber to the owner, which re-arms only if the generation is
// still current; the reference counts (handle, heap, posted fiber) decide who
// frees the node. Tickers (a period) are left out.
//
// The scenario: the timer was armed on its owner (thread 0), due at once;
// thread 1 holds the handle on another core: it may reset() it, receives what
// is there, stops it, receives again and drops the handle (~Timer: stop() and
// unref()).
//
// Mutants:
//   -DBUGGY=1  on_fire() delivers when the timer is active without checking
//              that its arming is of the current generation: the arming from
//              before a remote reset() fires and its value is received after
//              the reset (assertion).
//   -DBUGGY=2  stop() does not drain the channel: a value delivered before
//              stop() is received after it (assertion).
#include "model.h"

namespace model {
namespace {

class TimerCore;

// Chan1 is the ChanTimer's Chan<TimePoint> of capacity 1: ChanCore's buffered
// path with nobody parked (the receiver uses try_recv here). A value is the
// generation of the arming that delivered it (the runtime sends the time).
class Chan1 {
 public:
  Chan1() : count_(0), value_(0) {}

  bool try_send(int v) {
    lock_.lock();
    const bool ok = count_($) == 0;
    if (ok) {
      value_($) = v;
      count_($) = 1;
    }
    lock_.unlock();
    return ok;
  }
  // try_recv() returns the value, or 0 if there is none.
  int try_recv() {
    lock_.lock();
    int v = 0;
    if (count_($) == 1) {
      v = value_($);
      count_($) = 0;
    }
    lock_.unlock();
    return v;
  }

 private:
  SpinLock lock_;
  rl::var<int> count_;  // guarded by lock_
  rl::var<int> value_;  // guarded by lock_
};

// Owner is the owner scheduler's part: its timer heap (one slot), the registry
// of armed nodes (t_armed) and its inbox, through which go_on() posts fibers.
struct Owner {
  Owner() : heap(nullptr), registered(nullptr), posted(0), remote_done(false) {}

  // Core-local (thread 0).
  rl::var<TimerCore*> heap;        // the armed node, if any
  rl::var<TimerCore*> registered;  // ArmedTimers: the node the heap holds a reference for

  // The inbox: go_on(owner, fiber) from another core.
  rl::mutex mu;
  rl::condition_variable cv;
  struct Task {
    TimerCore* timer;
    int gen;
  };
  Task tasks[2];
  rl::var<int> posted;        // guarded by mu
  rl::var<bool> remote_done;  // guarded by mu; the other core is finished (model only)

  void post(Task t) {
    mu.lock($);
    int n = posted($);
    RL_ASSERT(n < 2);
    tasks[n] = t;
    posted($) = n + 1;
    cv.notify_one($);
    mu.unlock($);
  }
};

// TimerCore mirrors detail::TimerCore with ChanTimer's deliver_locked() and
// drain_locked(); `on_owner` stands for t_scheduler == owner_.
class TimerCore {
 public:
  TimerCore(Owner* owner, Chan1* ch)
      : owner_(owner), ch_(ch), refs_(1), gen_(0), armed_gen_(0), active_(false) {}

  void ref() { refs_.fetch_add(1, memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, memory_order_acq_rel) == 1) delete this;
  }

  // reset() is TimerCore::reset(0, 0); returns the generation it set (model only).
  int reset(bool on_owner) {
    mu_.lock();
    active_($) = true;
    gen_($) += 1;
    ch_->try_recv();  // drain_locked()
    if (on_owner) {
      arm_local();
      const int gen = gen_($);
      mu_.unlock();
      return gen;
    }
    const int gen = gen_($);
    mu_.unlock();
    // Another core: arm on the owner. Until that fiber runs, the old arming (if
    // any) is stale and delivers nothing.
    ref();
    owner_->post({this, gen});
    return gen;
  }

  // stop() is TimerCore::stop(); `*stopped_gen` is the generation it ended.
  bool stop(bool on_owner, int* stopped_gen) {
    mu_.lock();
    const bool was = active_($);
    active_($) = false;
    *stopped_gen = gen_($);
    gen_($) += 1;
#if BUGGY != 2
    ch_->try_recv();  // drain_locked()
#endif
    const bool disarm = on_owner && owner_->heap($) == this;  // the heap is core-local
    if (disarm) owner_->heap($) = nullptr;
    mu_.unlock();
    if (disarm) {
      owner_->registered($) = nullptr;
      unref();  // the caller holds another reference
    }
    return was;
  }

  // on_fire() is TimerCore::on_fire(), run by the owner's fire_timers() after
  // taking the node off the heap. `delivered` records each generation's value.
  void on_fire(bool* delivered) {
    mu_.lock();
#if BUGGY != 1
    const bool deliver = active_($) && armed_gen_($) == gen_($);
#else
    const bool deliver = active_($);
#endif
    if (deliver) {
      const int gen = armed_gen_($);
      if (ch_->try_send(gen)) delivered[gen] = true;  // deliver_locked()
      active_($) = false;                             // no period: fires once
    }
    mu_.unlock();
    owner_->registered($) = nullptr;  // t_armed.remove(c)
    unref();                          // the heap's reference
  }

  // run_posted() is the fiber reset() posts to the owner.
  void run_posted(int gen) {
    mu_.lock();
    if (gen_($) == gen && active_($)) arm_local();
    mu_.unlock();
    unref();
  }

 private:
  // arm_local() is TimerCore::arm_local(): owner thread, mu_ held.
  void arm_local() {
    if (owner_->heap($) == this) {
      owner_->heap($) = nullptr;  // owner_->cancel_timer(this)
    } else {
      ref();  // the heap's reference
      owner_->registered($) = this;
    }
    armed_gen_($) = gen_($);
    owner_->heap($) = this;  // owner_->add_timer(this)
  }

  Owner* const owner_;
  Chan1* const ch_;
  rl::atomic<int> refs_;
  SpinLock mu_;
  rl::var<int> gen_;        // guarded by mu_
  rl::var<int> armed_gen_;  // guarded by mu_
  rl::var<bool> active_;    // guarded by mu_
};

struct TimerModel : rl::test_suite<TimerModel, 2> {
  static constexpr int kMaxGen = 4;

  Owner owner;
  Chan1 ch;
  TimerCore* timer = nullptr;
  bool delivered[kMaxGen] = {};  // written by the owner under the node's mu_
  bool stop_was_active = false;  // thread 1's results, checked in after()
  int stopped_gen = 0;

  void before() {
    for (bool& d : delivered) d = false;
    timer = new TimerCore(&owner, &ch);  // fiber::Timer(0): made and armed on the owner
    timer->reset(/*on_owner=*/true);
  }

  void thread(unsigned t) {
    if (t == 0) {
      owner_loop();
    } else {
      remote();
    }
  }

  // owner_loop() is the owner's Scheduler::loop(): inbox, then due timers; the
  // timer is due at once. It ends when the other core is done and nothing is
  // left, then releases what its registry holds (~ArmedTimers).
  void owner_loop() {
    int ran = 0;
    for (;;) {
      owner.mu.lock($);
      while (ran == owner.posted($) && !owner.remote_done($) && owner.heap($) == nullptr) {
        owner.cv.wait(owner.mu, $);
      }
      const bool have_task = ran < owner.posted($);
      Owner::Task task = have_task ? owner.tasks[ran] : Owner::Task{nullptr, 0};
      const bool done = owner.remote_done($);
      owner.mu.unlock($);
      if (have_task) {  // drain_inbox(): run the posted fiber
        ++ran;
        task.timer->run_posted(task.gen);
        continue;
      }
      if (TimerCore* t = owner.heap($)) {  // fire_timers()
        owner.heap($) = nullptr;
        t->on_fire(delivered);
        continue;
      }
      if (done) break;
    }
    if (TimerCore* t = owner.registered($)) {
      owner.registered($) = nullptr;
      t->unref();
    }
  }

  // remote() is a fiber on another core holding the fiber::Timer handle.
  void remote() {
    if (rl::rand(2) == 1) {
      const int gen = timer->reset(/*on_owner=*/false);
      const int v = ch.try_recv();
      RL_ASSERT(v == 0 || v >= gen);  // nothing from before reset()
    } else {
      ch.try_recv();
    }
    stop_was_active = timer->stop(/*on_owner=*/false, &stopped_gen);
    RL_ASSERT(ch.try_recv() == 0);  // nothing from before stop()
    int ignored;
    timer->stop(false, &ignored);  // ~Timer: stop(), then drop the handle
    timer->unref();
    owner.mu.lock($);
    owner.remote_done($) = true;
    owner.cv.notify_one($);
    owner.mu.unlock($);
  }

  void after() {
    RL_ASSERT(ch.try_recv() == 0);  // nothing showed up after stop()
    if (stop_was_active) RL_ASSERT(!delivered[stopped_gen]);
  }
};

}  // namespace
}  // namespace model

int main(int argc, char** argv) {
  model::Runner r(argc, argv, "timer_stop", rl::test_result_user_assert_failed);
  r.check<model::TimerModel>("fire vs reset and stop", model::Search::bounded(5));
  r.check<model::TimerModel>("fire vs reset and stop", model::Search::random(300000));
  return r.finish();
}
