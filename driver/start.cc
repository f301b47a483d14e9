// fiber::run()'s entry point. It lives in the driver layer, the lowest one
// that knows both the schedulers and the pollers: the scheduler layer starts
// the runtime and asks this layer's factory for a poller on each core.
#include "driver/internal/choose_driver.h"
#include "driver/internal/hook_api.h"
#include "fiber/runtime.h"

namespace fiber::detail {

void run_main(absl::FunctionRef<void()> main, const Options& options) {
  static constexpr PollerFactory kFactory{&choose_driver, &make_poller};
  // The libc hooks, if the program has them, learn of the runtime here and
  // drop what they hold of it once it has stopped.
  const HookClient* hook = attach_hook();
  struct Ended {
    const HookClient* hook;
    ~Ended() {
      if (hook != nullptr) hook->run_ended();
    }
  } ended{hook};
  start_runtime(main, options, kFactory);
}

}  // namespace fiber::detail
