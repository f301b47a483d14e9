#!/usr/bin/env bash
# Before/after micro benchmarks with the two builds interleaved, so that drift
# of the machine falls on both alike:
#   tools/bench_support/ab_micro.sh ROUNDS BUILD_DIR BASE_BUILD_DIR [FILTER]
# Each round runs runtime_bench and chan_bench of each build (3 repetitions,
# pinned to CPU 0) and keeps their medians; the table gives, per benchmark, the
# median over the rounds of each build and the ratio. FILTER is a Google
# Benchmark regex (default: yield, spawn + join, mutex, one-core ping-pong).
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,8p "$0"; exit 2; }
rounds=$1 new=$2 base=$3
filter=${4:-'BM_YieldSwitch|BM_SpawnJoin|BM_MutexUncontended|BM_ChanPingPongOneCore'}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$rounds"); do
  for b in "$new" "$base"; do
    for bin in runtime_bench chan_bench; do
      taskset -c 0 "$b/tools/micro/$bin" --benchmark_filter="$filter" --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true --benchmark_format=csv 2>/dev/null |
        awk -F, -v b="$b" '$1 ~ /_median"?$/ {gsub(/"/, "", $1); print b "," $1 "," $3}' >>"$out"
    done
  done
done
python3 - "$out" "$new" "$base" <<'PY'
import collections, csv, statistics, sys
rows = collections.defaultdict(list)
for build, name, ns in csv.reader(open(sys.argv[1])):
    rows[(name.replace("_median", ""), build)].append(float(ns))
new, base = sys.argv[2], sys.argv[3]
print(f"| benchmark | {new} ns | {base} ns | ratio |")
print("| --- | ---: | ---: | ---: |")
for name in sorted({n for n, _ in rows}):
    a, b = statistics.median(rows[(name, new)]), statistics.median(rows[(name, base)])
    print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.3f} |")
PY
