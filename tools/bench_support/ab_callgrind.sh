#!/usr/bin/env bash
# Instructions per HTTP request of the scheduler thread, two builds compared:
#   tools/bench_support/ab_callgrind.sh BUILD_DIR BASE_BUILD_DIR [CONNECTIONS]
# Runs each build's examples/http/http_server (one core, epoll: valgrind cannot
# run the io_uring driver, see tools/ci/valgrind.sh) under callgrind with one
# file per thread, drives it with h2load --h1 for 20,000 and then 60,000
# requests, and divides the difference of the scheduler thread's instruction
# counts by 40,000, which leaves out start-up, shut-down and the other threads
# (the monitor, whose 1 ms ticks valgrind's slowness would multiply). Counts
# leave out the kernel's share. They are exact for one run, but how many
# requests a loop turn serves depends on timing, so the absolute figure moves
# by a few percent with the machine's load; the ratio of two builds run one
# after the other moves far less than their CPU times do.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,11p "$0"; exit 2; }
new=$1 base=$2 conns=${3:-100}
command -v valgrind >/dev/null && command -v h2load >/dev/null ||
  { echo "ab_callgrind: needs valgrind and h2load (nghttp2-client)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count BUILD N: prints the scheduler thread's instruction count for N requests.
count() {
  local build=$1 n=$2 port=$((20000 + RANDOM % 20000)) pid
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg.out" \
    "$build/examples/http/http_server" --addr=127.0.0.1:$port --cores=1 --driver=epoll \
    >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  h2load --h1 -n "$n" -c "$conns" "http://127.0.0.1:$port/" >"$work/h2load.log" 2>&1
  grep -q "$n succeeded" "$work/h2load.log" || { echo "ab_callgrind: h2load failed" >&2; cat "$work/h2load.log" >&2; exit 1; }
  kill -INT $pid
  wait $pid
  # Thread 1 is fiber::run()'s caller; thread 2 is the scheduler of core 0.
  awk '/^summary:/ {print $2}' "$work/cg.out-02"
  rm -f "$work"/cg.out*
}

echo "| build | instructions per request, scheduler thread (C=$conns, epoll) |"
echo "| --- | ---: |"
for b in "$new" "$base"; do
  small=$(count "$b" 20000)
  big=$(count "$b" 60000)
  echo "| $b | $(( (big - small) / 40000 )) |"
done
