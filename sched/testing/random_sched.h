// Randomised scheduling (Go's randomizeScheduler), for finding tests and code
// that rely on one particular run order. Built only with
// -DFIBER_RANDOM_SCHEDULING=ON (test builds); when built out, sync_point() is
// an empty inline function and the run queue is a plain FIFO.
//
//   FIBER_SCHED_RANDOM=<seed> ./build/dev/tests/sched/fiber_chan_test
//
// With a seed each scheduler (1) runs a fiber picked at random among the first
// kWindow runnable ones instead of the oldest, and (2) yields at each sync
// point (channel send/recv/select, Mutex, CondVar, WaitGroup) with probability
// 1/10. Scheduler i draws from its own generator seeded by (seed, i), so a
// one-scheduler run replays exactly; with more schedulers the threads still
// interleave as the machine likes. The seed is printed to stderr once.
//
// Threading: the generator is per scheduler thread (t_sched_random).
#pragma once

#include <cstdint>
#include <optional>

namespace fiber::detail {

#if FIBER_RANDOM_SCHEDULING

class SchedRandom {
 public:
  // kWindow bounds how far into the run queue a pick may reach: the queue is a
  // singly linked list that may hold 100,000 fibers, so a pick walks at most
  // this far. Every fiber still gets its turn: the window slides as fibers run.
  static constexpr unsigned kWindow = 16;
  static constexpr unsigned kYieldOneIn = 10;

  SchedRandom(uint64_t seed, unsigned scheduler_index);
  uint64_t next();
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }

 private:
  uint64_t state_;
};

// The generator of this scheduler thread, or nullptr when the mode is off.
extern thread_local constinit SchedRandom* t_sched_random;

// sched_random_seed() is the seed runtimes started now use: the one given to
// set_sched_random_seed(), else FIBER_SCHED_RANDOM (std::invalid_argument if it
// is not a number), else none.
std::optional<uint64_t> sched_random_seed();
// set_sched_random_seed() overrides FIBER_SCHED_RANDOM for runtimes started
// afterwards (std::nullopt: the mode is off); reset_sched_random_seed() goes
// back to the environment. For tests.
void set_sched_random_seed(std::optional<uint64_t> seed);
void reset_sched_random_seed();
// sched_random_yields() counts the yields injected so far, process-wide.
uint64_t sched_random_yields();

// SchedRandomScope installs t_sched_random for a scheduler thread's lifetime
// when a seed is set. Core-local.
class SchedRandomScope {
 public:
  explicit SchedRandomScope(unsigned scheduler_index);
  ~SchedRandomScope();
  SchedRandomScope(const SchedRandomScope&) = delete;
  SchedRandomScope& operator=(const SchedRandomScope&) = delete;

 private:
  std::optional<SchedRandom> random_;
};

void sync_point_slow();

// sync_point() marks a point where another fiber could run first: in random
// mode it yields now and then. Call it only where the caller holds no spin
// lock (a yield there could deadlock the core). Fiber or not: off a fiber it
// does nothing.
inline void sync_point() {
  if (t_sched_random != nullptr) [[unlikely]]
    sync_point_slow();
}

#else

inline void sync_point() {}

#endif

}  // namespace fiber::detail
