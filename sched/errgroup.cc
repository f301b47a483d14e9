// ErrGroup: a WaitGroup, a first-error slot and an optional Semaphore for the
// limit. A fiber records its error and cancels the group's context before it
// releases its slot and counts itself out, so wait() sees the error.
#include "fiber/errgroup.h"

#include <stdexcept>

namespace fiber {

ErrGroup::ErrGroup(const Context& parent) {
  WithCancelCause c = with_cancel_cause(parent);
  ctx_ = c.ctx;
  cancel_ = c.cancel;
}

void ErrGroup::set_limit(int64_t n) {
  if (active_.load(std::memory_order_relaxed) != 0) {
    throw std::logic_error("fiber::ErrGroup::set_limit: fibers of the group are running");
  }
  sem_ = n < 0 ? nullptr : std::make_unique<Semaphore>(n);
}

void ErrGroup::finish(std::error_code e) {
  if (e) {
    lock_.lock();
    const bool first = !err_;
    if (first) err_ = e;
    lock_.unlock();
    if (first) cancel_(e);
  }
  active_.fetch_sub(1, std::memory_order_relaxed);
  if (sem_ != nullptr) sem_->release(1);
  wg_.done();  // the last touch of the group: wait() may return and free it
}

std::error_code ErrGroup::wait() {
  wg_.wait();
  cancel_({});
  lock_.lock();
  std::error_code e = err_;
  lock_.unlock();
  return e;
}

}  // namespace fiber
