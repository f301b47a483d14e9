// Model (c): channel send/recv/close racing a two-case select on other cores.
// Checks that exactly one party claims a parked select and wakes it once, that
// no losing peer touches the select's other case, that every value sent is
// received exactly once, that nothing is received after close and drain, and
// that the select's frame is not touched after it returned.
//
// Mirrors sched/chan.cc and the types of sched/include/fiber/chan.h:
// WaiterQueue::dequeue_live() (the claim: a CAS on SelectState::claimed, none
// for a solo send or recv), ChanCore::send_locked(), recv_locked(), send(),
// recv(), try_send(), close(), and select_impl() (pass 1 under every channel
// lock in address order, pass 2 queues a waiter per case and parks, pass 3
// relocks and unlinks the waiters that did not fire). With a timeout, the
// select's timer (SelectTimer::fire) fires on the select's own core while the
// select is parked and claims with the same CAS.
//
// The scenario: thread 0 selects on {recv ch1, recv ch2} (ch1 unbuffered, ch2
// with capacity 1), then receives what it did not get from ch1 and drains ch2;
// thread 1 sends 1 on ch1 (parking until received); thread 2 may try_send 2 on
// ch2, then closes ch2.
//
// Mutants:
//   -DBUGGY=1  dequeue_live() takes every waiter without claiming it, as if
//              every operation were a solo send or recv: two peers both take
//              the select, each under its own channel's lock, and both write
//              its result (a data race) before both wake it.
//   -DBUGGY=2  select skips pass 3: its losing waiter stays queued after its
//              frame is gone, and a peer reads freed memory.
#include <functional>

#include "model.h"

namespace model {
namespace {

struct ChanWaiter;

// SelectState mirrors detail::SelectState: one parked operation, claimed once.
struct SelectState {
  SelectState(Fiber* f, bool is_solo) : fiber(f), claimed(false), fired(nullptr), solo(is_solo) {}
  Fiber* const fiber;
  rl::atomic<bool> claimed;
  rl::var<ChanWaiter*> fired;  // set by the claimer before ready(); nullptr: the timer
  rl::var<bool> solo;
};

// ChanWaiter mirrors detail::ChanWaiter: one case of a parked operation.
struct ChanWaiter {
  ChanWaiter()
      : sel(nullptr),
        prev(nullptr),
        next(nullptr),
        linked(false),
        ok(false),
        elem(nullptr),
        index(0) {}
  rl::var<SelectState*> sel;
  rl::var<ChanWaiter*> prev;
  rl::var<ChanWaiter*> next;
  rl::var<bool> linked;
  rl::var<bool> ok;             // set by the claimer
  rl::var<rl::var<int>*> elem;  // send: the value to move; recv: the slot to fill
  rl::var<int> index;
};

// WaiterQueue mirrors detail::WaiterQueue.
class WaiterQueue : public IntrusiveList<ChanWaiter> {
 public:
  // dequeue_live() pops waiters until it claims one; nullptr if none.
  ChanWaiter* dequeue_live() {
    while (ChanWaiter* w = front()) {
      remove(w);
      SelectState* sel = w->sel($);
#if BUGGY != 1
      if (sel->solo($)) return w;  // popped under the lock: nobody else can claim it
      bool expected = false;
      if (sel->claimed.compare_exchange_strong(expected, true, memory_order_acq_rel)) return w;
#else
      (void)sel;
      return w;
#endif
    }
    return nullptr;
  }
};

enum class ChanStatus { kOk, kClosed, kWouldBlock };

// move_value() is ElemOps::move_construct for the model's int values.
void move_value(rl::var<int>* dst, rl::var<int>* src) { (*dst)($) = (*src)($); }

// ChanCore mirrors detail::ChanCore (capacity 0 or 1 here).
class ChanCore {
 public:
  explicit ChanCore(int cap) : cap_(cap), head_(0), count_(0), closed_(false) {}

  SpinLock lock_;
  WaiterQueue sendq_;
  WaiterQueue recvq_;

  ChanStatus send_locked(rl::var<int>* src, Fiber** wake) {
    if (closed_($)) return ChanStatus::kClosed;
    if (ChanWaiter* w = recvq_.dequeue_live()) {
      move_value(w->elem($), src);  // straight onto the receiver's stack
      w->ok($) = true;
      w->sel($)->fired($) = w;
      *wake = w->sel($)->fiber;
      return ChanStatus::kOk;
    }
    if (count_($) < cap_) {
      move_value(&buf_[(head_($) + count_($)) % cap_], src);
      count_($) += 1;
      return ChanStatus::kOk;
    }
    return ChanStatus::kWouldBlock;
  }

  ChanStatus recv_locked(rl::var<int>* dst, Fiber** wake) {
    if (ChanWaiter* w = sendq_.dequeue_live()) {
      if (cap_ == 0) {
        move_value(dst, w->elem($));
      } else {
        // A sender waits only while the buffer is full: take the head and put the
        // sender's value in its place.
        rl::var<int>* head = &buf_[head_($)];
        move_value(dst, head);
        move_value(head, w->elem($));
        head_($) = (head_($) + 1) % cap_;
      }
      w->ok($) = true;
      w->sel($)->fired($) = w;
      *wake = w->sel($)->fiber;
      return ChanStatus::kOk;
    }
    if (count_($) > 0) {
      move_value(dst, &buf_[head_($)]);
      head_($) = (head_($) + 1) % cap_;
      count_($) -= 1;
      return ChanStatus::kOk;
    }
    return closed_($) ? ChanStatus::kClosed : ChanStatus::kWouldBlock;
  }

  ChanStatus try_send(rl::var<int>* src) {
    Fiber* wake = nullptr;
    lock_.lock();
    ChanStatus s = send_locked(src, &wake);
    lock_.unlock();
    if (wake != nullptr) wake->ready();
    return s;
  }

  // send() and recv() park; `self` is the calling fiber (current_fiber()).
  ChanStatus send(Fiber* self, rl::var<int>* src) { return park_on(self, src, &sendq_, true); }
  ChanStatus recv(Fiber* self, rl::var<int>* dst) { return park_on(self, dst, &recvq_, false); }

  bool close() {
    Fiber* wake[2];  // the WakeList: at most one parked fiber per other thread here
    int nwake = 0;
    lock_.lock();
    if (closed_($)) {
      lock_.unlock();
      return false;
    }
    closed_($) = true;
    for (WaiterQueue* q : {&recvq_, &sendq_}) {
      while (ChanWaiter* w = q->dequeue_live()) {
        w->ok($) = false;
        w->sel($)->fired($) = w;
        RL_ASSERT(nwake < 2);
        wake[nwake++] = w->sel($)->fiber;
      }
    }
    lock_.unlock();
    for (int i = 0; i < nwake; ++i) wake[i]->ready();
    return true;
  }

 private:
  // ChanCore::send() / recv(): the fast path, else a solo waiter and park().
  ChanStatus park_on(Fiber* self, rl::var<int>* elem, WaiterQueue* q, bool sending) {
    Fiber* wake = nullptr;
    lock_.lock();
    ChanStatus s = sending ? send_locked(elem, &wake) : recv_locked(elem, &wake);
    if (s != ChanStatus::kWouldBlock) {
      lock_.unlock();
      if (wake != nullptr) wake->ready();
      return s;
    }
    // SelectState and ChanWaiter live on the parked fiber's stack: a heap frame
    // here, freed when the call returns, so that a late access is reported.
    auto* sel = new SelectState(self, true);
    auto* w = new ChanWaiter;
    w->sel($) = sel;
    w->elem($) = elem;
    q->push_back(w);
    lock_.unlock();
    self->park();
    // Only a claimer wakes us, and it unlinked `w` under the lock.
    s = w->ok($) ? ChanStatus::kOk : ChanStatus::kClosed;
    delete w;
    delete sel;
    return s;
  }

  const int cap_;
  rl::var<int> buf_[1];  // raw storage: reading a slot never written is reported
  rl::var<int> head_;    // guarded by lock_
  rl::var<int> count_;   // guarded by lock_
  rl::var<bool> closed_;
};

struct SelectCase {
  ChanCore* core;
  rl::var<int>* elem;  // recv cases only in this scenario
};

constexpr int kTimeout = 2;  // the index of the timeout case

struct SelectOutcome {
  int index;
  bool ok;
};

// SelectFrame is the part of select_impl()'s stack frame that peers can reach.
struct SelectFrame {
  explicit SelectFrame(Fiber* self) : sel(self, false) {}
  SelectState sel;
  ChanWaiter waiters[2];
};

// select2() is select_impl() for two recv cases, with an optional timeout whose
// deadline lies after pass 1.
SelectOutcome select2(Fiber* self, SelectCase* cases, bool with_timeout) {
  int poll[2] = {0, 1};
  if (rl::rand(2) == 1) std::swap(poll[0], poll[1]);  // the random poll order
  int lockorder[2] = {0, 1};
  if (std::less<ChanCore*>()(cases[1].core, cases[0].core)) std::swap(lockorder[0], lockorder[1]);
  auto lock_all = [&] {
    for (int i : lockorder) cases[i].core->lock_.lock();
  };
  auto unlock_all = [&] {
    for (int i : lockorder) cases[i].core->lock_.unlock();
  };

  // Pass 1: is any case ready now?
  lock_all();
  for (int i : poll) {
    Fiber* wake = nullptr;
    ChanStatus s = cases[i].core->recv_locked(cases[i].elem, &wake);
    if (s != ChanStatus::kWouldBlock) {
      unlock_all();
      if (wake != nullptr) wake->ready();
      return {i, s == ChanStatus::kOk};
    }
  }

  // Pass 2: queue a waiter on every channel, then park.
  auto* frame = new SelectFrame(self);
  for (int i : lockorder) {
    ChanWaiter& w = frame->waiters[i];
    w.sel($) = &frame->sel;
    w.elem($) = cases[i].elem;
    w.index($) = i;
    cases[i].core->recvq_.push_back(&w);
  }
  unlock_all();
  if (with_timeout && rl::rand(2) == 1) {
    // SelectTimer::fire: the scheduler fires the timer after the fiber parked,
    // while peers on other cores may be claiming the select too.
    bool expected = false;
    if (frame->sel.claimed.compare_exchange_strong(expected, true, memory_order_acq_rel)) {
      frame->sel.fired($) = nullptr;
      self->ready();
    }
  }
  self->park();
  ChanWaiter* fired = frame->sel.fired($);

#if BUGGY != 2
  // Pass 3: unlink the waiters that did not fire (the claimer unlinked its own).
  lock_all();
  for (int i : lockorder) {
    if (&frame->waiters[i] == fired) continue;
    cases[i].core->recvq_.remove(&frame->waiters[i]);
  }
  unlock_all();
#endif
  SelectOutcome out{kTimeout, false};
  if (fired != nullptr) out = {fired->index($), fired->ok($)};
  delete frame;
  return out;
}

template <bool kWithTimeout>
struct ChanSelect : rl::test_suite<ChanSelect<kWithTimeout>, 3> {
  Fiber fibers[3];  // thread i runs fibers[i]
  ChanCore ch1{0};
  ChanCore ch2{1};
  // Thread 0's receive slots (on its stack in the runtime): -1 until filled.
  rl::var<int> slot1;
  rl::var<int> slot2;
  rl::var<int> sent2;  // thread 2's value (on its stack)
  bool sent_two = false;

  void before() {
    slot1($) = -1;
    slot2($) = -1;
    sent_two = false;
  }

  void thread(unsigned t) {
    switch (t) {
      case 0:
        selector();
        break;
      case 1: {
        rl::var<int> one(1);
        RL_ASSERT(ch1.send(&fibers[1], &one) == ChanStatus::kOk);
        break;
      }
      case 2:
        if (rl::rand(2) == 1) {
          sent2($) = 2;
          RL_ASSERT(ch2.try_send(&sent2) == ChanStatus::kOk);  // capacity 1, one value
          sent_two = true;
        }
        RL_ASSERT(ch2.close());
        break;
    }
  }

  void selector() {
    Fiber* self = &fibers[0];
    SelectCase cases[2] = {{&ch1, &slot1}, {&ch2, &slot2}};
    SelectOutcome out = select2(self, cases, kWithTimeout);
    int got1 = 0;
    int got2 = 0;
    bool closed2 = false;
    switch (out.index) {
      case 0:
        RL_ASSERT(out.ok);  // ch1 is never closed
        RL_ASSERT(slot1($) == 1);
        RL_ASSERT(slot2($) == -1);  // the losing case was not touched
        ++got1;
        break;
      case 1:
        RL_ASSERT(slot1($) == -1);
        if (out.ok) {
          RL_ASSERT(slot2($) == 2);
          ++got2;
        } else {
          RL_ASSERT(slot2($) == -1);
          closed2 = true;
        }
        break;
      default:
        RL_ASSERT(kWithTimeout && out.index == kTimeout);
        RL_ASSERT(slot1($) == -1 && slot2($) == -1);
        break;
    }
    // Take what the select did not: thread 1 waits until its value is received.
    if (got1 == 0) {
      rl::var<int> v(-1);
      RL_ASSERT(ch1.recv(self, &v) == ChanStatus::kOk);
      RL_ASSERT(v($) == 1);
      ++got1;
    }
    // Drain ch2 until closed; then it stays closed and empty.
    while (!closed2) {
      rl::var<int> v(-1);
      if (ch2.recv(self, &v) == ChanStatus::kClosed) {
        closed2 = true;
        break;
      }
      RL_ASSERT(v($) == 2);
      ++got2;
    }
    rl::var<int> after(-1);
    RL_ASSERT(ch2.recv(self, &after) == ChanStatus::kClosed);
    RL_ASSERT(got1 == 1);
    RL_ASSERT(got2 <= 1);
    got_two = got2;
  }

  int got_two = 0;

  void after() {
    RL_ASSERT(got_two == (sent_two ? 1 : 0));
    for (Fiber& f : fibers) RL_ASSERT(f.idle());  // no stray wake-up left
  }
};

}  // namespace
}  // namespace model

int main(int argc, char** argv) {
#if BUGGY == 2
  const rl::test_result_e mutant_fails = rl::test_result_access_to_freed_memory;
#else
  const rl::test_result_e mutant_fails = rl::test_result_data_race;
#endif
  model::Runner r(argc, argv, "chan_select", mutant_fails);
  r.check<model::ChanSelect<false>>("select", model::Search::bounded(3));
  r.check<model::ChanSelect<true>>("select with timeout", model::Search::bounded(2));
  r.check<model::ChanSelect<false>>("select", model::Search::random(200000));
  r.check<model::ChanSelect<true>>("select with timeout", model::Search::random(200000));
  return r.finish();
}
