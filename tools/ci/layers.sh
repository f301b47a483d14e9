#!/usr/bin/env bash
# Proves that the build enforces the layers (README.md, "Layout"): the scheduler
# layer builds as it is, and fails to build with a deliberate violation of each
# kind, an include of a layer above it and a call into a layer above it. The
# libc hooks (hook/) must link with nothing of the runtime at all.
# Usage: tools/ci/layers.sh [build-dir] (default build/layers); about a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build/layers}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

build() {  # build <probe> <target>: configure with the probe, build the target
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DFIBER_BUILD_TESTS=OFF \
    -DFIBER_BUILD_EXAMPLES=OFF -DFIBER_BUILD_HTTP=OFF -DFIBER_LAYER_PROBE="$1" >/dev/null
  cmake --build "$dir" -j2 --target "$2" >"$log" 2>&1
}

build "" fiber_sched_layer_check ||
  { cat "$log"; echo "layers: the tree as it is does not build" >&2; exit 1; }
echo "layers: the scheduler layer builds and links alone"

build "" fiber_hook_objects_layer_check ||
  { cat "$log"; echo "layers: the hook library takes a symbol of the runtime by name" >&2; exit 1; }
echo "layers: the hook library links alone, taking nothing of the runtime by name"

if build include fiber_sched; then
  echo "layers: FAIL: sched compiled an include of driver/internal/io.h" >&2; exit 1
fi
grep -q "driver/internal/io.h: No such file" "$log" ||
  { cat "$log"; echo "layers: FAIL: the include probe failed for another reason" >&2; exit 1; }
echo "layers: an include of a layer above does not compile"

if build symbol fiber_sched_layer_check; then
  echo "layers: FAIL: sched linked a call into the driver layer" >&2; exit 1
fi
grep -q "undefined reference to .fiber::detail::socket_flags()" "$log" ||
  { cat "$log"; echo "layers: FAIL: the symbol probe failed for another reason" >&2; exit 1; }
echo "layers: a call into a layer above does not link"
cmake -S . -B "$dir" -DFIBER_LAYER_PROBE= >/dev/null
