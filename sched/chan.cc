// Channels and select, after Go's runtime/chan.go and runtime/select.go.
//
// A channel is a spin lock, a ring buffer and two FIFO queues of parked
// operations (ChanWaiter, Go's sudog), which live on the parked fibers' stacks.
// The party that finds a waiter on the other side moves the value directly into
// or out of that waiter's stack slot, so a hand-off copies the value once.
//
// select parks on several channels at once: it locks them all in address order
// (so two selects never deadlock), takes the first ready case in a random order,
// or else queues one waiter per case, all pointing at one SelectState, unlocks
// and parks. A peer that pops one of those waiters claims the whole select with a
// CAS on SelectState::claimed before it touches the waiter's value; a peer that
// loses the CAS drops the waiter and looks at the next one. The select's own
// timer claims the same way. Only the claimer calls ready(), so a select is
// woken exactly once, and its waiters on the other channels are unlinked by the
// select itself (relocking them all) before its stack frame goes away.
#include "fiber/chan.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>

#include "fiber/detail/park.h"
#include "fiber/internal/control_block.h"
#include "fiber/runtime.h"
#include "fiber/select.h"
#include "sched/internal/scheduler.h"
#include "sched/testing/random_sched.h"
#ifdef FIBER_TEST_HOOKS
#include "sched/testing/test_hooks.h"
#endif
#include "wake_list.h"

namespace fiber::detail {
namespace {

// rand_init() seeds fast_rand() on each thread.
uint64_t rand_init(const void* where) {
#ifdef FIBER_TEST_HOOKS
  if (test::rand_seed() != 0) return test::rand_seed();  // deterministic runs (test_hooks.h)
#endif
  return static_cast<uint64_t>(now_ns()) ^ reinterpret_cast<uintptr_t>(where) ^
         0x9E3779B97F4A7C15ull;
}

// fast_rand() is a per-thread wyrand generator: select's order needs to be
// uniform, not unpredictable.
uint64_t fast_rand() {
  thread_local uint64_t state = rand_init(&state);
  state += 0xA0761D6478BD642Full;
  __uint128_t m = static_cast<__uint128_t>(state) * (state ^ 0xE7037ED1A0B428DBull);
  return static_cast<uint64_t>(m >> 64) ^ static_cast<uint64_t>(m);
}

// rand_below() is uniform in [0, n) (Lemire's multiply-shift; the bias is below
// 2^-32 for the small n of a select).
uint32_t rand_below(uint32_t n) {
#if FIBER_RANDOM_SCHEDULING
  if (t_sched_random != nullptr) return t_sched_random->below(n);  // replayable from the seed
#endif
  return static_cast<uint32_t>((static_cast<uint64_t>(static_cast<uint32_t>(fast_rand())) * n) >>
                               32);
}

}  // namespace

// --- WaiterQueue -------------------------------------------------------------

ChanWaiter* WaiterQueue::dequeue_live() {
  while (ChanWaiter* w = front()) {
    remove(w);
    if (w->sel->solo) return w;  // popped under the lock: nobody else can claim it
    bool expected = false;
    // acq_rel: the winner's writes to the waiter (value, ok, fired) happen after
    // it owns the select; a loser's select fired elsewhere and will not look here.
    if (w->sel->claimed.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      return w;
    }
  }
  return nullptr;
}

// --- ChanCore ----------------------------------------------------------------

ChanCore* ChanCore::create(int64_t capacity, const ElemOps* ops) {
  if (capacity < 0) return nullptr;
  const size_t cap = static_cast<size_t>(capacity);
  const size_t elem = std::max<size_t>(ops->size, 1);
  if (cap > kMaxBufferBytes / elem) return nullptr;
  unsigned char* buf = nullptr;
  if (cap > 0) {
    buf = static_cast<unsigned char*>(
        ::operator new(cap * ops->size, std::align_val_t(std::max(ops->align, alignof(void*)))));
  }
  try {
    return new ChanCore(cap, ops, buf);
  } catch (...) {  // std::bad_alloc: the buffer must not leak
    if (buf != nullptr) {
      ::operator delete(buf, std::align_val_t(std::max(ops->align, alignof(void*))));
    }
    throw;
  }
}

void ChanCore::destroy() {
  for (size_t i = 0; i < count_; ++i) ops_->destroy(slot((head_ + i) % cap_));
  if (buf_ != nullptr) {
    ::operator delete(buf_, std::align_val_t(std::max(ops_->align, alignof(void*))));
  }
  delete this;
}

ChanStatus ChanCore::send_locked(void* src, Fiber** wake) {
  if (closed_) return ChanStatus::kClosed;
  if (ChanWaiter* w = recvq_.dequeue_live()) {
    ops_->move_construct(w->elem, src);  // straight onto the receiver's stack
    w->ok = true;
    w->sel->fired = w;
    *wake = w->sel->fiber;
    return ChanStatus::kOk;
  }
  if (count_ < cap_) {
    ops_->move_construct(slot((head_ + count_) % cap_), src);
    ++count_;
    return ChanStatus::kOk;
  }
  return ChanStatus::kWouldBlock;
}

ChanStatus ChanCore::recv_locked(void* dst, Fiber** wake) {
  if (ChanWaiter* w = sendq_.dequeue_live()) {
    if (cap_ == 0) {
      ops_->move_construct(dst, w->elem);
    } else {
      // A sender waits only while the buffer is full: take the head and put the
      // sender's value at the tail (the same slot), keeping FIFO order.
      void* head = slot(head_);
      ops_->move_construct(dst, head);
      ops_->destroy(head);
      ops_->move_construct(head, w->elem);
      head_ = (head_ + 1) % cap_;
    }
    w->ok = true;
    w->sel->fired = w;
    *wake = w->sel->fiber;
    return ChanStatus::kOk;
  }
  if (count_ > 0) {
    void* head = slot(head_);
    ops_->move_construct(dst, head);
    ops_->destroy(head);
    head_ = (head_ + 1) % cap_;
    --count_;
    return ChanStatus::kOk;
  }
  return closed_ ? ChanStatus::kClosed : ChanStatus::kWouldBlock;
}

ChanStatus ChanCore::try_send(void* src) {
  Fiber* wake = nullptr;
  lock_.lock();
  ChanStatus s = send_locked(src, &wake);
  lock_.unlock();
  if (wake != nullptr) ready(wake);
  return s;
}

ChanStatus ChanCore::try_recv(void* dst) {
  Fiber* wake = nullptr;
  lock_.lock();
  ChanStatus s = recv_locked(dst, &wake);
  lock_.unlock();
  if (wake != nullptr) ready(wake);
  return s;
}

ChanStatus ChanCore::send(void* src) {
  sync_point();
  fiber::maybe_yield();  // a time slice that ran out ends here
  Fiber* self = current_fiber("fiber::Chan::send");
  Fiber* wake = nullptr;
  lock_.lock();
  ChanStatus s = send_locked(src, &wake);
  if (s != ChanStatus::kWouldBlock) {
    lock_.unlock();
    if (wake != nullptr) ready(wake);
    return s;
  }
  SelectState sel;
  sel.fiber = self;
  sel.solo = true;
  ChanWaiter w;
  w.sel = &sel;
  w.elem = src;
  sendq_.push_back(&w);
  lock_.unlock();
  t_scheduler->park(WaitReason::kChanSend);  // current_fiber() was checked on entry
  // Only a claimer wakes us, and it unlinked `w` under the lock: nothing to undo.
  return w.ok ? ChanStatus::kOk : ChanStatus::kClosed;
}

ChanStatus ChanCore::recv(void* dst) {
  sync_point();
  fiber::maybe_yield();
  Fiber* self = current_fiber("fiber::Chan::recv");
  Fiber* wake = nullptr;
  lock_.lock();
  ChanStatus s = recv_locked(dst, &wake);
  if (s != ChanStatus::kWouldBlock) {
    lock_.unlock();
    if (wake != nullptr) ready(wake);
    return s;
  }
  SelectState sel;
  sel.fiber = self;
  sel.solo = true;
  ChanWaiter w;
  w.sel = &sel;
  w.elem = dst;
  recvq_.push_back(&w);
  lock_.unlock();
  t_scheduler->park(WaitReason::kChanRecv);  // current_fiber() was checked on entry
  return w.ok ? ChanStatus::kOk : ChanStatus::kClosed;
}

bool ChanCore::close() {
  WakeList wake;
  lock_.lock();
  if (closed_) {
    lock_.unlock();
    return false;
  }
  closed_ = true;
  for (WaiterQueue* q : {&recvq_, &sendq_}) {
    while (ChanWaiter* w = q->dequeue_live()) {
      w->ok = false;
      w->sel->fired = w;
      wake.add(w->sel->fiber);
    }
  }
  lock_.unlock();
  wake.wake_all();
  return true;
}

size_t ChanCore::len() {
  lock_.lock();
  size_t n = count_;
  lock_.unlock();
  return n;
}

// --- select ------------------------------------------------------------------

namespace {

// Locks every distinct channel of the select, in address order.
void lock_all(const SelectCase* cases, const uint16_t* order, int n) {
  ChanCore* prev = nullptr;
  for (int i = 0; i < n; ++i) {
    ChanCore* c = cases[order[i]].core;
    if (c != prev) c->lock_.lock();
    prev = c;
  }
}

void unlock_all(const SelectCase* cases, const uint16_t* order, int n) {
  ChanCore* prev = nullptr;
  for (int i = 0; i < n; ++i) {
    ChanCore* c = cases[order[i]].core;
    if (c != prev) c->lock_.unlock();
    prev = c;
  }
}

struct SelectTimer : Timer {
  SelectState* sel;
};

}  // namespace

SelectOutcome select_impl(SelectCase* cases, ChanWaiter* waiters, uint16_t* scratch, int n,
                          int64_t deadline_ns) {
  sync_point();
  fiber::maybe_yield();
  uint16_t* poll = scratch;           // channel cases in random order
  uint16_t* lockorder = scratch + n;  // the same, by channel address
  int np = 0;
  int dflt = -1;
  int timeout = -1;
  for (int i = 0; i < n; ++i) {
    switch (cases[i].kind) {
      case SelectKind::kRecv:
      case SelectKind::kSend:
        if (cases[i].core != nullptr) poll[np++] = static_cast<uint16_t>(i);
        break;
      case SelectKind::kDefault:
        dflt = i;
        break;
      case SelectKind::kTimeout:
        timeout = i;
        break;
    }
  }
  if (np == 0) {
    if (dflt >= 0) return {dflt, false};
    if (timeout < 0) return {kSelectNothing, false};
    sleep_until_ns(deadline_ns);
    return {timeout, false};
  }
  for (int i = 1; i < np; ++i) {
    int j = static_cast<int>(rand_below(static_cast<uint32_t>(i + 1)));
    std::swap(poll[i], poll[j]);
  }
  std::memcpy(lockorder, poll, sizeof(uint16_t) * static_cast<size_t>(np));
  std::sort(lockorder, lockorder + np, [cases](uint16_t a, uint16_t b) {
    return std::less<ChanCore*>()(cases[a].core, cases[b].core);
  });
  Fiber* self = dflt >= 0 ? nullptr : current_fiber("fiber::select");

  // Pass 1: is any case ready now?
  lock_all(cases, lockorder, np);
  for (int k = 0; k < np; ++k) {
    SelectCase& c = cases[poll[k]];
    Fiber* wake = nullptr;
    ChanStatus s = c.kind == SelectKind::kSend ? c.core->send_locked(c.elem, &wake)
                                               : c.core->recv_locked(c.elem, &wake);
    if (s != ChanStatus::kWouldBlock) {
      unlock_all(cases, lockorder, np);
      if (wake != nullptr) ready(wake);
      return {poll[k], s == ChanStatus::kOk};
    }
  }
  if (dflt >= 0) {
    unlock_all(cases, lockorder, np);
    return {dflt, false};
  }
  if (timeout >= 0 && deadline_ns <= now_ns()) {
    unlock_all(cases, lockorder, np);
    return {timeout, false};
  }

  // Pass 2: queue a waiter on every channel, then park.
  SelectState sel;
  sel.fiber = self;
  for (int k = 0; k < np; ++k) {
    int i = lockorder[k];
    ChanWaiter& w = waiters[i];
    w.sel = &sel;
    w.elem = cases[i].elem;
    w.index = i;
    if (cases[i].kind == SelectKind::kSend) {
      cases[i].core->sendq_.push_back(&w);
    } else {
      cases[i].core->recvq_.push_back(&w);
    }
  }
  unlock_all(cases, lockorder, np);
  SelectTimer timer;
  if (timeout >= 0) {
    // Core-local: the timer fires on this scheduler, after this fiber parked.
    timer.deadline_ns = deadline_ns;
    timer.sel = &sel;
    timer.fire = [](Timer* t) {
      SelectState* s = static_cast<SelectTimer*>(t)->sel;
      bool expected = false;
      if (s->claimed.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
        s->fired = nullptr;
        t_scheduler->ready(s->fiber);
      }
    };
    t_scheduler->add_timer(&timer);
  }
  // current_fiber() was checked on entry
  t_scheduler->park(WaitReason::kSelect, timeout >= 0 ? deadline_ns : 0);
  if (timeout >= 0) t_scheduler->cancel_timer(&timer);  // no-op if it fired
  ChanWaiter* fired = sel.fired;

  // Pass 3: unlink the waiters that did not fire. The claimer unlinked its own;
  // with a single waiter and no timer there is nothing left to do.
  if (np > 1 || fired == nullptr) {
    lock_all(cases, lockorder, np);
    for (int k = 0; k < np; ++k) {
      int i = lockorder[k];
      if (&waiters[i] == fired) continue;
      if (cases[i].kind == SelectKind::kSend) {
        cases[i].core->sendq_.remove(&waiters[i]);
      } else {
        cases[i].core->recvq_.remove(&waiters[i]);
      }
    }
    unlock_all(cases, lockorder, np);
  }
  if (fired == nullptr) return {timeout, false};
  return {fired->index, fired->ok};
}

}  // namespace fiber::detail
