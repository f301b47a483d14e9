// Micro benchmarks of the runtime. Every benchmark runs its timed loop inside a
// fiber: the BENCHMARK body calls fiber::run() and the measuring fiber (the main
// fiber, on scheduler 0) runs `for (auto _ : state)`. Runtime start and stop are
// outside the timed loop. Helper fibers always end (stop flags), and the main
// fiber waits for them, so every fiber::run() returns.
//
// Run: runtime_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>

#include "fiber/fiber.h"

namespace {

fiber::Options with_schedulers(unsigned n) {
  fiber::Options opts;
  opts.schedulers = n;
  // A timed loop holds its core for the whole run by design: not a stall to
  // report. Time slices and the monitor's polling stay on, as in production.
  opts.stall_threshold = std::chrono::nanoseconds(0);
  return opts;
}

// BM_YieldSwitch: two fibers on one scheduler, both calling fiber::yield(). One
// iteration is one yield of the measuring fiber: a round trip of two switches
// (measuring -> helper -> measuring). The time column is per round trip; the
// counter ns_per_switch is the time of one switch, in nanoseconds.
void BM_YieldSwitch(benchmark::State& state) {
  fiber::run(
      [&] {
        std::atomic<bool> stop{false};
        fiber::WaitGroup helper_done;
        helper_done.add(1);
        fiber::go([&] {
          while (!stop.load(std::memory_order_relaxed)) fiber::yield();
          helper_done.done();
        });
        fiber::yield();  // let the helper start before timing

        auto start = std::chrono::steady_clock::now();
        for (auto _ : state) fiber::yield();
        auto elapsed = std::chrono::steady_clock::now() - start;

        stop.store(true, std::memory_order_relaxed);
        helper_done.wait();

        double ns = std::chrono::duration<double, std::nano>(elapsed).count();
        state.counters["ns_per_switch"] =
            benchmark::Counter(ns / (2.0 * static_cast<double>(state.iterations())));
      },
      with_schedulers(1));
}
BENCHMARK(BM_YieldSwitch)->UseRealTime();

// BM_SpawnJoin: spawn a fiber that returns 1 and join it, on one scheduler.
// After the first iteration the stack comes from the runtime's pool.
void BM_SpawnJoin(benchmark::State& state) {
  fiber::run(
      [&] {
        for (auto _ : state) {
          int v = fiber::spawn([] { return 1; }).join();
          benchmark::DoNotOptimize(v);
        }
      },
      with_schedulers(1));
}
BENCHMARK(BM_SpawnJoin)->UseRealTime();

// BM_MaybeYieldNotDue: fiber::maybe_yield() in a compute loop, alone on its
// scheduler. Almost every call finds no slice due (a load and a branch); one
// in every 10 ms yields, to no one.
void BM_MaybeYieldNotDue(benchmark::State& state) {
  fiber::run(
      [&] {
        for (auto _ : state) fiber::maybe_yield();
      },
      with_schedulers(1));
}
BENCHMARK(BM_MaybeYieldNotDue)->UseRealTime();

// Slot is one value guarded by a fiber::Mutex, with a CondVar to wait for a change.
class Slot {
 public:
  void set(uint64_t v) {
    {
      std::lock_guard<fiber::Mutex> g(mu_);
      value_ = v;
    }
    cv_.notify_one();
  }
  // wait_change() parks until the value differs from `old` and returns it.
  uint64_t wait_change(uint64_t old) {
    std::unique_lock<fiber::Mutex> lk(mu_);
    cv_.wait(lk, [&] { return value_ != old; });
    return value_;
  }

 private:
  fiber::Mutex mu_;
  fiber::CondVar cv_;
  uint64_t value_ = 0;  // guarded by mu_
};

// BM_CrossCoreWakeRoundTrip: a fiber on scheduler 0 (the measuring one) and a
// fiber on scheduler 1 ping-pong through two Mutex+CondVar slots. One iteration
// is one round trip 0 -> 1 -> 0: two cross-core wakes of a parked fiber.
void BM_CrossCoreWakeRoundTrip(benchmark::State& state) {
  fiber::run(
      [&] {
        constexpr uint64_t kStop = std::numeric_limits<uint64_t>::max();
        Slot ping;
        Slot pong;
        fiber::WaitGroup helper_done;
        helper_done.add(1);
        fiber::go_on(1, [&] {
          uint64_t last = 0;
          for (;;) {
            uint64_t v = ping.wait_change(last);
            if (v == kStop) break;
            last = v;
            pong.set(v);
          }
          helper_done.done();
        });

        uint64_t i = 0;
        for (auto _ : state) {
          ++i;
          ping.set(i);
          uint64_t got = pong.wait_change(i - 1);
          benchmark::DoNotOptimize(got);
        }

        ping.set(kStop);
        helper_done.wait();
      },
      with_schedulers(2));
}
BENCHMARK(BM_CrossCoreWakeRoundTrip)->UseRealTime();

// BM_MutexUncontended: lock and unlock a fiber::Mutex that no one else uses.
void BM_MutexUncontended(benchmark::State& state) {
  fiber::run(
      [&] {
        fiber::Mutex mu;
        uint64_t counter = 0;
        for (auto _ : state) {
          mu.lock();
          ++counter;
          mu.unlock();
        }
        benchmark::DoNotOptimize(counter);
      },
      with_schedulers(1));
}
BENCHMARK(BM_MutexUncontended)->UseRealTime();

// BM_MutexContended: one fiber on each of two schedulers, both looping on
// lock; ++counter; unlock of one fiber::Mutex. One iteration is one lock/unlock
// of the measuring fiber (scheduler 0); the helper (scheduler 1) runs until the
// stop flag. The Mutex hands the lock to the longest waiter (FIFO), so under
// contention an iteration typically includes a cross-core handoff.
void BM_MutexContended(benchmark::State& state) {
  fiber::run(
      [&] {
        fiber::Mutex mu;
        uint64_t counter = 0;  // guarded by mu
        std::atomic<bool> stop{false};
        fiber::WaitGroup helper_started;
        fiber::WaitGroup helper_done;
        helper_started.add(1);
        helper_done.add(1);
        fiber::go_on(1, [&] {
          helper_started.done();
          while (!stop.load(std::memory_order_relaxed)) {
            mu.lock();
            ++counter;
            mu.unlock();
          }
          helper_done.done();
        });
        helper_started.wait();

        for (auto _ : state) {
          mu.lock();
          ++counter;
          mu.unlock();
        }

        stop.store(true, std::memory_order_relaxed);
        helper_done.wait();
        benchmark::DoNotOptimize(counter);
      },
      with_schedulers(2));
}
BENCHMARK(BM_MutexContended)->UseRealTime();

// BM_SpawnBlockingRoundTrip: run a trivial callable on the blocking pool and
// park until it returned (fiber -> pool thread -> fiber).
void BM_SpawnBlockingRoundTrip(benchmark::State& state) {
  fiber::run(
      [&] {
        for (auto _ : state) {
          int v = fiber::spawn_blocking([] { return 1; });
          benchmark::DoNotOptimize(v);
        }
      },
      with_schedulers(1));
}
BENCHMARK(BM_SpawnBlockingRoundTrip)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
