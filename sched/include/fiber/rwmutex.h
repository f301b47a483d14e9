// RWMutex is Go's sync.RWMutex: any number of readers or one writer. A writer
// that waits blocks readers that arrive after it, so a stream of readers cannot
// starve it; when a writer unlocks, the readers that queued meanwhile all get in
// before the next writer.
//
// Threading: thread-safe; lock() and rlock() are fiber-only (they park the
// caller). Like Go's, a lock is not tied to the fiber that took it. A reader must
// not rlock() again while holding a read lock if a writer may be waiting (as in
// Go, that deadlocks).
//
// Example:
//   fiber::RWMutex mu;
//   std::map<std::string, std::string> table ABSL_GUARDED_BY(mu);
//   { std::shared_lock r(mu); auto it = table.find(k); ... }   // readers
//   { std::lock_guard w(mu); table[k] = v; }                    // a writer
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"

namespace fiber {

class ABSL_LOCKABLE RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  // lock() takes the write lock, parking while readers or a writer hold it.
  // Fiber-only: parks the caller.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION();
  // try_lock() takes the write lock if nobody holds or waits for it; never parks.
  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true);
  // unlock() releases the write lock: the readers that waited get in, else the
  // next writer. Throws std::logic_error if it is not write-locked.
  void unlock() ABSL_UNLOCK_FUNCTION();

  // rlock() takes a read lock, parking while a writer holds or waits for the
  // lock. Fiber-only: parks the caller.
  void rlock() ABSL_SHARED_LOCK_FUNCTION();
  // try_rlock() takes a read lock if no writer holds or waits; never parks.
  bool try_rlock() ABSL_SHARED_TRYLOCK_FUNCTION(true);
  // runlock() releases a read lock; the last reader out lets a waiting writer in.
  // Throws std::logic_error if no read lock is held.
  void runlock() ABSL_UNLOCK_FUNCTION();

  // The names std::shared_lock uses.
  void lock_shared() ABSL_SHARED_LOCK_FUNCTION() { rlock(); }
  bool try_lock_shared() ABSL_SHARED_TRYLOCK_FUNCTION(true) { return try_rlock(); }
  void unlock_shared() ABSL_UNLOCK_FUNCTION() { runlock(); }

 private:
  detail::SpinLock lock_;
  int64_t readers_ ABSL_GUARDED_BY(lock_) = 0;  // read locks held
  bool writer_ ABSL_GUARDED_BY(lock_) = false;  // the write lock is held
  detail::WaitList writers_ ABSL_GUARDED_BY(lock_);
  detail::WaitList readers_waiting_ ABSL_GUARDED_BY(lock_);
};

}  // namespace fiber
