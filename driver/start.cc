// fiber::run()'s entry point. It lives in the driver layer, the lowest one
// that knows both the schedulers and the pollers: the scheduler layer starts
// the runtime and asks this layer's factory for a poller on each core.
#include "driver/internal/choose_driver.h"
#include "fiber/runtime.h"

namespace fiber::detail {

void run_main(absl::FunctionRef<void()> main, const Options& options) {
  static constexpr PollerFactory kFactory{&choose_driver, &make_poller};
  start_runtime(main, options, kFactory);
}

}  // namespace fiber::detail
