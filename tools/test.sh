#!/usr/bin/env bash
# Builds and runs the whole test suite: tools/test.sh [dev|asan|tsan] (default dev).
# Every runtime test runs on both drivers (io_uring and epoll).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-dev}
tools/setup.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
