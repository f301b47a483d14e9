// Runtime is one fiber::run(): its schedulers, their threads and the blocking
// pool. It lives on the stack of the thread that called run().
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "fiber/runtime.h"
#include "sched/scheduler.h"

namespace fiber::detail {

// BlockingTask is one spawn_blocking() call; it lives on the parked caller's stack.
struct BlockingTask {
  absl::FunctionRef<void()> work;
  Fiber* fiber;
};

// BlockingPool runs blocking calls on at most `max_threads` threads, started on
// demand and kept until shutdown. Thread-safe.
class BlockingPool {
 public:
  BlockingPool(Runtime* runtime, unsigned max_threads)
      : runtime_(runtime), max_threads_(max_threads) {}
  ~BlockingPool() { shutdown(); }

  // submit() queues `task`; returns false once the pool is shut down.
  bool submit(BlockingTask* task);
  // shutdown() drops tasks not yet started (their fibers stay parked) and waits
  // for those running to return.
  void shutdown();
  // threads() is how many threads the pool has started.
  size_t threads();

 private:
  void worker();

  Runtime* const runtime_;
  const unsigned max_threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BlockingTask*> queue_;   // guarded by mu_
  std::vector<std::thread> threads_;  // guarded by mu_
  unsigned idle_ = 0;                 // guarded by mu_
  bool stop_ = false;                 // guarded by mu_
};

struct Scheduler::Startup {
  explicit Startup(unsigned n) : expected(n) {}
  // arrive_and_wait() reports a thread's start-up (error or not) and returns
  // whether the runtime goes ahead.
  bool arrive_and_wait(std::exception_ptr error);
  // decide() waits for every thread and returns the first error, if any.
  std::exception_ptr decide();

  std::mutex mu;
  std::condition_variable cv;
  unsigned expected;
  unsigned arrived = 0;      // guarded by mu
  bool decided = false;      // guarded by mu
  std::exception_ptr error;  // guarded by mu
};

class Runtime {
 public:
  Runtime(const Options& options, unsigned schedulers, DriverInfo driver);
  ~Runtime();

  // start() starts one thread per scheduler; throws (after stopping them) if a
  // scheduler could not start its driver.
  void start(const std::vector<int>& cpus);
  // shutdown() stops the pool, then the schedulers, and joins every thread.
  void shutdown();

  unsigned size() const { return static_cast<unsigned>(schedulers_.size()); }
  Scheduler& scheduler(unsigned i) { return *schedulers_[i]; }
  BlockingPool& pool() { return pool_; }
  const DriverInfo& driver() const { return driver_; }
  const Options& options() const { return options_; }

 private:
  const Options options_;
  const DriverInfo driver_;
  // Outlives the threads: they may still be leaving arrive_and_wait() when
  // start() returns.
  Scheduler::Startup startup_;
  std::vector<std::unique_ptr<Scheduler>> schedulers_;
  std::vector<std::thread> threads_;
  BlockingPool pool_;
};

}  // namespace fiber::detail
