// Semaphore: a FIFO of waiters, each asking for n units. release() and a waiter
// leaving the head grant units from the head while they fit and stop at the
// first that does not, which is what keeps big requests from starving. A
// context's CancelHook takes a waiter off the queue (if release() has not granted
// it first) and wakes it; a waiter granted its units after its context ended
// gives them back.
#include "fiber/semaphore.h"

#include <stdexcept>

#include "wake_list.h"

namespace fiber {

void Semaphore::grant_locked(detail::WakeList& wake) {
  while (Waiter* w = waiters_.front()) {
    if (size_ - cur_ < w->n) break;
    cur_ += w->n;
    waiters_.pop_front();
    w->acquired = true;
    wake.add(w->fiber);  // w lives on that fiber's stack: not touched after waking
  }
}

bool Semaphore::try_acquire(int64_t n) {
  lock_.lock();
  const bool ok = size_ - cur_ >= n && waiters_.empty();
  if (ok) cur_ += n;
  lock_.unlock();
  return ok;
}

std::error_code Semaphore::acquire(const Context& ctx, int64_t n) {
  if (std::error_code e = ctx.err()) return e;
  lock_.lock();
  if (size_ - cur_ >= n && waiters_.empty()) {
    cur_ += n;
    lock_.unlock();
    return {};
  }
  lock_.unlock();
  Waiter self;
  self.fiber = detail::current_fiber("fiber::Semaphore::acquire");
  self.n = n;
  bool ended = false;  // guarded by lock_
  // The hook may run at once, on this thread, if ctx has ended: it then only sets
  // `ended`, checked before queueing.
  CancelHook hook(ctx, [&] {
    detail::WakeList wake;
    lock_.lock();
    ended = true;
    if (self.linked) {
      const bool head = waiters_.front() == &self;
      waiters_.remove(&self);
      if (head) grant_locked(wake);  // we were holding up the waiters behind us
      wake.add(self.fiber);
    }
    lock_.unlock();
    wake.wake_all();
  });
  lock_.lock();
  if (!ended) {
    if (size_ - cur_ >= n && waiters_.empty()) {
      cur_ += n;
      self.acquired = true;
    } else {
      waiters_.push_back(&self);
      lock_.unlock();
      detail::park();  // woken once: granted by release(), or taken off by the hook
      lock_.lock();
    }
  }
  const bool acquired = self.acquired;
  if (acquired && ended) {
    // Granted, but the context ended before this fiber ran again: as Go's
    // semaphore does, give the units back and report the context's end, so
    // that a caller never holds units after acquire() said the context ended.
    detail::WakeList wake;
    cur_ -= n;
    grant_locked(wake);
    lock_.unlock();
    hook.stop();
    wake.wake_all();
    return ctx.err();
  }
  lock_.unlock();
  hook.stop();
  if (!acquired) return ctx.err();
  return {};
}

void Semaphore::release(int64_t n) {
  detail::WakeList wake;
  lock_.lock();
  if (n > cur_) {
    lock_.unlock();
    throw std::logic_error("fiber::Semaphore::release: released more than held");
  }
  cur_ -= n;
  grant_locked(wake);
  lock_.unlock();
  wake.wake_all();
}

}  // namespace fiber
