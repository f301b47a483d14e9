// FuncTimer: a TimerCore whose firing starts the function in a fiber on the
// owner core. The function is shared with the fibers it runs in, so a reset()
// while an earlier run is still going is safe (runs may then overlap, as in Go).
#include "fiber/after_func.h"

#include <memory>

#include "fiber/runtime.h"
#include "timer_core.h"

namespace fiber {
namespace detail {

class FuncTimerCore final : public TimerCore {
 public:
  explicit FuncTimerCore(absl::AnyInvocable<void()> f)
      : TimerCore("fiber::after_func"),
        f_(std::make_shared<absl::AnyInvocable<void()>>(std::move(f))) {}

 private:
  // On the owner's scheduler thread, outside any fiber.
  void deliver_unlocked() override {
    fiber::go_on(scheduler_index(), [f = f_] { (*f)(); });
  }

  const std::shared_ptr<absl::AnyInvocable<void()>> f_;
};

}  // namespace detail

FuncTimer after_func_ns(int64_t ns, absl::AnyInvocable<void()> f) {
  auto* core = new detail::FuncTimerCore(std::move(f));
  core->reset(ns, 0);
  return FuncTimer(core);
}

FuncTimer& FuncTimer::operator=(FuncTimer&& o) noexcept {
  if (this != &o) {
    if (core_ != nullptr) core_->unref();
    core_ = std::exchange(o.core_, nullptr);
  }
  return *this;
}

FuncTimer::~FuncTimer() {
  if (core_ != nullptr) core_->unref();
}

bool FuncTimer::stop() { return core_ != nullptr && core_->stop(); }

bool FuncTimer::reset_ns(int64_t ns) { return core_ != nullptr && core_->reset(ns, 0); }

}  // namespace fiber
