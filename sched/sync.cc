// Mutex, CondVar, WaitGroup, JoinHandle's state and the WaitList they share.
// All follow the parking protocol of fiber/detail/park.h.
#include <stdexcept>
#include <utility>

#include "fiber/cancellation.h"
#include "fiber/detail/park.h"
#include "fiber/internal/control_block.h"
#include "fiber/join_handle.h"
#include "fiber/mutex.h"
#include "fiber/wait_group.h"
#include "sched/internal/debug.h"
#include "sched/internal/scheduler.h"
#include "sched/testing/random_sched.h"
#include "wake_list.h"

namespace fiber {
namespace detail {
void JoinStateBase::wait() {
  Waiter self;
  self.fiber = current_fiber("fiber::JoinHandle::join");
  lock_.lock();
  if (done_) {
    lock_.unlock();
    return;
  }
  waiter_ = self.fiber;
  lock_.unlock();
  park(WaitReason::kJoin);
}

std::error_code JoinStateBase::wait(const ::fiber::Context& ctx) {
  Fiber* self = current_fiber("fiber::JoinHandle::wait");
  bool ended = false;  // guarded by lock_
  // The hook may run at once (ctx already ended), on this thread: it then finds
  // no waiter and only sets `ended`, which is checked before parking.
  CancelHook hook(ctx, [&] {
    lock_.lock();
    ended = true;
    Fiber* w = std::exchange(waiter_, nullptr);
    lock_.unlock();
    if (w != nullptr) ready(w);
  });
  lock_.lock();
  if (!done_ && !ended) {
    waiter_ = self;
    lock_.unlock();
    park(WaitReason::kJoin);  // woken once: by complete() or by the hook, whoever took waiter_
    lock_.lock();
  }
  bool done = done_;
  lock_.unlock();
  hook.stop();
  return done ? std::error_code() : ctx.err();
}

void JoinStateBase::complete() {
  lock_.lock();
  done_ = true;
  Fiber* waiter = std::exchange(waiter_, nullptr);
  lock_.unlock();
  if (waiter != nullptr) ready(waiter);
}

}  // namespace detail

// --- Mutex -----------------------------------------------------------------

namespace {

// A fiber waiting for a Mutex, and where it called lock(): unlock() hands
// both over.
struct LockWaiter : detail::Waiter {
  const void* pc = nullptr;
};

}  // namespace

void Mutex::lock() {
  detail::sync_point();
  fiber::maybe_yield();  // a time slice that ran out ends here
  detail::Fiber* const me = detail::t_current_fiber;
  const void* const pc = __builtin_return_address(0);
  lock_.lock();
  if (!locked_) {
    locked_ = true;
    owner_ = me;
    owner_pc_ = pc;
    lock_.unlock();
    return;
  }
  lock_.unlock();
  LockWaiter self;
  self.fiber = detail::current_fiber("fiber::Mutex::lock");
  self.pc = pc;
  lock_.lock();
  if (!locked_) {  // released while we looked up who we are
    locked_ = true;
    owner_ = me;
    owner_pc_ = pc;
    lock_.unlock();
    return;
  }
  const void* relocked_from = owner_ == me ? owner_pc_ : nullptr;
  waiters_.push_back(&self);
  lock_.unlock();
  if (relocked_from != nullptr) [[unlikely]]
    detail::report_relock(relocked_from, pc);
  detail::park(detail::WaitReason::kMutex);  // unlock() handed the lock to us before waking us
}

bool Mutex::try_lock() {
  lock_.lock();
  bool acquired = !locked_;
  if (acquired) {
    owner_ = detail::t_current_fiber;
    owner_pc_ = __builtin_return_address(0);
  }
  locked_ = true;
  lock_.unlock();
  return acquired;
}

void Mutex::unlock() {
  detail::sync_point();
  lock_.lock();
  if (!locked_) {
    lock_.unlock();
    throw std::logic_error("fiber::Mutex::unlock: the mutex is not locked");
  }
  auto* next = static_cast<LockWaiter*>(waiters_.pop_front());
  if (next == nullptr) {
    locked_ = false;
    owner_ = nullptr;
    lock_.unlock();
    return;
  }
  detail::Fiber* f = next->fiber;  // `next` lives on f's stack: read it before waking f
  owner_ = f;
  owner_pc_ = next->pc;
  lock_.unlock();
  detail::ready(f);
}

// --- CondVar ---------------------------------------------------------------

void CondVar::wait(std::unique_lock<Mutex>& lk) {
  detail::sync_point();
  detail::Waiter self;
  self.fiber = detail::current_fiber("fiber::CondVar::wait");
  lock_.lock();
  waiters_.push_back(&self);  // while still holding lk: a notify cannot slip between
  lock_.unlock();
  lk.unlock();
  detail::park(detail::WaitReason::kCondVar);
  lk.lock();
}

std::cv_status CondVar::wait_until_ns(std::unique_lock<Mutex>& lk, int64_t deadline_ns) {
  detail::sync_point();
  // The timer and a notify race to take the waiter off the list under lock_;
  // whichever does wakes the fiber, the other finds it gone and does nothing.
  struct WaitTimer : detail::Timer {
    CondVar* cv;
    detail::Waiter waiter;
    bool timed_out = false;
  } timer;
  timer.waiter.fiber = detail::current_fiber("fiber::CondVar::wait_until");
  timer.cv = this;
  timer.deadline_ns = deadline_ns;
  timer.fire = [](detail::Timer* t) {
    auto* wt = static_cast<WaitTimer*>(t);
    wt->cv->lock_.lock();
    bool mine = wt->waiter.linked;
    wt->cv->waiters_.remove(&wt->waiter);
    wt->cv->lock_.unlock();
    if (mine) {
      wt->timed_out = true;
      detail::ready(wt->waiter.fiber);
    }
  };
  lock_.lock();
  waiters_.push_back(&timer.waiter);
  lock_.unlock();
  detail::t_scheduler->add_timer(&timer);
  lk.unlock();
  detail::park(detail::WaitReason::kCondVar, deadline_ns);
  detail::t_scheduler->cancel_timer(&timer);  // no-op if it fired
  lk.lock();
  return timer.timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
}

void CondVar::notify_one() {
  detail::sync_point();
  lock_.lock();
  detail::Waiter* w = waiters_.pop_front();
  detail::Fiber* f = w != nullptr ? w->fiber : nullptr;
  lock_.unlock();
  if (f != nullptr) detail::ready(f);
}

void CondVar::notify_all() {
  detail::sync_point();
  detail::WakeList chain;
  lock_.lock();
  while (detail::Waiter* w = waiters_.pop_front()) chain.add(w->fiber);
  lock_.unlock();
  chain.wake_all();
}

// --- WaitGroup -------------------------------------------------------------

void WaitGroup::add(int64_t delta) {
  detail::sync_point();
  detail::WakeList chain;
  lock_.lock();
  if (count_ + delta < 0) {
    lock_.unlock();
    throw std::logic_error("fiber::WaitGroup: negative counter (more done() than add())");
  }
  count_ += delta;
  if (count_ == 0) {
    while (detail::Waiter* w = waiters_.pop_front()) chain.add(w->fiber);
  }
  lock_.unlock();
  chain.wake_all();
}

void WaitGroup::wait() {
  detail::sync_point();
  detail::Waiter self;
  self.fiber = detail::current_fiber("fiber::WaitGroup::wait");
  lock_.lock();
  if (count_ == 0) {
    lock_.unlock();
    return;
  }
  waiters_.push_back(&self);
  lock_.unlock();
  detail::park(detail::WaitReason::kWaitGroup);
}

}  // namespace fiber
