#!/usr/bin/env bash
# Builds (Release) and runs the main job. Extra arguments go to the program.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target sleepers
# 100,000 live fibers need 200,000 memory maps (a guard page each).
if [ "$(cat /proc/sys/vm/max_map_count)" -lt 262144 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sysctl -q -w vm.max_map_count=262144
  else
    echo "demo: vm.max_map_count is below 262144; run: sudo sysctl -w vm.max_map_count=262144" >&2
    exit 1
  fi
fi
exec build/release/examples/sleepers "$@"
