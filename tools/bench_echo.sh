#!/usr/bin/env bash
# Side-by-side echo benchmark (the full benchmark tool is a later issue): our echo
# server on io_uring and on epoll, and the Go echo peer (GOMAXPROCS=1), each on
# CPU 0, loaded by echo_load on CPU 1, in turns (A B C A B C ...), ROUNDS rounds.
# Prints, per server, the median messages/s and the median server CPU time per
# message (utime+stime from /proc/PID/stat), and the ratios to Go.
#
#   tools/bench_echo.sh [connections=100] [size=64] [seconds=5] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-100} size=${2:-64} secs=${3:-5} rounds=${4:-3}
tools/setup.sh
command -v go >/dev/null || { echo "bench_echo: needs golang-go (apt-get install golang-go)" >&2; exit 2; }
cmake --preset release >/dev/null
cmake --build --preset release --target echo echo_load >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd tools/peers/go_echo && GOCACHE="$work/gocache" go build -o "$work/go_echo" .)
tick=$(getconf CLK_TCK)
port=9300

run_one() {  # name, command...: prints "msgs_per_s cpu_us_per_msg"
  local name=$1
  shift
  port=$((port + 1))
  taskset -c 0 "$@" --addr=127.0.0.1:$port >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  local t0 t1 out
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  out=$(build/release/tools/load/echo_load --addr=127.0.0.1:$port --connections="$conns" \
        --size="$size" --duration="${secs}s" --cpu=1)
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill -TERM $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  local msgs rate
  msgs=$(sed -n 's/.* messages=\([0-9]*\).*/\1/p' <<<"$out")
  rate=$(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<<"$out")
  echo "$name $rate $(awk -v t=$((t1 - t0)) -v hz="$tick" -v m="$msgs" 'BEGIN{printf "%.2f", t/hz*1e6/m}')"
}

results="$work/results"
for round in $(seq "$rounds"); do
  run_one fiber_io_uring build/release/examples/echo --cores=1 --driver=io_uring >>"$results"
  run_one fiber_epoll build/release/examples/echo --cores=1 --driver=epoll >>"$results"
  GOMAXPROCS=1 run_one go "$work/go_echo" >>"$results"
done

echo "echo benchmark: $conns connections, $size-byte messages, ${secs}s x $rounds rounds," \
     "server on CPU 0, client on CPU 1; $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo |
     cut -d: -f2 | xargs), kernel $(uname -r), $(date -u +%F)"
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
go_rate=$(awk '$1=="go"{print $2}' "$results" | median)
go_cpu=$(awk '$1=="go"{print $3}' "$results" | median)
printf "%-16s %12s %14s %10s %12s\n" server msgs/s cpu_us/msg "vs go" "cpu vs go"
for name in fiber_io_uring fiber_epoll go; do
  rate=$(awk -v n=$name '$1==n{print $2}' "$results" | median)
  cpu=$(awk -v n=$name '$1==n{print $3}' "$results" | median)
  printf "%-16s %12s %14s %10s %12s\n" "$name" "$rate" "$cpu" \
    "$(awk -v a="$rate" -v b="$go_rate" 'BEGIN{printf "%.2fx", a/b}')" \
    "$(awk -v a="$cpu" -v b="$go_cpu" 'BEGIN{printf "%.2fx", a/b}')"
done
