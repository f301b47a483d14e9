// The fault-injecting driver: a decorator over either real driver that makes
// the runtime meet, on demand and reproducibly, the rare answers a kernel can
// give. Built only with -DFIBER_FAULT_INJECTION=ON (test builds); picked at run
// time by FIBER_FAULTS, as FIBER_DRIVER picks the driver underneath.
//
//   FIBER_FAULTS="seed=7,short=0.3,eagain=0.1,eintr=0.05,delay=0.1,reorder=0.1"
//
// Each key but `seed` (and `max`, the bound below) is a fault kind with the
// probability of injecting it at each chance:
//   short     a read or write asks the kernel for fewer bytes (a real short
//             transfer; stream sockets and files only, never a datagram)
//   eagain    a socket operation answers -EAGAIN without reaching the kernel
//   eintr     an operation answers -EINTR without reaching the kernel; a wait
//             of the scheduler returns early, as after a signal
//   delay     a completed operation's wake-up is held for a few loop turns
//   reorder   a completed operation's wake-up is held until a later one has
//             been delivered (or released newest first with others held)
//   spurious  the doorbell rings for nothing; under epoll, an op parked for
//             readiness is woken although the fd may not be ready
//   reset     a stream socket is really reset (TCP: an RST by connect(AF_UNSPEC);
//             other streams: shutdown(SHUT_RDWR)), then the op gets -ECONNRESET
//   nobufs    a send answers -ENOBUFS without reaching the kernel
//   busy      io_uring refuses a turn's submissions (-EBUSY): they wait a turn
// `reset` and `nobufs` change what the user sees; the others must not change
// any result. Nothing is ever dropped: every completion and every wake-up is
// delivered, at worst late. An operation is faulted at most `max` (3) times in a
// row on one handle, so every test terminates.
//
// Threading: one FaultPoller per scheduler, core-local like the poller it wraps
// (wake() stays thread-safe). The counters are process-wide atomics.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "fiber/options.h"
#include "sched/internal/poller.h"

namespace fiber::detail {

enum class FaultKind : uint8_t {
  kShort,
  kEagain,
  kEintr,
  kDelay,
  kReorder,
  kSpurious,
  kReset,
  kNobufs,
  kBusy,
};
inline constexpr size_t kFaultKinds = 9;

// fault_kind_name() is the kind's key in FIBER_FAULTS ("short", "eagain", ...).
const char* fault_kind_name(FaultKind kind);

struct FaultPlan {
  uint64_t seed = 0;
  std::array<double, kFaultKinds> p = {};  // indexed by FaultKind
  int max_consecutive = 3;

  double operator[](FaultKind k) const { return p[static_cast<size_t>(k)]; }
  // parse() reads "seed=S,kind=p,...". Throws std::invalid_argument naming the
  // bad item (unknown key, probability outside [0, 1], bad number).
  static FaultPlan parse(std::string_view text);
  // to_string() is the plan in parse()'s syntax, every kind listed.
  std::string to_string() const;
};

// active_fault_plan() is the plan runtimes started now use: the one given to
// set_fault_plan(), else FIBER_FAULTS (parsed once; std::invalid_argument if
// malformed), else none. The first runtime to use a plan prints it to stderr
// ("fiber: FIBER_FAULTS seed=7,...", once per process) so a run can be replayed.
std::optional<FaultPlan> active_fault_plan();
// set_fault_plan() overrides FIBER_FAULTS for runtimes started afterwards;
// std::nullopt goes back to the environment. For tests. Thread-safe.
void set_fault_plan(std::optional<FaultPlan> plan);

struct FaultCounts {
  std::array<uint64_t, kFaultKinds> injected = {};  // indexed by FaultKind
  uint64_t uring_pollers = 0;  // fault pollers made over io_uring (busy needs one)
  uint64_t epoll_pollers = 0;
  uint64_t operator[](FaultKind k) const { return injected[static_cast<size_t>(k)]; }
};
// fault_counts() reads the process-wide counters; reset_fault_counts() zeroes
// them. Thread-safe.
FaultCounts fault_counts();
void reset_fault_counts();

// make_fault_poller() wraps `real` (an IoPoller of `kind`) in a FaultPoller for
// the calling scheduler thread.
std::unique_ptr<Poller> make_fault_poller(std::unique_ptr<Poller> real, DriverKind kind,
                                          const FaultPlan& plan);

}  // namespace fiber::detail
