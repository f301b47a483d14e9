#!/usr/bin/env bash
# CI: real syscall error paths without code changes (test-plan rows T37, T38).
#   T38  io_uring refused (io_uring_setup fails with ENOSYS, then EPERM): the echo
#        server falls back to epoll, says so, and serves;
#   T37  strace injects errors into the syscalls each driver makes while
#        echo_load runs (every echoed byte is checked): EINTR into epoll_pwait2
#        and ECONNABORTED into accept4 (epoll driver); EINTR, EAGAIN and EBUSY
#        into io_uring_enter (io_uring driver). The run must be error-free and
#        strace must show that each injection happened. Not injected: EAGAIN into
#        a recv with data waiting, which no kernel does (under edge-triggered
#        epoll it would wait for an edge that never comes, as Go's poller would).
#
#   tools/ci/strace_faults.sh [build-dir]    (default build/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
echo_bin=$build/examples/echo
load=$build/tools/load/echo_load
for b in "$echo_bin" "$load"; do [ -x "$b" ] || { echo "strace_faults: $b is not built" >&2; exit 1; }; done
command -v strace >/dev/null || {
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -qq strace >/dev/null
}

port=9561
fail() { echo "strace_faults: FAILED: $*" >&2; [ -f "${trace:-}" ] && tail -n 20 "$trace" >&2; exit 1; }

# run_case NAME DRIVER EXPECT_IN_OUTPUT STRACE_ARGS...: the echo server under
# strace with the given injections, loaded for 2 s, then SIGINT.
run_case() {
  local name=$1 driver=$2 expect=$3
  shift 3
  trace=$(mktemp)
  out=$(mktemp)
  strace -f -qq -o "$trace" "$@" "$echo_bin" --addr=127.0.0.1:$port --cores=2 --driver=$driver >"$out" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening" "$out" && break; sleep 0.1; done
  grep -q "listening" "$out" || { cat "$out" >&2; fail "$name: the server did not start"; }
  grep -q -- "$expect" "$out" || { cat "$out" >&2; fail "$name: expected '$expect' in the server's output"; }
  "$load" --addr=127.0.0.1:$port --connections=20 --size=512 --duration=2s ||
    fail "$name: echo_load saw errors"
  # The signal goes to the server itself (strace in a background job of a
  # non-interactive shell ignores SIGINT); strace exits with the server's status.
  kill -INT "$(pgrep -P $pid)"
  local rc=0
  wait $pid || rc=$?
  [ $rc = 0 ] || { cat "$out" >&2; fail "$name: exit $rc after SIGINT"; }
  echo "strace_faults: $name: ok ($(grep -c INJECTED "$trace" || true) injected errors)"
}

# injected NAME SYSCALL ERR: strace's log shows that ERR was injected into SYSCALL.
injected() {
  grep -E "^[0-9]+ +$2\(.*= -1 $3 .*\(INJECTED\)" "$trace" >/dev/null ||
    fail "$1: no $3 was injected into $2"
}

for err in ENOSYS EPERM; do
  run_case "io_uring_setup -> $err" auto "epoll" -e trace=io_uring_setup -e inject=io_uring_setup:error=$err
  injected "fallback" io_uring_setup $err
done

run_case "epoll driver" epoll "epoll" -e trace=epoll_pwait2,accept4 \
  -e inject=epoll_pwait2:error=EINTR:when=2+5 \
  -e inject=accept4:error=ECONNABORTED:when=3+7
injected "epoll driver" epoll_pwait2 EINTR
injected "epoll driver" accept4 ECONNABORTED

for err in EINTR EAGAIN EBUSY; do
  run_case "io_uring_enter -> $err" io_uring "io_uring" -e trace=io_uring_enter \
    -e inject=io_uring_enter:error=$err:when=2+3
  injected "io_uring driver" io_uring_enter $err
done
echo "strace_faults: all cases passed"
