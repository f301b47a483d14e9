// ThreadMutex and ThreadLock are std::mutex and std::unique_lock as clang's
// thread-safety analysis sees them. libstdc++'s carry no capability
// annotations, so ABSL_GUARDED_BY on a std::mutex is refused and never
// checked; these wrappers add the annotations and nothing else. For the
// runtime's locks that block a thread (the blocking pool, the test-only seed of
// randomised scheduling); what fibers wait on uses SpinLock (fiber/detail/park.h).
//
// Example:
//   ThreadMutex mu;
//   std::condition_variable cv;
//   int n ABSL_GUARDED_BY(mu) = 0;
//   ThreadLock lk(mu);
//   cv.wait(lk.native(), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return n > 0; });
#pragma once

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace fiber::detail {

class ABSL_LOCKABLE ThreadMutex {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // native() is the std::mutex underneath, for a lock held in a
  // std::unique_lock<std::mutex> past the function that takes it (which the
  // analysis could not follow anyway).
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// ThreadLock holds a ThreadMutex from construction to destruction, except
// between unlock() and lock(); native() is the std::unique_lock underneath, for
// std::condition_variable (whose wait() the analysis sees as holding the lock
// throughout, which is what the caller's code after the wait relies on).
class ABSL_SCOPED_LOCKABLE ThreadLock {
 public:
  explicit ThreadLock(ThreadMutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : lk_(mu.native()) {}
  ~ThreadLock() ABSL_UNLOCK_FUNCTION() {}
  ThreadLock(const ThreadLock&) = delete;
  ThreadLock& operator=(const ThreadLock&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { lk_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { lk_.unlock(); }
  std::unique_lock<std::mutex>& native() { return lk_; }

 private:
  std::unique_lock<std::mutex> lk_;
};

}  // namespace fiber::detail
