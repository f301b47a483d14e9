// Mutex and CondVar for fibers: waiting parks the fiber, never the thread, and
// works whether the parties run on one core or on different cores.
//
// Threading: thread-safe; lock/wait are fiber-only (they park the caller).
// Like Go's sync.Mutex, a Mutex is not tied to the fiber that locked it. A
// fiber that locks a Mutex it holds already is reported at once on stderr,
// with where it locked it first and again (it then waits, as Go's does, for
// another fiber to unlock it).
//
// Example:
//   fiber::Mutex mu;
//   fiber::CondVar cv;
//   bool ready = false;
//   fiber::go_on(1, [&] { std::lock_guard g(mu); ready = true; cv.notify_one(); });
//   std::unique_lock lk(mu);
//   cv.wait(lk, [&] { return ready; });
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"
#include "fiber/runtime.h"

namespace fiber {

// Mutex hands the lock directly to the longest waiter on unlock (FIFO), so a
// waiter cannot be starved by a fiber that unlocks and relocks in a loop. A
// capability for clang's thread-safety analysis, so that fields it guards can
// say ABSL_GUARDED_BY(mu).
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // lock() takes the lock, parking the caller while another holds it. Fiber-only.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION();
  // try_lock() takes the lock if it is free; never parks.
  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true);
  // unlock() releases the lock, handing it to the first waiter if any.
  // Throws std::logic_error if the mutex is not locked.
  void unlock() ABSL_UNLOCK_FUNCTION();

 private:
  detail::SpinLock lock_;
  bool locked_ ABSL_GUARDED_BY(lock_) = false;
  detail::WaitList waiters_ ABSL_GUARDED_BY(lock_);
  // Who holds it (nullptr off a fiber) and the return address of its lock().
  detail::Fiber* owner_ ABSL_GUARDED_BY(lock_) = nullptr;
  const void* owner_pc_ ABSL_GUARDED_BY(lock_) = nullptr;
};

// CondVar is std::condition_variable for fibers, used with a fiber::Mutex.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // wait() unlocks `lk`, parks until notified, then relocks. May wake
  // spuriously; use the predicate form. Fiber-only: parks the caller.
  void wait(std::unique_lock<Mutex>& lk);
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lk, Pred pred) {
    while (!pred()) wait(lk);
  }

  // wait_until() is wait() with a deadline; returns std::cv_status::timeout if
  // the deadline passed before a notify reached this waiter. Fiber-only.
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<Mutex>& lk,
                            const std::chrono::time_point<Clock, Duration>& deadline) {
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    return wait_until_ns(lk, detail::now_ns() + left.count());
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lk,
                          const std::chrono::duration<Rep, Period>& d) {
    return wait_until(lk, std::chrono::steady_clock::now() + d);
  }

  // wait_until() / wait_for() with a predicate wait until pred() holds or the
  // deadline passes; they return pred(). Fiber-only.
  template <class Clock, class Duration, class Pred>
  bool wait_until(std::unique_lock<Mutex>& lk,
                  const std::chrono::time_point<Clock, Duration>& deadline, Pred pred) {
    while (!pred()) {
      if (wait_until(lk, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<Mutex>& lk, const std::chrono::duration<Rep, Period>& d,
                Pred pred) {
    return wait_until(lk, std::chrono::steady_clock::now() + d, std::move(pred));
  }

  // notify_one() wakes the longest waiter, if any. Thread-safe: any thread.
  void notify_one();
  // notify_all() wakes every waiter. Thread-safe: any thread.
  void notify_all();

 private:
  std::cv_status wait_until_ns(std::unique_lock<Mutex>& lk, int64_t deadline_ns);

  detail::SpinLock lock_;
  detail::WaitList waiters_ ABSL_GUARDED_BY(lock_);
};

}  // namespace fiber
