// A deliberate layering violation for tools/ci/layers.sh: the scheduler layer
// including the driver layer's internal header, which sits above it. Compiled
// into fiber_sched only with -DFIBER_LAYER_PROBE=include; it must not compile.
#include "driver/internal/io.h"
