// Options configure fiber::run(): how many schedulers, which driver, the
// blocking pool, stacks and queue sizes. SchedulerStats are what fiber::stats()
// reports per scheduler. Plain data, with no dependency on the runtime, so that
// every layer can read its settings without the user-facing runtime.h.
//
// Example:
//   fiber::Options options;
//   options.schedulers = 2;
//   options.driver = fiber::DriverKind::kEpoll;
//   fiber::run(main_fiber, options);
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fiber/stack_size.h"

namespace fiber {

// DriverKind is how a parked scheduler learns that there is work: I/O
// completions (io_uring) or readiness (epoll).
enum class DriverKind {
  kAuto,     // io_uring when the kernel allows it, else epoll; FIBER_DRIVER may force one
  kIoUring,  // io_uring or fail
  kEpoll,    // epoll
};

const char* to_string(DriverKind kind);

// parse_driver maps "io_uring", "epoll" or "auto" to its DriverKind; any other name is nullopt.
std::optional<DriverKind> parse_driver(std::string_view name);

// DriverInfo says which driver runs and why the other one was not chosen.
struct DriverInfo {
  DriverKind kind = DriverKind::kAuto;
  std::string reason;  // e.g. "io_uring unavailable: kernel.io_uring_disabled = 2 (...)"
};

// Pinning says whether scheduler threads are bound to CPUs.
enum class Pinning {
  kPinned,    // scheduler i runs on the i-th CPU the process may use (round robin)
  kUnpinned,  // the kernel moves scheduler threads as it likes
};

// kDefaultBlockingThreads is the default bound of the spawn_blocking() pool.
inline constexpr unsigned kDefaultBlockingThreads = 64;
// kDefaultBlockingShutdownGrace is the default of Options::blocking_shutdown_grace.
inline constexpr std::chrono::milliseconds kDefaultBlockingShutdownGrace{100};

struct Options {
  // schedulers is the number of schedulers (threads); default: one per CPU the
  // process may use (sched_getaffinity). 0 or more than 1024 is an error.
  std::optional<unsigned> schedulers;
  // driver picks the driver; kAuto defers to $FIBER_DRIVER (io_uring|epoll),
  // then to probing the kernel.
  DriverKind driver = DriverKind::kAuto;
  Pinning pinning = Pinning::kPinned;
  // blocking_threads bounds the threads of spawn_blocking(); 0 is an error.
  unsigned blocking_threads = kDefaultBlockingThreads;
  // blocking_shutdown_grace is how long run(), once main has returned, waits
  // for spawn_blocking() calls still running before it returns without them
  // (see run()). Zero: it does not wait; nanoseconds::max(): it waits for every
  // call, however long. Negative is an error.
  std::chrono::nanoseconds blocking_shutdown_grace = kDefaultBlockingShutdownGrace;
  // stack_size is the stack of the main fiber.
  size_t stack_size = kDefaultStackSize;
  // idle_spin is how long a scheduler that just ran fibers polls its inbox
  // (and, on io_uring, its completions) before it sleeps in the driver. A
  // wake-up or completion inside that window costs no syscall and no wake-up of
  // a halted CPU (tens of µs on a VM); an idle runtime spins once per wake-up at
  // most. Zero disables it.
  std::chrono::nanoseconds idle_spin = std::chrono::microseconds(10);
  // uring_sq_entries and uring_cq_entries size each scheduler's io_uring
  // submission and completion queues (the kernel rounds them up to a power of
  // two); 0 keeps the defaults, kDefaultUringSqEntries and twice the SQ. A
  // small SQ only makes the scheduler submit in more batches; a small CQ makes
  // completions wait in the kernel's overflow backlog (SchedulerStats::
  // cq_overflows counts it), slower but never lost. SQ in [2, 32768], CQ in
  // [the SQ, 65536]; anything else is std::invalid_argument. Ignored by epoll.
  unsigned uring_sq_entries = 0;
  unsigned uring_cq_entries = 0;
  // stall_threshold: a scheduler that runs one fiber (or one blocking call made
  // from a fiber) for longer than this is reported on stderr by the runtime's
  // monitor thread: the core, the fiber, its spawn site, how long so far and
  // the stuck thread's stack; again at 2, 4, 8... times the threshold while it
  // lasts, and once more when it ends. Zero turns the reports off.
  // $FIBER_STALL_THRESHOLD_MS, when set, overrides it. See sched/README.md.
  std::chrono::nanoseconds stall_threshold = std::chrono::milliseconds(20);
  // time_slice: a fiber that has run this long without a switch yields at its
  // next runtime call (an I/O call that completes at once, a channel
  // operation, a lock, fiber::maybe_yield()), as Go's scheduler preempts after
  // 10 ms. Zero turns slices off. Negative values of either are an error.
  std::chrono::nanoseconds time_slice = std::chrono::milliseconds(10);
  // deadlock_report: when every fiber is parked and nothing but a fiber could
  // wake one (no timer, no I/O, no spawn_blocking call, no thread outside the
  // runtime), print "fatal: all fibers are asleep - deadlock!" and
  // fiber::dump() on stderr and exit with status 2, as Go does.
  // $FIBER_DEADLOCK_REPORT=0|1, when set, overrides it. See sched/README.md.
  bool deadlock_report = true;
  // leak_report: when main returns, list on stderr the fibers still parked,
  // counted by spawn site. $FIBER_LEAK_REPORT=0|1 overrides it.
  bool leak_report = false;
  // sigquit_dump: SIGQUIT prints fiber::dump() on stderr and the program goes
  // on (instead of dying with a core dump). $FIBER_SIGQUIT_DUMP=0|1 overrides.
  bool sigquit_dump = false;
};

// kDefaultUringSqEntries is the default of Options::uring_sq_entries.
inline constexpr unsigned kDefaultUringSqEntries = 256;

// SchedulerStats are one scheduler's counters since run() began.
struct SchedulerStats {
  unsigned index = 0;
  uint64_t fibers_alive = 0;      // started and not yet exited
  uint64_t fibers_spawned = 0;    // started, in all
  uint64_t context_switches = 0;  // times a fiber parked, yielded or exited
  uint64_t io_ops = 0;            // I/O operations started
  // io_uring only (0 under epoll): times the scheduler found its completion
  // queue overflowed (IORING_SQ_CQ_OVERFLOW: completions waiting in the
  // kernel's backlog), and completions the kernel dropped (its overflow
  // counter; stays 0 on kernels with IORING_FEAT_NODROP unless memory ran out).
  uint64_t cq_overflows = 0;
  uint64_t cq_dropped = 0;
  // Times the driver's wait returned early for a signal (EINTR): harmless, the
  // loop just looks again.
  uint64_t waits_interrupted = 0;
  // Stalls the monitor reported (Options::stall_threshold), and the longest
  // stall seen, in nanoseconds, once it ended or as long as it has lasted.
  uint64_t stalls = 0;
  uint64_t longest_stall_ns = 0;
  // Times a fiber yielded because its time slice ran out (Options::time_slice).
  uint64_t slice_yields = 0;
};

}  // namespace fiber
