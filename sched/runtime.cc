#include "fiber/runtime.h"

#include <sched.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "fiber/detail/park.h"
#include "fiber/health.h"
#include "fiber/internal/control_block.h"
#include "runtime_impl.h"
#include "sched/internal/scheduler.h"

namespace fiber {
namespace detail {
namespace {

constexpr unsigned kMaxSchedulers = 1024;

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

[[noreturn]] void throw_no_runtime(const char* api) {
  if (BlockingPool::on_pool_thread()) {
    throw std::logic_error(std::string(api) +
                           ": the runtime has stopped (this spawn_blocking call outlived "
                           "fiber::run, which left it to its thread)");
  }
  throw std::logic_error(std::string(api) +
                         ": no runtime on this thread (call it inside fiber::run)");
}

// with_runtime() returns fn(the caller's runtime). A scheduler thread's runtime
// outlives the thread; on a spawn_blocking thread, the pool's lock keeps the
// runtime there during fn (fiber::run may return while a call still runs).
template <class Fn>
decltype(auto) with_runtime(const char* api, Fn&& fn) {
  if (t_runtime != nullptr) return fn(*t_runtime);
  BlockingPool::RuntimeLock lock;
  if (lock.runtime() == nullptr) throw_no_runtime(api);
  return fn(*lock.runtime());
}

Scheduler& current_scheduler(const char* api) {
  if (t_scheduler == nullptr) {
    throw std::logic_error(std::string(api) + ": not on a scheduler thread of fiber::run");
  }
  return *t_scheduler;
}

// MainOutcome is how run() learns that main's fiber is done, and how.
class MainOutcome {
 public:
  // finish() records the end of main (`error` if it threw or never ran).
  void finish(std::exception_ptr error) {
    std::lock_guard<std::mutex> g(mu_);
    error_ = std::move(error);
    done_ = true;
    cv_.notify_one();  // under the lock: run() destroys cv_ as soon as it sees done_
  }
  // wait() blocks the calling thread until finish(); returns its error.
  std::exception_ptr wait() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return done_; });
    return error_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;         // guarded by mu_
  std::exception_ptr error_;  // guarded by mu_
};

// MainBody runs run()'s main in the first fiber and reports to a MainOutcome,
// also when it never runs (its stack could not be mapped), so run() cannot
// wait for ever.
class MainBody {
 public:
  MainBody(absl::FunctionRef<void()> main, MainOutcome* outcome) : main_(main), outcome_(outcome) {}
  MainBody(MainBody&& o) noexcept : main_(o.main_), outcome_(std::exchange(o.outcome_, nullptr)) {}
  MainBody& operator=(MainBody&&) = delete;
  ~MainBody() {
    if (outcome_ != nullptr) {
      fail(std::make_exception_ptr(std::runtime_error("fiber::run: the main fiber never ran")));
    }
  }

  void operator()() {
    std::exception_ptr error;
    try {
      main_();
    } catch (...) {
      error = std::current_exception();
    }
    // From here on, fibers left parked are no deadlock: the runtime stops.
    t_runtime->debug().main_returned.store(true, std::memory_order_seq_cst);
    std::exchange(outcome_, nullptr)->finish(std::move(error));
  }
  void fail(std::exception_ptr why) noexcept {
    if (outcome_ != nullptr) std::exchange(outcome_, nullptr)->finish(std::move(why));
  }

 private:
  absl::FunctionRef<void()> main_;
  MainOutcome* outcome_;
};

}  // namespace

// --- start-up and shutdown -------------------------------------------------

bool Scheduler::Startup::arrive_and_wait(std::exception_ptr err) {
  std::unique_lock<std::mutex> lk(mu);
  if (err && !error) error = err;
  ++arrived;
  cv.notify_all();
  cv.wait(lk, [&] { return decided; });
  return !error;
}

void Scheduler::Startup::abandon(std::exception_ptr err) {
  std::lock_guard<std::mutex> lk(mu);
  if (!error) error = err;
  decided = true;
  cv.notify_all();
}

std::exception_ptr Scheduler::Startup::decide() {
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return arrived == expected; });
  decided = true;
  cv.notify_all();
  return error;
}

Runtime::Runtime(const Options& options, unsigned schedulers, DriverInfo driver,
                 const PollerFactory& factory)
    : options_(options),
      driver_(std::move(driver)),
      factory_(factory),
      startup_(schedulers),
      pool_(this, options.blocking_threads, options.blocking_shutdown_grace),
      monitor_(*this) {
  for (unsigned i = 0; i < schedulers; ++i) {
    schedulers_.push_back(std::make_unique<Scheduler>(this, i));
  }
  debug_.caller_tid = static_cast<pid_t>(gettid());
}

Runtime::~Runtime() { shutdown(); }

void Runtime::start(const std::vector<int>& cpus) {
  for (unsigned i = 0; i < size(); ++i) {
    int cpu = -1;
    if (options_.pinning == Pinning::kPinned && !cpus.empty()) cpu = cpus[i % cpus.size()];
    try {
      threads_.emplace_back(
          [this, i, cpu] { schedulers_[i]->thread_main(cpu, driver_.kind, &startup_); });
    } catch (...) {
      // No thread (EAGAIN: out of memory or of threads). The ones started wait
      // for the start-up decision: make it, so that they end and can be joined.
      std::exception_ptr error = std::current_exception();
      try {
        throw;
      } catch (const std::system_error& e) {
        error = std::make_exception_ptr(std::system_error(
            e.code(), "fiber::run: cannot start the thread of scheduler " + std::to_string(i)));
      } catch (...) {
      }
      startup_.abandon(error);
      for (auto& t : threads_) t.join();
      threads_.clear();
      std::rethrow_exception(error);
    }
  }
  if (std::exception_ptr error = startup_.decide()) {
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::rethrow_exception(error);
  }
  if (monitor_.enabled()) {
    install_stall_probe_handler();
    try {
      monitor_.start();
    } catch (const std::system_error& e) {
      // No thread for the monitor: the runtime still runs, without stall
      // reports or time slices (polling falls back to the switch budget).
      std::fprintf(stderr, "fiber: no monitor thread (%s): no stall reports or time slices\n",
                   e.what());
    }
  }
  start_debug(*this);
}

void Runtime::shutdown() {
  stop_debug(*this);
  monitor_.stop();
  pool_.stop();
  for (auto& s : schedulers_) s->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  pool_.release();  // after the joins: it may take fibers from the schedulers
}

void start_runtime(absl::FunctionRef<void()> main, const Options& options,
                   const PollerFactory& factory) {
  if (t_runtime != nullptr || BlockingPool::on_pool_thread()) {
    throw std::logic_error("fiber::run: called from inside a running runtime (runs do not nest)");
  }
  std::vector<int> cpus = allowed_cpus();
  unsigned n = options.schedulers.value_or(cpus.empty() ? 1u : static_cast<unsigned>(cpus.size()));
  if (n == 0 || n > kMaxSchedulers) {
    throw std::invalid_argument("fiber::run: Options::schedulers is " + std::to_string(n) +
                                "; it must be in [1, " + std::to_string(kMaxSchedulers) + "]");
  }
  if (options.blocking_threads == 0 || options.blocking_threads > 100000) {
    throw std::invalid_argument("fiber::run: Options::blocking_threads is " +
                                std::to_string(options.blocking_threads) +
                                "; it must be in [1, 100000]");
  }
  if (options.blocking_shutdown_grace.count() < 0) {
    throw std::invalid_argument("fiber::run: Options::blocking_shutdown_grace is negative");
  }
  const unsigned sq =
      options.uring_sq_entries != 0 ? options.uring_sq_entries : kDefaultUringSqEntries;
  // At least 2: the doorbell's read and an operation then fit in one turn's
  // submission (reserve() would cope with 1, one SQE per io_uring_enter).
  if (sq < 2 || sq > 32768) {
    throw std::invalid_argument("fiber::run: Options::uring_sq_entries is " + std::to_string(sq) +
                                "; it must be in [2, 32768] (0: the default)");
  }
  if (options.uring_cq_entries != 0 &&
      (options.uring_cq_entries < sq || options.uring_cq_entries > 65536)) {
    throw std::invalid_argument("fiber::run: Options::uring_cq_entries is " +
                                std::to_string(options.uring_cq_entries) + "; it must be in [" +
                                std::to_string(sq) +
                                " (the SQ entries), 65536] (0: twice the SQ entries)");
  }
  if (options.stall_threshold.count() < 0 || options.time_slice.count() < 0) {
    throw std::invalid_argument(
        "fiber::run: Options::stall_threshold and Options::time_slice must not be negative");
  }
  Options effective = options;
  if (const char* env = std::getenv("FIBER_STALL_THRESHOLD_MS"); env != nullptr && *env != 0) {
    char* end = nullptr;
    long ms = std::strtol(env, &end, 10);
    if (*end != 0 || ms < 0 || ms > 3'600'000) {
      throw std::invalid_argument(std::string("fiber::run: FIBER_STALL_THRESHOLD_MS is '") + env +
                                  "'; it must be a whole number of milliseconds in [0, 3600000]");
    }
    effective.stall_threshold = std::chrono::milliseconds(ms);
  }
  for (auto [name, field] : {std::pair{"FIBER_DEADLOCK_REPORT", &Options::deadlock_report},
                             std::pair{"FIBER_LEAK_REPORT", &Options::leak_report},
                             std::pair{"FIBER_SIGQUIT_DUMP", &Options::sigquit_dump}}) {
    if (const char* env = std::getenv(name); env != nullptr && *env != 0) {
      if (std::string(env) != "0" && std::string(env) != "1") {
        throw std::invalid_argument(std::string("fiber::run: ") + name + " is '" + env +
                                    "'; it must be 0 or 1");
      }
      effective.*field = *env == '1';
    }
  }
  size_t main_stack = check_stack_size(options.stack_size);
  DriverInfo driver = factory.choose(options.driver);
  install_overflow_handler();
  install_fiber_hooks();

  Runtime runtime(effective, n, std::move(driver), factory);
  runtime.start(cpus);

  MainOutcome outcome;
  runtime.scheduler(0).post_spawn(new FnBody<MainBody>(MainBody(main, &outcome)), main_stack);
  std::exception_ptr error = outcome.wait();
  if (effective.leak_report) leak_report(runtime);
  runtime.shutdown();
  if (error) std::rethrow_exception(error);
}

void spawn_fiber(int index, const SpawnOptions& options, FiberBody& body, const SpawnSite& site) {
  body.site = site;
  const char* api = index < 0 ? "fiber::go" : "fiber::go_on";
  size_t stack_size = check_stack_size(options.stack_size);
  Scheduler* here = t_scheduler;
  if (index < 0) {
    if (here == nullptr && !BlockingPool::on_pool_thread()) throw_no_runtime(api);
    current_scheduler(api).spawn_local(body, stack_size);
    return;
  }
  with_runtime(api, [&](Runtime& rt) {
    if (static_cast<unsigned>(index) >= rt.size()) {
      throw std::out_of_range(std::string(api) + ": scheduler index " + std::to_string(index) +
                              " is out of range [0, " + std::to_string(rt.size()) + ")");
    }
    Scheduler* dest = &rt.scheduler(static_cast<unsigned>(index));
    if (dest == here) {
      here->spawn_local(body, stack_size);
    } else {
      dest->post_spawn(body.move_to_heap(), stack_size);
    }
  });
}

void sleep_until_ns(int64_t deadline_ns) {
  Fiber* self = current_fiber("fiber::sleep_for");
  if (deadline_ns <= 0) return;
  struct SleepTimer : Timer {
    Fiber* fiber;
  } timer;
  timer.deadline_ns = deadline_ns;
  timer.fiber = self;
  timer.fire = [](Timer* t) { t_scheduler->ready(static_cast<SleepTimer*>(t)->fiber); };
  t_scheduler->add_timer(&timer);
  t_scheduler->park(WaitReason::kSleep, deadline_ns);
}

constinit const std::atomic<bool> kNeverDue{false};
thread_local constinit const std::atomic<bool>* t_slice_due = &kNeverDue;

void slice_yield() {
  if (t_scheduler != nullptr) t_scheduler->slice_yield();
}

void not_in_fiber(const char* api) {
  throw std::logic_error(std::string(api) + ": called outside a fiber");
}

void park(WaitReason why, int64_t until_ns, int32_t fd) {
  current_fiber("fiber: park");
  t_scheduler->park(why, until_ns, fd);
}

void ready(Fiber* f) { static_cast<Scheduler*>(f->owner)->ready(f); }

}  // namespace detail

const char* to_string(DriverKind kind) {
  switch (kind) {
    case DriverKind::kAuto:
      return "auto";
    case DriverKind::kIoUring:
      return "io_uring";
    case DriverKind::kEpoll:
      return "epoll";
  }
  return "unknown";
}

void yield() {
  detail::current_fiber("fiber::yield");
  detail::t_scheduler->yield();
}

uint64_t current_id() {
  detail::Fiber* f = detail::t_current_fiber;
  return f == nullptr ? 0 : f->id;
}

unsigned scheduler_index() { return detail::current_scheduler("fiber::scheduler_index").index(); }

unsigned scheduler_count() {
  return detail::with_runtime("fiber::scheduler_count",
                              [](detail::Runtime& rt) { return rt.size(); });
}

std::vector<SchedulerStats> stats() {
  return detail::with_runtime("fiber::stats", [](detail::Runtime& rt) {
    std::vector<SchedulerStats> out;
    out.reserve(rt.size());
    for (unsigned i = 0; i < rt.size(); ++i) out.push_back(rt.scheduler(i).stats());
    return out;
  });
}

const DriverInfo& driver_info() {
  if (detail::t_runtime != nullptr) return detail::t_runtime->driver();
  // A spawn_blocking thread gets its pool's copy, which lives as long as the
  // thread (the runtime may not).
  detail::BlockingPool::RuntimeLock lock;
  if (lock.runtime() == nullptr) detail::throw_no_runtime("fiber::driver_info");
  return lock.driver();
}

bool scheduler_responsive(unsigned index) {
  return detail::with_runtime("fiber::scheduler_responsive", [&](detail::Runtime& rt) {
    if (index >= rt.size()) {
      throw std::out_of_range("fiber::scheduler_responsive: scheduler index " +
                              std::to_string(index) + " is out of range [0, " +
                              std::to_string(rt.size()) + ")");
    }
    return rt.monitor().responsive(index);
  });
}

HealthWatch::HealthWatch(Callback fn) : fn_(std::move(fn)) {
  detail::Monitor* m =
      detail::with_runtime("fiber::HealthWatch", [](detail::Runtime& rt) { return &rt.monitor(); });
  monitor_ = m;
  m->add_watch(this);
}

HealthWatch::~HealthWatch() { static_cast<detail::Monitor*>(monitor_)->remove_watch(this); }

}  // namespace fiber
