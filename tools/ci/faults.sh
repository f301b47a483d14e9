#!/usr/bin/env bash
# CI step: the suite under injected faults and randomised scheduling (dev build).
#
# 1. Fault-injecting driver (driver/testing/fault_poller.h, rows T36): the I/O tests, the
#    echo round trips (tests/io/net_test), the HTTP tests and the channel/select
#    tests run under FIBER_FAULTS with 3 seeds. Each binary fails if a configured
#    fault kind never fired; the tests compare every byte they move with what
#    was sent, so a pass means the same bytes as a fault-free run. The faults a
#    user sees (reset, nobufs) are left out here and covered by
#    fiber_fault_poller_test, which expects them.
# 2. Randomised scheduling (sched/testing/random_sched.h, row T8): the channel, select,
#    mutex/condvar/WaitGroup and timer tests under 50 FIBER_SCHED_RANDOM seeds.
#
# A failure prints the seed and the command that replays it. Exits non-zero if
# anything failed. FAULT_SEEDS and RANDOM_SEEDS override the seed lists.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start )) s)"; }
failures=()

step "set-up and dev build of the test binaries"
tools/setup.sh || exit 1
cmake --preset dev >/dev/null || exit 1
grep -q "FIBER_FAULT_INJECTION:BOOL=ON" build/dev/CMakeCache.txt &&
  grep -q "FIBER_RANDOM_SCHEDULING:BOOL=ON" build/dev/CMakeCache.txt ||
  { echo "build/dev lacks FIBER_FAULT_INJECTION or FIBER_RANDOM_SCHEDULING"; exit 1; }
targets=(fiber_io_test fiber_net_test fiber_chan_test fiber_select_test fiber_sync_test
         fiber_time_test fiber_fault_poller_test fiber_random_sched_test
         http_curl_test http_protocol_test http_static_test http_shutdown_test
         http_malformed_test)
nice -n 5 cmake --build build/dev -j2 --target "${targets[@]}" >/tmp/fiber-ci-faults-build.log 2>&1 ||
  { tail -40 /tmp/fiber-ci-faults-build.log; exit 1; }
b=build/dev/tests
export FIBER_REQUIRE_IO_URING=${FIBER_REQUIRE_IO_URING:-1}

# run NAME ENV... -- CMD...: runs one binary, keeps its output, records failure.
# QUIET=1 prints nothing for a pass.
run() {
  local name=$1; shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  local log=/tmp/fiber-ci-faults-$name.log t0=$(date +%s)
  if env "${envs[@]}" timeout 300 nice -n 5 "$@" >"$log" 2>&1; then
    [[ ${QUIET:-0} == 1 ]] || echo "ok   $name ($(( $(date +%s) - t0 )) s)"
  else
    echo "FAIL $name ($(( $(date +%s) - t0 )) s); replay: ${envs[*]} $*"
    grep -E "Failure|FAILED|never fired|Which is|Expected|Actual" "$log" | head -20
    failures+=("$name")
  fi
  grep -h "^fiber: faults injected" "$log" | sed 's/^/     /'
}

step "the injector's own tests (reset and nobufs, expected by these tests)"
run fault_poller FIBER_FAULTS= -- $b/driver/fiber_fault_poller_test

io_kinds="short=0.3,eagain=0.15,eintr=0.05,delay=0.1,reorder=0.1,spurious=0.1,busy=0.1"
# curl is one outside client at a time: no second completion to reorder with.
curl_kinds="short=0.3,eagain=0.15,eintr=0.05,delay=0.1,spurious=0.1,busy=0.1"
# The shutdown tests move few bytes: with the rates above, EINTR (one wait in 20)
# or a reorder (needs two completions at once) never fired under 7 of 20 seeds.
shutdown_kinds="short=0.3,eagain=0.15,eintr=0.2,delay=0.1,reorder=0.3,spurious=0.1,busy=0.1"
# Channels and select do no I/O: only the scheduler's waits can be faulted.
sched_kinds="eintr=0.2,spurious=0.2,busy=0.2"
for seed in ${FAULT_SEEDS:-101 202 303}; do
  step "FIBER_FAULTS seed $seed"
  run "io-$seed" "FIBER_FAULTS=seed=$seed,$io_kinds" -- $b/io/fiber_io_test
  run "net-$seed" "FIBER_FAULTS=seed=$seed,$io_kinds" -- $b/io/fiber_net_test
  for t in protocol static malformed; do
    run "http-$t-$seed" "FIBER_FAULTS=seed=$seed,$io_kinds" -- $b/http/http_${t}_test
  done
  run "http-shutdown-$seed" "FIBER_FAULTS=seed=$seed,$shutdown_kinds" -- $b/http/http_shutdown_test
  run "http-curl-$seed" "FIBER_FAULTS=seed=$seed,$curl_kinds" -- $b/http/http_curl_test
  run "chan-$seed" "FIBER_FAULTS=seed=$seed,$sched_kinds" -- $b/sched/fiber_chan_test
  run "select-$seed" "FIBER_FAULTS=seed=$seed,$sched_kinds" -- $b/sched/fiber_select_test
done

step "FIBER_SCHED_RANDOM: 50 seeds over channels, select, sync and timers"
# Scheduling does not depend on the driver: odd seeds run the epoll half of each
# test, even seeds the io_uring half. The select stress (several seconds) runs
# every 5th seed.
for seed in ${RANDOM_SEEDS:-$(seq 1 50)}; do
  driver=$([ $((seed % 2)) = 0 ] && echo io_uring || echo epoll)
  skip=$([ $((seed % 5)) = 0 ] && echo "" || echo "*StressAcrossCores*")
  before=${#failures[@]} t0=$(date +%s)
  for t in chan select sync time random_sched; do
    QUIET=1 run "random-$seed-$t" "FIBER_SCHED_RANDOM=$seed" -- \
      $b/sched/fiber_${t}_test "--gtest_filter=*/$driver:-$skip"
  done
  ((${#failures[@]} == before)) && echo "ok   seed $seed ($driver$([ -z "$skip" ] && echo ", with stress"), $(( $(date +%s) - t0 )) s)"
done

step "done"
if ((${#failures[@]})); then
  echo "failed: ${failures[*]}"
  exit 1
fi
echo "all passed"
