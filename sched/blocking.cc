#include "fiber/blocking.h"

#include <pthread.h>

#include <list>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"
#include "fiber/internal/control_block.h"
#include "runtime_impl.h"
#include "sched/internal/thread_mutex.h"

namespace fiber::detail {

// Worker is one pool thread. Its fields are guarded by State::mu, which an
// annotation here cannot name (a Worker does not know its State).
struct BlockingPool::Worker {
  std::thread thread;
  Fiber* fiber = nullptr;  // the parked caller of the call running now
  bool lent = false;       // release() left the running call to this thread
  pid_t tid = 0;           // set by the thread itself
};

struct BlockingPool::State {
  explicit State(Runtime* rt) : runtime(rt), driver(rt->driver()) {}

  ThreadMutex mu;
  std::condition_variable work_cv;       // idle threads wait for a task or stop
  std::condition_variable done_cv;       // stop() waits for running calls to return
  Runtime* runtime ABSL_GUARDED_BY(mu);  // null after release()
  const DriverInfo driver;               // a copy, for driver_info() on pool threads
  std::deque<BlockingTask*> queue ABSL_GUARDED_BY(mu);
  std::list<Worker> workers ABSL_GUARDED_BY(mu);  // a list: each thread keeps a pointer to its own
  unsigned idle ABSL_GUARDED_BY(mu) = 0;
  unsigned running ABSL_GUARDED_BY(mu) = 0;
  bool stop ABSL_GUARDED_BY(mu) = false;
};

namespace {

// The pool state of a spawn_blocking thread; the thread holds a reference.
thread_local BlockingPool::State* t_pool_state = nullptr;

// A grace this long (or longer) means "wait for every call".
constexpr std::chrono::nanoseconds kForever = std::chrono::hours(24 * 365);

}  // namespace

BlockingPool::BlockingPool(Runtime* runtime, unsigned max_threads, std::chrono::nanoseconds grace)
    : max_threads_(max_threads), grace_(grace), state_(std::make_shared<State>(runtime)) {}

BlockingPool::~BlockingPool() { release(); }

bool BlockingPool::submit(BlockingTask* task) {
  State& s = *state_;
  ThreadLock g(s.mu);
  if (s.stop) return false;
  s.queue.push_back(task);
  // Idle threads not yet woken still count in idle and their tasks in queue,
  // so idle >= queue.size() means some idle thread will take this task.
  if (s.idle >= s.queue.size()) {
    s.work_cv.notify_one();
  } else if (s.workers.size() < max_threads_) {
    Worker& w = s.workers.emplace_back();
    try {
      w.thread = std::thread(&BlockingPool::worker_main, state_, &w);
    } catch (...) {
      s.workers.pop_back();
      // With no thread at all nobody would ever take the task, which lives on
      // the caller's stack: take it back before the caller unwinds. Otherwise
      // the threads there are take it in turn.
      if (s.workers.empty()) {
        s.queue.pop_back();
        throw;
      }
    }
  }
  return true;
}

void BlockingPool::worker_main(std::shared_ptr<State> state, Worker* self) {
  State& s = *state;
  t_pool_state = &s;
  pthread_setname_np(pthread_self(), "fiber-blocking");
  ThreadLock lk(s.mu);
  self->tid = static_cast<pid_t>(gettid());
  for (;;) {
    ++s.idle;
    s.work_cv.wait(lk.native(), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
      return s.stop || !s.queue.empty();
    });
    --s.idle;
    if (s.stop) break;
    BlockingTask* task = s.queue.front();
    s.queue.pop_front();
    Fiber* fiber = task->fiber;
    self->fiber = fiber;
    ++s.running;
    lk.unlock();
    task->work();  // `task` lives on the fiber's stack: gone once the fiber runs
    lk.lock();
    self->fiber = nullptr;
    --s.running;
    if (self->lent) {
      // run() has returned without this call (release()): the scheduler forgot
      // the fiber, and its stack, which held the call, is this thread's to unmap.
      lk.unlock();
      StackPool scratch;  // a pool of one: unmaps the stack as it goes
      free_fiber(scratch, fiber);
      break;
    }
    // Under the lock, which release() needs before the runtime may go.
    ready(fiber);
    if (s.stop && s.running == 0) s.done_cv.notify_all();
  }
  t_pool_state = nullptr;
}

void BlockingPool::stop() {
  State& s = *state_;
  ThreadLock lk(s.mu);
  if (s.stop) return;
  s.stop = true;
  s.queue.clear();
  s.work_cv.notify_all();
  auto none_running = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) { return s.running == 0; };
  if (grace_ >= kForever) {
    s.done_cv.wait(lk.native(), none_running);
  } else if (grace_.count() > 0) {
    s.done_cv.wait_for(lk.native(), grace_, none_running);
  }
}

void BlockingPool::release() {
  stop();
  State& s = *state_;
  std::vector<std::thread> finished;
  {
    ThreadLock g(s.mu);
    if (s.runtime == nullptr) return;
    for (Worker& w : s.workers) {
      if (!w.thread.joinable()) continue;
      if (w.fiber != nullptr) {
        static_cast<Scheduler*>(w.fiber->owner)->forget(w.fiber);
        w.lent = true;
        w.thread.detach();
      } else {
        finished.push_back(std::move(w.thread));
      }
    }
    s.runtime = nullptr;
  }
  for (auto& t : finished) t.join();
}

bool BlockingPool::idle(std::vector<pid_t>* tids) {
  State& s = *state_;
  ThreadLock g(s.mu);
  if (!s.queue.empty() || s.running > 0) return false;
  for (const Worker& w : s.workers) tids->push_back(w.tid);
  return true;
}

size_t BlockingPool::threads() {
  ThreadLock g(state_->mu);
  return state_->workers.size();
}

// The analysis is off here: the lock taken here is held by lock_ until the
// RuntimeLock goes, past the end of this function, which it cannot follow.
ABSL_NO_THREAD_SAFETY_ANALYSIS BlockingPool::RuntimeLock::RuntimeLock() {
  if (t_pool_state == nullptr) return;
  state_ = t_pool_state;
  lock_ = std::unique_lock<std::mutex>(state_->mu.native());
  runtime_ = state_->runtime;
}

const DriverInfo& BlockingPool::RuntimeLock::driver() const { return state_->driver; }

bool BlockingPool::on_pool_thread() { return t_pool_state != nullptr; }

void run_blocking(absl::FunctionRef<void()> work) {
  BlockingTask task{work, current_fiber("fiber::spawn_blocking")};
  // Refused once run() is stopping: the call never starts, and the fiber stays
  // parked until the runtime abandons it with the others, like a call dropped
  // from the queue.
  (void)t_runtime->pool().submit(&task);
  park(WaitReason::kBlocking);
}

}  // namespace fiber::detail
