#!/usr/bin/env bash
# By-hand tier (RELIABILITY.md row T5; not in .ci/run): a valgrind memcheck subset.
#
# Builds build/valgrind (-O1 -gdwarf-4: valgrind 3.19 cannot read DWARF 5;
# FIBER_VALGRIND=ON: fiber stacks are registered with VALGRIND_STACK_REGISTER
# and io_uring completions mark the bytes the kernel wrote as defined) and runs
# the stack, runtime, channel, select, sync and echo tests under
#   valgrind --error-exitcode=9 --track-origins=yes --leak-check=full
# Each run must exit 0, end with "ERROR SUMMARY: 0 errors" and print no
# "client switching stacks" line.
#
# Epoll driver only: under valgrind 3.19 the io_uring half hangs in its first
# test. --trace-syscalls shows the scheduler blocked in io_uring_enter
# (GETEVENTS), which valgrind runs as a syscall that does not block, holding its
# one big lock, so the thread that would ring the doorbell never runs. The
# */io_uring tests are filtered out. Left out too: the tests that keep tens of
# thousands of fibers alive (valgrind's VG_N_SEGMENTS map limit is fatal) and
# the accept-at-the-fd-limit test (valgrind keeps fds of its own near the
# limit; it hangs); the suite runs them natively and under ASan. valgrind 3.19
# does not know epoll_pwait2: one "unhandled syscall: 441" warning per
# scheduler, then the driver uses epoll_wait.
# About 2 minutes on 2 cores. Logs: /tmp/fiber-vg-NAME.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start )) s)"; }
failures=()

command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }

step "configure and build build/valgrind"
cmake -S . -B build/valgrind -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS='-O1 -gdwarf-4' \
  -DFIBER_VALGRIND=ON -DFIBER_BUILD_EXAMPLES=OFF >/tmp/fiber-vg-configure.log 2>&1 ||
  { tail -20 /tmp/fiber-vg-configure.log; exit 1; }
targets=(fiber_stack_test fiber_runtime_test fiber_chan_test fiber_select_test fiber_sync_test
         fiber_net_test)
nice -n 5 cmake --build build/valgrind -j2 --target "${targets[@]}" >/tmp/fiber-vg-build.log 2>&1 ||
  { tail -40 /tmp/fiber-vg-build.log; exit 1; }
b=build/valgrind/tests

# run NAME BINARY FILTER: one binary under memcheck. SIGKILL on timeout: a
# valgrind blocked in a syscall ignores SIGTERM.
run() {
  local name=$1 bin=$2 filter=$3 log=/tmp/fiber-vg-$1.log t0=$(date +%s)
  timeout -s KILL 600 nice -n 5 valgrind --error-exitcode=9 --track-origins=yes \
    --leak-check=full "$bin" "--gtest_filter=$filter" >"$log" 2>&1
  local rc=$? summary
  summary=$(grep -h "ERROR SUMMARY" "$log" | tail -1 | sed 's/^==[0-9]*== //')
  local tests
  tests=$(grep -h "^\[  PASSED  \]" "$log" | sed 's/^\[  PASSED  \] //')
  if ((rc == 0)) && [[ $summary == "ERROR SUMMARY: 0 errors"* ]] &&
     ! grep -q "client switching stacks" "$log"; then
    echo "ok   $name ($(( $(date +%s) - t0 )) s; ${tests:-?}; $summary)"
  else
    echo "FAIL $name (exit $rc, $(( $(date +%s) - t0 )) s; ${summary:-no summary}); log $log"
    grep -hE "client switching stacks|FAILED|Failure|^==[0-9]+== [A-Z]" "$log" | head -20
    failures+=("$name")
  fi
}

step "memcheck, epoll driver"
run stack "$b/fiber/fiber_stack_test" '*'
run runtime "$b/sched/fiber_runtime_test" \
  'RuntimeOutside*:*/epoll:-*HundredThousand*:*SpawnStorm*'
run chan "$b/sched/fiber_chan_test" '*/epoll'
run select "$b/sched/fiber_select_test" '*/epoll'
run sync "$b/sched/fiber_sync_test" '*/epoll'
run echo "$b/io/fiber_net_test" '*/epoll:-*AcceptAtTheFdLimit*'

step "done"
if ((${#failures[@]})); then
  echo "failed: ${failures[*]}"
  exit 1
fi
echo "all passed"
