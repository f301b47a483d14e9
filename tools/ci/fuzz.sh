#!/usr/bin/env bash
# CI step for the libFuzzer targets (fuzz/README.md; test plan T47, T48).
#   tools/ci/fuzz.sh [seconds]     (default 60 per target)
# Installs clang and libFuzzer if missing, builds build/fuzz with clang
# (-fsanitize=fuzzer,address,undefined; the runtime and llhttp with
# fuzzer-no-link,address,undefined), replays every regression seed and corpus
# file, then fuzzes each target for the given time over its corpus plus the
# regression seeds. Exits non-zero on any crash, sanitizer report, oracle
# failure, timeout or OOM.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
targets=(http_request chan_script)
start=$(date +%s)
say() { echo "fuzz.sh [$(( $(date +%s) - start )) s]: $*"; }

say "installing what is missing (tools/setup.sh, then clang-14 and libFuzzer)"
tools/setup.sh
need=()
for p in clang-14 libclang-rt-14-dev libclang-common-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  say "apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

say "configuring build/fuzz (clang-14, Debug -O1, address+undefined, fuzzer-no-link)"
CC=clang-14 CXX=clang++-14 cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug \
  -DFIBER_BUILD_TESTS=OFF -DFIBER_BUILD_EXAMPLES=ON -DFIBER_BUILD_FUZZERS=ON \
  -DFIBER_SANITIZE=address,undefined \
  "-DCMAKE_C_FLAGS=-O1 -g -fsanitize=fuzzer-no-link" \
  "-DCMAKE_CXX_FLAGS=-O1 -g -fsanitize=fuzzer-no-link" >/dev/null
say "building ${targets[*]/%/_fuzz}"
cmake --build build/fuzz -j2 --target "${targets[@]/%/_fuzz}"

for t in "${targets[@]}"; do
  bin=build/fuzz/fuzz/${t}_fuzz
  seeds=(fuzz/corpus/$t fuzz/regressions/$t)
  mapfile -t files < <(find "${seeds[@]}" -type f ! -name '.*' | sort)
  say "$t: replaying ${#files[@]} corpus and regression files"
  "$bin" -runs=1 "${files[@]}" >build/fuzz/$t.replay.log 2>&1 || {
    cat build/fuzz/$t.replay.log
    say "$t: FAILED on a corpus or regression file"
    exit 1
  }

  work=build/fuzz/corpus/$t
  artifacts=build/fuzz/artifacts/$t
  mkdir -p "$work" "$artifacts"
  say "$t: fuzzing for $seconds s (new inputs go to $work, crashes to $artifacts/)"
  if ! "$bin" -max_total_time="$seconds" -timeout=2 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$work" "${seeds[@]}" >build/fuzz/$t.log 2>&1; then
    tail -n 60 build/fuzz/$t.log
    say "$t: FAILED; reproduce with: $bin $artifacts/<file>, then keep the file in fuzz/regressions/$t/"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/$t.log)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' build/fuzz/$t.log)
  cov=$(grep -E '^#[0-9]+' build/fuzz/$t.log | grep -o 'cov: [0-9]*' | tail -1)
  say "$t: ok, $runs runs, $rate exec/s, $cov"
done
say "all fuzz targets passed"
