// Once: the first caller runs the initializer with lock_ released; later callers
// queue on waiters_ and park until finish() wakes them all.
#include "fiber/once.h"

#include <stdexcept>

#include "fiber/runtime.h"
#include "wake_list.h"

namespace fiber {

void Once::call_slow(absl::FunctionRef<void()> f) {
  const uint64_t me = current_id();
  lock_.lock();
  if (done_.load(std::memory_order_relaxed)) {
    lock_.unlock();
    return;
  }
  if (running_) {
    if (runner_ == me) {
      lock_.unlock();
      throw std::logic_error("fiber::Once::call: called again from inside its own initializer");
    }
    lock_.unlock();
    detail::Waiter self;
    self.fiber = detail::current_fiber("fiber::Once::call");
    lock_.lock();
    if (done_.load(std::memory_order_relaxed)) {  // finished while we looked ourselves up
      lock_.unlock();
      return;
    }
    waiters_.push_back(&self);
    lock_.unlock();
    detail::park();  // finish() woke us: done_ is set
    return;
  }
  running_ = true;
  runner_ = me;
  lock_.unlock();
  struct Finish {
    Once* once;
    ~Finish() { once->finish(); }
  } finish{this};
  f();
}

void Once::finish() {
  detail::WakeList wake;
  lock_.lock();
  running_ = false;
  done_.store(true, std::memory_order_release);
  while (detail::Waiter* w = waiters_.pop_front()) wake.add(w->fiber);
  lock_.unlock();
  wake.wake_all();
}

}  // namespace fiber
