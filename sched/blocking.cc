#include "fiber/blocking.h"

#include <pthread.h>

#include <stdexcept>

#include "fiber/control_block.h"
#include "fiber/detail/park.h"
#include "sched/runtime_impl.h"

namespace fiber::detail {

bool BlockingPool::submit(BlockingTask* task) {
  std::lock_guard<std::mutex> g(mu_);
  if (stop_) return false;
  queue_.push_back(task);
  // Idle threads not yet woken still count in idle_ and their tasks in queue_,
  // so idle_ >= queue_.size() means some idle thread will take this task.
  if (idle_ >= queue_.size()) {
    cv_.notify_one();
  } else if (threads_.size() < max_threads_) {
    threads_.emplace_back([this] { worker(); });
  }
  return true;
}

void BlockingPool::worker() {
  t_runtime = runtime_;
  pthread_setname_np(pthread_self(), "fiber-blocking");
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    --idle_;
    if (stop_) return;
    BlockingTask* task = queue_.front();
    queue_.pop_front();
    lk.unlock();
    Fiber* fiber = task->fiber;
    task->work();
    ready(fiber);  // `task` lives on the fiber's stack: gone once it runs
    lk.lock();
  }
}

void BlockingPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
    queue_.clear();
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
}

size_t BlockingPool::threads() {
  std::lock_guard<std::mutex> g(mu_);
  return threads_.size();
}

void run_blocking(absl::FunctionRef<void()> work) {
  BlockingTask task{work, current_fiber("fiber::spawn_blocking")};
  if (!t_runtime->pool().submit(&task)) {
    throw std::runtime_error("fiber::spawn_blocking: the runtime is shutting down");
  }
  park();
}

}  // namespace fiber::detail
