#!/usr/bin/env bash
# Extended tier, run by hand (not in .ci/run): test plan row T9, repeat until
# fail. Runs the channel, select, sync (Mutex, CondVar, WaitGroup) and timer
# tests, on both drivers, up to N times each in random order; a flaky
# interleaving shows up as the first failing run.
#   tools/ci/repeat.sh [asan|dev|tsan] [N]     (default: asan 50)
# Builds the preset's four test binaries first. The test names are those of
# the gtest suites (Drivers/ChanTest.X/io_uring, ...): the plan's pattern
# 'Channel|Select|Mutex|CondVar|WaitGroup|Timer' would miss most of SyncTest
# and TimeTest and catch unrelated ContextTest cases. Exits non-zero when a
# test failed; ctest names it, and --output-on-failure shows its output.
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=${1:-asan}
repeat=${2:-50}
case $preset in
  dev | asan) jobs=2 ;;
  tsan) jobs=1 ;;  # as the tsan test preset: TSan's memory per live fiber
  *) echo "usage: $0 [asan|dev|tsan] [N]" >&2; exit 2 ;;
esac
start=$(date +%s)
say() { echo "repeat.sh [$(( $(date +%s) - start )) s]: $*"; }

tools/setup.sh
cmake --preset "$preset" >/dev/null
say "building the $preset test binaries"
cmake --build --preset "$preset" --target fiber_chan_test fiber_select_test fiber_sync_test \
  fiber_time_test >/tmp/fiber-repeat-build.log 2>&1 || { tail -40 /tmp/fiber-repeat-build.log; exit 1; }

# The environment of the preset's ctest runs (CMakePresets.json, testPresets).
case $preset in
  asan)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
    ;;
  tsan)
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0}
    ;;
esac

pattern='^Drivers/(ChanTest|SelectTest|SyncTest|TimeTest)\.'
count=$(ctest --test-dir "build/$preset" -N -R "$pattern" | sed -n 's/^Total Tests: //p')
say "$count tests, each up to $repeat times, $jobs at a time, in random order"
ctest --test-dir "build/$preset" -R "$pattern" --repeat "until-fail:$repeat" --schedule-random \
  -j "$jobs" --timeout 600 --output-on-failure
say "every test passed $repeat times in a row"
