// Model (d): WaitGroup add/done/wait across cores. Checks that wait() returns
// only once the counter reached zero, that what the workers wrote before done()
// is visible after wait(), that no waiter is left parked (no lost wake-up) or
// woken twice, and that done() does not touch the WaitGroup once a waiter may
// have returned and destroyed it (it lives on the waiter's stack).
//
// Mirrors WaitGroup::add() and WaitGroup::wait() in sched/sync.cc (a SpinLock,
// the counter and a WaitList; add() pops every waiter under the lock when the
// counter reaches zero and readies them after releasing it, through a WakeList).
//
// Mutants:
//   -DBUGGY=1  wait() checks the counter, releases the lock (as if to look up
//              the calling fiber) and queues itself under the lock again
//              without checking again: the last done() can slip in between and
//              the waiter sleeps forever (deadlock).
//   -DBUGGY=2  add() decides under the lock that the counter reached zero but
//              collects the waiters in a second critical section: a waiter
//              that saw zero has returned and freed the WaitGroup by then.
#include "model.h"

namespace model {
namespace {

// WaitGroup mirrors fiber::WaitGroup.
class WaitGroup {
 public:
  WaitGroup() : count_(0) {}

  // add() is WaitGroup::add(); done() is add(-1).
  void add(int delta) {
    Fiber* chain[2];  // the WakeList: at most two waiters in these scenarios
    int n = 0;
    lock_.lock();
    RL_ASSERT(count_($) + delta >= 0);  // the runtime throws std::logic_error
    count_($) += delta;
#if BUGGY != 2
    if (count_($) == 0) {
      while (Waiter* w = waiters_.pop_front()) chain[n++] = w->fiber;
    }
    lock_.unlock();
#else
    const bool zero = count_($) == 0;
    lock_.unlock();
    if (zero) {
      lock_.lock();
      while (Waiter* w = waiters_.pop_front()) chain[n++] = w->fiber;
      lock_.unlock();
    }
#endif
    for (int i = 0; i < n; ++i) chain[i]->ready();  // WakeList::wake_all()
  }
  void done() { add(-1); }

  // wait() is WaitGroup::wait(); `self` is the calling fiber.
  void wait(Fiber* self) {
    auto* w = new Waiter(self);  // on the waiter's stack in the runtime
    lock_.lock();
    if (count_($) == 0) {
      lock_.unlock();
      delete w;
      return;
    }
#if BUGGY == 1
    lock_.unlock();
    lock_.lock();
#endif
    waiters_.push_back(w);
    lock_.unlock();
    self->park();
    delete w;
  }

 private:
  SpinLock lock_;
  rl::var<int> count_;  // guarded by lock_
  WaitList waiters_;    // guarded by lock_
};

// Threads 0..kWaiters-1 wait; the others each do one piece of work and done().
// Thread 0 owns the WaitGroup and destroys it once its wait() returned (as a
// WaitGroup on its stack); with a second waiter, the WaitGroup outlives both.
template <int kWaiters, int kWorkers>
struct WaitGroupModel : rl::test_suite<WaitGroupModel<kWaiters, kWorkers>, kWaiters + kWorkers> {
  static constexpr bool kOwnerFrees = kWaiters == 1;

  Fiber fibers[kWaiters + kWorkers];
  WaitGroup* wg = nullptr;
  rl::var<int> work[kWorkers];  // each worker's result

  void before() {
    wg = new WaitGroup;
    wg->add(kWorkers);  // before the workers start, as with go()
  }

  void thread(unsigned t) {
    if (t < kWaiters) {
      wg->wait(&fibers[t]);
      for (int i = 0; i < kWorkers; ++i) RL_ASSERT(work[i]($) == 10 + i);
      if (kOwnerFrees) delete wg;
      return;
    }
    const int i = static_cast<int>(t) - kWaiters;
    work[i]($) = 10 + i;
    wg->done();
  }

  void after() {
    if (!kOwnerFrees) delete wg;
    for (Fiber& f : fibers) RL_ASSERT(f.idle());
  }
};

}  // namespace
}  // namespace model

int main(int argc, char** argv) {
#if BUGGY == 2
  const rl::test_result_e mutant_fails = rl::test_result_access_to_freed_memory;
#else
  const rl::test_result_e mutant_fails = rl::test_result_deadlock;
#endif
  model::Runner r(argc, argv, "wait_group", mutant_fails);
  r.check<model::WaitGroupModel<1, 1>>("1 waiter, 1 worker", model::Search::full());
  r.check<model::WaitGroupModel<1, 2>>("1 waiter, 2 workers", model::Search::bounded(5));
  r.check<model::WaitGroupModel<2, 2>>("2 waiters, 2 workers", model::Search::random(300000));
  return r.finish();
}
