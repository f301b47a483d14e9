// Model (a): a scheduler going to sleep in its poller while other cores push to
// its inbox and ring its doorbell. Checks that no wake-up is lost: every pushed
// item runs, the scheduler never sleeps with an item in its inbox.
//
// Mirrors Scheduler::loop() (its sleep path), Scheduler::post() and
// Scheduler::drain_inbox() in sched/scheduler.cc, and the eventfd doorbell of
// the pollers (Poller::wake(), driver/uring_poller.cc and driver/epoll_poller.cc).
//
// The protocol: the loop stores sleeping_ (seq_cst), then checks the inbox under
// inbox_mu_, and only then sleeps; a pusher pushes under inbox_mu_, then reads
// sleeping_ and rings if it was set. The mutex orders the two checks, so either
// the loop sees the item or the pusher sees sleeping_.
//
// Mutants:
//   -DBUGGY=1  the re-check after setting sleeping_ reads the lock-free
//              inbox_hint_ (relaxed) instead of the inbox under its mutex. Under
//              sequential consistency that still works; under the C++ memory
//              model the hint's store and the pusher's load of sleeping_ are a
//              store-buffering pair and both can miss: a lost wake-up (deadlock).
//   -DBUGGY=2  no re-check at all after setting sleeping_ (deadlock).
#include "model.h"

namespace model {
namespace {

// Thread 0 is the scheduler, threads 1..kPushers each push one item from
// another core.
template <int kPushers>
struct ParkDoorbell : rl::test_suite<ParkDoorbell<kPushers>, 1 + kPushers> {
  // Scheduler's cross-thread state.
  rl::mutex inbox_mu;
  rl::var<int> inbox;  // inbox_.size(); guarded by inbox_mu
  rl::atomic<bool> sleeping;
  rl::atomic<bool> inbox_hint;
  Doorbell doorbell;
  int ran = 0;  // items run; scheduler thread only

  void before() {
    inbox($) = 0;
    sleeping.store(false, memory_order_relaxed);
    inbox_hint.store(false, memory_order_relaxed);
    ran = 0;
  }

  void thread(unsigned i) {
    if (i == 0) {
      loop();
    } else {
      post();
    }
  }

  void after() { RL_ASSERT(ran == kPushers); }

  // post() is Scheduler::post(): push under the mutex, then ring if asleep.
  void post() {
    inbox_mu.lock($);
    inbox($) += 1;
    inbox_hint.store(true, memory_order_relaxed);
    inbox_mu.unlock($);
    if (sleeping.load(memory_order_seq_cst) && sleeping.exchange(false, memory_order_seq_cst)) {
      doorbell.wake();
    }
  }

  // drain_inbox() is Scheduler::drain_inbox(): returns how many items it took.
  int drain_inbox() {
    inbox_mu.lock($);
    int n = inbox($);
    if (n == 0) {
      inbox_mu.unlock($);
      return 0;
    }
    inbox($) = 0;
    inbox_hint.store(false, memory_order_relaxed);
    inbox_mu.unlock($);
    return n;
  }

  // loop() is Scheduler::loop(), until every pushed item ran (the runtime loops
  // until stop(); timers and I/O are left out: the sleep without a timeout is
  // the one that can hang).
  void loop() {
    int runq = 0;
    bool ran_since_sleep = false;
    while (ran < kPushers) {
      runq += drain_inbox();
      if (runq > 0) {
        --runq;
        ++ran;
        ran_since_sleep = true;
        continue;
      }
      if (ran_since_sleep) {
        ran_since_sleep = false;
        // spin_before_sleep() watches the hint until it times out; the model
        // looks once (the spin saw it) or not at all (it timed out first).
        if (rl::rand(2) == 0 && inbox_hint.load(memory_order_relaxed)) continue;
      }
      sleeping.store(true, memory_order_seq_cst);
#if !defined(BUGGY)
      bool pending;
      inbox_mu.lock($);
      pending = inbox($) != 0;
      inbox_mu.unlock($);
#elif BUGGY == 1
      bool pending = inbox_hint.load(memory_order_relaxed);
#else
      bool pending = false;
#endif
      if (pending) {
        sleeping.store(false, memory_order_relaxed);
        continue;
      }
      doorbell.poll();
      sleeping.store(false, memory_order_relaxed);
    }
  }
};

}  // namespace
}  // namespace model

int main(int argc, char** argv) {
  model::Runner r(argc, argv, "park_doorbell", rl::test_result_deadlock);
  r.check<model::ParkDoorbell<1>>("1 pusher", model::Search::full());
  r.check<model::ParkDoorbell<2>>("2 pushers", model::Search::bounded(5));
  r.check<model::ParkDoorbell<2>>("2 pushers", model::Search::random(300000));
  return r.finish();
}
