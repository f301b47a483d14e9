// RWMutex: a writer that cannot get in queues on writers_, and from then on
// readers queue on readers_waiting_ too. The lock is handed over, never raced
// for: unlock() admits every queued reader (or else the first writer) before it
// wakes them, and the last runlock() admits the first writer.
#include "fiber/rwmutex.h"

#include <stdexcept>

#include "fiber/runtime.h"
#include "wake_list.h"

namespace fiber {

void RWMutex::lock() {
  fiber::maybe_yield();
  lock_.lock();
  if (!writer_ && readers_ == 0 && writers_.empty()) {
    writer_ = true;
    lock_.unlock();
    return;
  }
  lock_.unlock();
  detail::Waiter self;
  self.fiber = detail::current_fiber("fiber::RWMutex::lock");
  lock_.lock();
  if (!writer_ && readers_ == 0 && writers_.empty()) {
    writer_ = true;
    lock_.unlock();
    return;
  }
  writers_.push_back(&self);
  lock_.unlock();
  detail::park();  // handed the write lock
}

bool RWMutex::try_lock() {
  lock_.lock();
  const bool ok = !writer_ && readers_ == 0 && writers_.empty();
  if (ok) writer_ = true;
  lock_.unlock();
  return ok;
}

void RWMutex::unlock() {
  detail::WakeList wake;
  lock_.lock();
  if (!writer_) {
    lock_.unlock();
    throw std::logic_error("fiber::RWMutex::unlock: not write-locked");
  }
  writer_ = false;
  if (!readers_waiting_.empty()) {
    while (detail::Waiter* w = readers_waiting_.pop_front()) {
      ++readers_;
      wake.add(w->fiber);
    }
  } else if (detail::Waiter* w = writers_.pop_front()) {
    writer_ = true;
    wake.add(w->fiber);
  }
  lock_.unlock();
  wake.wake_all();
}

void RWMutex::rlock() {
  fiber::maybe_yield();
  lock_.lock();
  if (!writer_ && writers_.empty()) {
    ++readers_;
    lock_.unlock();
    return;
  }
  lock_.unlock();
  detail::Waiter self;
  self.fiber = detail::current_fiber("fiber::RWMutex::rlock");
  lock_.lock();
  if (!writer_ && writers_.empty()) {
    ++readers_;
    lock_.unlock();
    return;
  }
  readers_waiting_.push_back(&self);
  lock_.unlock();
  detail::park();  // admitted by unlock()
}

bool RWMutex::try_rlock() {
  lock_.lock();
  const bool ok = !writer_ && writers_.empty();
  if (ok) ++readers_;
  lock_.unlock();
  return ok;
}

void RWMutex::runlock() {
  detail::Fiber* next = nullptr;
  lock_.lock();
  if (readers_ == 0) {
    lock_.unlock();
    throw std::logic_error("fiber::RWMutex::runlock: not read-locked");
  }
  if (--readers_ == 0) {
    if (detail::Waiter* w = writers_.pop_front()) {
      writer_ = true;
      next = w->fiber;  // `w` lives on that fiber's stack: read it before waking
    }
  }
  lock_.unlock();
  if (next != nullptr) detail::ready(next);
}

}  // namespace fiber
