// Model (e): Mutex lock/unlock with waiters on other cores. Checks mutual
// exclusion (the critical sections' plain writes never race), that every
// lock() returns (no lost hand-off), that a parked waiter is woken once, and
// that unlock() does not touch the waiter's entry after waking it (the entry
// is on the waiter's stack).
//
// Mirrors Mutex::lock() and Mutex::unlock() in sched/sync.cc: a SpinLock, the
// locked_ flag and a FIFO WaitList. unlock() with a waiter hands the lock over
// (locked_ stays true) and readies the waiter after releasing the spin lock;
// lock()'s slow path releases the spin lock to look up the calling fiber, so it
// checks locked_ again before queueing itself.
//
// Mutants:
//   -DBUGGY=1  lock() queues itself without checking locked_ again after
//              re-taking the spin lock: an unlock() in between finds no
//              waiter, and the queued fiber sleeps forever (deadlock).
//   -DBUGGY=2  unlock() clears locked_ as well as waking the first waiter,
//              which believes the lock was handed over: its own unlock() finds
//              the mutex unlocked (the runtime's std::logic_error, an assertion
//              here), or a third fiber took the free lock meanwhile (two owners,
//              a data race).
#include "model.h"

namespace model {
namespace {

// Mutex mirrors fiber::Mutex.
class Mutex {
 public:
  Mutex() : locked_(false) {}

  // lock() is Mutex::lock(); `self` is the calling fiber.
  void lock(Fiber* self) {
    lock_.lock();
    if (!locked_($)) {
      locked_($) = true;
      lock_.unlock();
      return;
    }
    lock_.unlock();
    auto* w = new Waiter(self);  // current_fiber(); the entry is on the stack
    lock_.lock();
#if BUGGY != 1
    if (!locked_($)) {  // released while we looked up who we are
      locked_($) = true;
      lock_.unlock();
      delete w;
      return;
    }
#endif
    waiters_.push_back(w);
    lock_.unlock();
    self->park();  // unlock() handed the lock to us before waking us
    delete w;
  }

  // unlock() is Mutex::unlock().
  void unlock() {
    lock_.lock();
    RL_ASSERT(locked_($));  // the runtime throws std::logic_error
    Waiter* next = waiters_.pop_front();
    if (next == nullptr) {
      locked_($) = false;
      lock_.unlock();
      return;
    }
    Fiber* f = next->fiber;  // `next` lives on f's stack: read it before waking f
#if BUGGY == 2
    locked_($) = false;
#endif
    lock_.unlock();
    f->ready();
  }

 private:
  SpinLock lock_;
  rl::var<bool> locked_;  // guarded by lock_
  WaitList waiters_;      // guarded by lock_
};

// Each thread locks the mutex kRounds times and updates a plain counter inside.
template <int kThreads, int kRounds>
struct MutexModel : rl::test_suite<MutexModel<kThreads, kRounds>, kThreads> {
  Fiber fibers[kThreads];
  Mutex mu;
  rl::var<int> counter;  // guarded by mu

  void before() { counter($) = 0; }

  void thread(unsigned t) {
    for (int i = 0; i < kRounds; ++i) {
      mu.lock(&fibers[t]);
      counter($) += 1;
      mu.unlock();
    }
  }

  void after() {
    RL_ASSERT(counter($) == kThreads * kRounds);
    for (Fiber& f : fibers) RL_ASSERT(f.idle());
  }
};

}  // namespace
}  // namespace model

int main(int argc, char** argv) {
#if BUGGY == 2
  const rl::test_result_e mutant_fails = rl::test_result_user_assert_failed;
#else
  const rl::test_result_e mutant_fails = rl::test_result_deadlock;
#endif
  model::Runner r(argc, argv, "mutex_handoff", mutant_fails);
  r.check<model::MutexModel<2, 1>>("2 fibers x 1 lock", model::Search::full());
  r.check<model::MutexModel<3, 1>>("3 fibers x 1 lock", model::Search::bounded(4));
  r.check<model::MutexModel<2, 2>>("2 fibers x 2 locks", model::Search::bounded(4));
  r.check<model::MutexModel<3, 2>>("3 fibers x 2 locks", model::Search::random(300000));
  return r.finish();
}
