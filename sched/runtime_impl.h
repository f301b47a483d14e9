// Runtime is one fiber::run(): its schedulers, their threads and the blocking
// pool. It lives on the stack of the thread that called run().
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "fiber/options.h"
#include "sched/internal/scheduler.h"

namespace fiber::detail {

// BlockingTask is one spawn_blocking() call; it lives on the parked caller's stack.
struct BlockingTask {
  absl::FunctionRef<void()> work;
  Fiber* fiber;
};

// BlockingPool runs blocking calls on at most `max_threads` threads, started on
// demand and kept until the runtime stops. Thread-safe.
//
// Shutdown, in two steps around the schedulers' own (Runtime::shutdown()):
//   stop():    no new call starts; queued calls are dropped (their fibers stay
//              parked and are abandoned with the others); waits at most the
//              grace (Options::blocking_shutdown_grace) for running calls.
//   release(): once the scheduler threads are joined. A call still running is
//              left to its thread, which is detached, together with its fiber:
//              the call's closure and result live on that fiber's stack, so the
//              scheduler forgets the fiber instead of unmapping its stack, and
//              the thread unmaps it once the call returns. The other threads
//              are joined. Afterwards nothing of the pool refers to the runtime.
// The state the threads share lives in a reference-counted State, so a
// detached thread never touches the pool, the runtime or a scheduler again:
// it finds State::runtime null and fails any runtime call with an error.
class BlockingPool {
 public:
  BlockingPool(Runtime* runtime, unsigned max_threads, std::chrono::nanoseconds grace);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // submit() queues `task`; returns false once the pool is stopping.
  bool submit(BlockingTask* task);
  // stop() and release(): see above. Both idempotent; release() stops first.
  void stop();
  void release();
  // threads() is how many threads the pool has started.
  size_t threads();
  // idle() is true when no call is queued or running; it then appends the
  // pool's threads to `tids` (for the deadlock check).
  bool idle(std::vector<pid_t>* tids);

  // State is what the pool and its threads share.
  struct State;
  // RuntimeLock gives a spawn_blocking thread its runtime for the duration of
  // one call (go_on() and the like): it holds the pool's lock, which release()
  // needs before the runtime may go. runtime() is null on other threads, or
  // after release().
  class RuntimeLock {
   public:
    RuntimeLock();
    Runtime* runtime() const { return runtime_; }
    // driver() is the runtime's DriverInfo, copied into the pool's state: it
    // lives as long as the calling pool thread. Only when runtime() is not null.
    const DriverInfo& driver() const;

   private:
    std::unique_lock<std::mutex> lock_;
    State* state_ = nullptr;
    Runtime* runtime_ = nullptr;
  };
  // on_pool_thread() is true on a thread of some runtime's pool, even one that
  // outlived its runtime.
  static bool on_pool_thread();

 private:
  struct Worker;
  static void worker_main(std::shared_ptr<State> state, Worker* self);

  const unsigned max_threads_;
  const std::chrono::nanoseconds grace_;
  std::shared_ptr<State> state_;
};

struct Scheduler::Startup {
  explicit Startup(unsigned n) : expected(n) {}
  // arrive_and_wait() reports a thread's start-up (error or not) and returns
  // whether the runtime goes ahead.
  bool arrive_and_wait(std::exception_ptr error);
  // decide() waits for every thread and returns the first error, if any.
  std::exception_ptr decide();
  // abandon() decides against going ahead without waiting for the threads
  // (not all of them could be started): those that did end at once.
  void abandon(std::exception_ptr error);

  std::mutex mu;
  std::condition_variable cv;
  unsigned expected;
  unsigned arrived = 0;      // guarded by mu
  bool decided = false;      // guarded by mu
  std::exception_ptr error;  // guarded by mu
};

class Runtime {
 public:
  Runtime(const Options& options, unsigned schedulers, DriverInfo driver,
          const PollerFactory& factory);
  ~Runtime();

  // start() starts one thread per scheduler; throws (after stopping them) if a
  // scheduler could not start its driver.
  void start(const std::vector<int>& cpus);
  // shutdown() stops the pool (waiting at most its grace), then the schedulers,
  // joins their threads, and releases the pool. Idempotent.
  void shutdown();

  unsigned size() const { return static_cast<unsigned>(schedulers_.size()); }
  Scheduler& scheduler(unsigned i) { return *schedulers_[i]; }
  BlockingPool& pool() { return pool_; }
  Monitor& monitor() { return monitor_; }
  const DriverInfo& driver() const { return driver_; }
  const Options& options() const { return options_; }
  const PollerFactory& poller_factory() const { return factory_; }
  DebugState& debug() { return debug_; }

 private:
  const Options options_;
  const DriverInfo driver_;
  const PollerFactory factory_;
  // Outlives the threads: they may still be leaving arrive_and_wait() when
  // start() returns.
  Scheduler::Startup startup_;
  std::vector<std::unique_ptr<Scheduler>> schedulers_;
  std::vector<std::thread> threads_;
  BlockingPool pool_;
  Monitor monitor_;
  DebugState debug_;
};

}  // namespace fiber::detail
