// Scheduler health, for code that can route work away from a stuck core: a
// scheduler is unresponsive while it has run one fiber (or one blocking call
// made by a fiber) for more than kUnresponsiveAfter without a switch. The
// runtime's monitor thread decides it (see sched/README.md, "Stalls"); it runs
// unless both Options::stall_threshold and Options::time_slice are zero, and
// without it every scheduler counts as responsive.
//
// Example (what fiber::http::Server does with its SO_REUSEPORT listeners):
//   fiber::HealthWatch watch([&](unsigned core, bool responsive) {
//     steer_new_connections_away_from(core, responsive);  // on the monitor's thread
//   });
#pragma once

#include <chrono>

#include "absl/functional/any_invocable.h"

namespace fiber {

// kUnresponsiveAfter: how long a scheduler may run one fiber before it counts
// as unresponsive (the monitor notices within about a millisecond more).
inline constexpr std::chrono::milliseconds kUnresponsiveAfter{10};

// scheduler_responsive() is false while scheduler `index` is unresponsive.
// Any thread of the runtime. Throws std::logic_error outside one,
// std::out_of_range for a bad index.
bool scheduler_responsive(unsigned index);

// HealthWatch calls `fn(index, responsive)` on the monitor's thread each time
// a scheduler becomes unresponsive and each time it answers again, from its
// construction to its destruction. `fn` must be quick and must not block (it
// delays every other report), nor make or destroy a HealthWatch. Destruction
// waits for a call in progress, so `fn` may use what it refers to until then.
// Destroy it before fiber::run() returns. Constructed on a thread of the
// runtime; throws std::logic_error elsewhere.
class HealthWatch {
 public:
  using Callback = absl::AnyInvocable<void(unsigned index, bool responsive)>;
  explicit HealthWatch(Callback fn);
  ~HealthWatch();
  HealthWatch(const HealthWatch&) = delete;
  HealthWatch& operator=(const HealthWatch&) = delete;

  // notify() is the monitor's call. Not for users.
  void notify(unsigned index, bool responsive) { fn_(index, responsive); }

 private:
  Callback fn_;
  void* monitor_;
};

}  // namespace fiber
