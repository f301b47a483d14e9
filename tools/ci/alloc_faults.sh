#!/usr/bin/env bash
# CI: allocation failures (RELIABILITY.md T39). alloc_probe starts a two-core
# runtime, makes channels and spawns fibers (locally, on the other core,
# joinable); strace makes its mmap() calls fail with ENOMEM:
#   once:    the Nth mmap() of each thread fails, N = 1..$max;
#   for good: every mmap() of each thread from the Nth on fails, N = 1..$max.
# That reaches fiber stacks, scheduler threads' stacks (pthread_create),
# io_uring rings, malloc's per-thread arenas and large channel buffers. Every
# run must end either well (exit 0) or with the runtime's error as an
# exception carrying a message (exit 3, "alloc_probe: error: ..."); a signal, a
# hang (killed after $limit s) or any other status fails. The probe stops
# itself until strace has attached, so the loader's mmap()s are not counted.
#
#   tools/ci/alloc_faults.sh [build-dir]    (default build/dev; needs ptrace
#   attach rights: root, or kernel.yama.ptrace_scope = 0; about 10 s)
# A sanitizer build is skipped: its allocator aborts on a refused mmap().
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/dev}
probe=$build/tests/reliability/alloc_probe
max=${ALLOC_FAULTS_MAX:-16}
limit=30
[ -x "$probe" ] || { echo "alloc_faults: $probe is not built" >&2; exit 1; }
command -v strace >/dev/null || {
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -qq strace >/dev/null
}
if grep -qa -e __asan_init -e __tsan_init "$probe"; then
  # ASan's operator new reports "allocator is out of memory" and exits when an
  # mmap() fails, whatever allocator_may_return_null says: nothing to learn.
  echo "alloc_faults: SKIPPED: $probe is built with a sanitizer, whose allocator aborts on ENOMEM" >&2
  exit 0
fi
scope=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)
if [ "$(id -u)" != 0 ] && [ "$scope" != 0 ]; then
  echo "alloc_faults: SKIPPED: attaching strace needs root or kernel.yama.ptrace_scope = 0" >&2
  exit 0
fi

failures=0
fail() { echo "alloc_faults: FAILED: $*" >&2; failures=$((failures + 1)); }

# state PID: the process state letter from /proc (T: stopped), or nothing.
state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true; }

# run_case WHEN: one run of the probe with mmap() failing at WHEN (strace's
# syntax: "3" the third call, "3+" the third and every later one).
run_case() {
  local when=$1 out trace pid spid rc=0
  out=$(mktemp)
  trace=$(mktemp)
  "$probe" --stop-first >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 500); do [ "$(state $pid)" = T ] && break; sleep 0.01; done
  strace -f -qq -o "$trace" -p "$pid" -e trace=mmap -e inject=mmap:error=ENOMEM:when="$when" &
  spid=$!
  for _ in $(seq 500); do
    [ "$(awk '/^TracerPid/{print $2}' "/proc/$pid/status" 2>/dev/null)" != 0 ] && break
    sleep 0.01
  done
  kill -CONT "$pid"
  # A hang is a failure: poll for the end (a zombie has ended), then kill.
  for _ in $(seq $((limit * 20))); do
    case $(state "$pid") in "" | Z) break ;; esac
    sleep 0.05
  done
  case $(state "$pid") in "" | Z) ;; *) kill -KILL "$pid" 2>/dev/null || true ;; esac
  wait "$pid" || rc=$?
  wait "$spid" 2>/dev/null || true
  local injected
  injected=$(grep -c INJECTED "$trace" || true)
  local what
  what=$(grep -m1 "alloc_probe:" "$out" || true)
  case $rc in
    0) [ "$what" = "alloc_probe: ok" ] || fail "when=$when: exit 0 without 'ok'" ;;
    3) [[ $what == "alloc_probe: error: "?* ]] || fail "when=$when: exit 3 without a message" ;;
    137) fail "when=$when: hung (killed after ${limit} s)" ;;
    *) fail "when=$when: exit status $rc" ;;
  esac
  if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
    sed 's/^/    /' "$out" | tail -n 20 >&2
    grep INJECTED "$trace" | head -n 5 | sed 's/^/    /' >&2
  fi
  echo "alloc_faults: when=$when: $injected injected, exit $rc: ${what:-(no message)}"
  rm -f "$out" "$trace"
}

start=$(date +%s)
for n in $(seq "$max"); do run_case "$n"; done
for n in $(seq "$max"); do run_case "$n+"; done
echo "alloc_faults: $((2 * max)) runs in $(($(date +%s) - start)) s, $failures failed"
[ "$failures" = 0 ]
