// WaitGroup waits for a collection of fibers to finish, as Go's sync.WaitGroup:
// add(n) before starting work, done() when each piece ends, wait() parks until
// the count is zero.
//
// Threading: thread-safe; wait() is fiber-only. add/done may run on any core.
//
// Example:
//   fiber::WaitGroup wg;
//   wg.add(2);
//   fiber::go([&] { work(); wg.done(); });
//   fiber::go_on(1, [&] { work(); wg.done(); });
//   wg.wait();
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"

namespace fiber {

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // add() adds `delta` (which may be negative) to the counter; when it reaches
  // zero every waiter wakes. Throws std::logic_error if the counter would go
  // negative (it is left unchanged).
  void add(int64_t delta);
  // done() is add(-1).
  void done() { add(-1); }
  // wait() parks the caller until the counter is zero. Fiber-only.
  void wait();

 private:
  detail::SpinLock lock_;
  int64_t count_ ABSL_GUARDED_BY(lock_) = 0;
  detail::WaitList waiters_ ABSL_GUARDED_BY(lock_);
};

}  // namespace fiber
