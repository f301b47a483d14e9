#!/usr/bin/env bash
# CI step for the Relacy models (tests/model, test plan row T7): installs
# relacy-dev if missing, builds the models in build/models, runs every model
# (Relacy must find nothing) and every -DBUGGY mutant (Relacy must report the
# failure the mutant is written to cause). Exits non-zero on any failure.
#
# Usage: tools/ci/models.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/../.."

models=(park_doorbell inbox chan_select wait_group mutex_handoff timer_stop)
build=build/models
bin=$build/tests/model
per_run_timeout=180  # seconds; each model takes well under a minute here

say() { echo "models: $*"; }

if [ "${1:-}" != "--no-build" ]; then
  # The top-level CMakeLists.txt needs the project's packages even for the models.
  tools/setup.sh
  if ! dpkg-query -W -f='${Status}' relacy-dev 2>/dev/null | grep -q "install ok installed"; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    say "installing relacy-dev"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends relacy-dev \
      >/dev/null || { $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        relacy-dev >/dev/null; }
  fi
  say "configuring $build (FIBER_BUILD_MODELS=ON, no tests, no examples)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE= -DFIBER_BUILD_MODELS=ON -DFIBER_BUILD_TESTS=OFF \
    -DFIBER_BUILD_EXAMPLES=OFF -DFIBER_WERROR=ON >/dev/null
  say "building the models and their mutants (-j2)"
  nice -n 5 cmake --build "$build" --target models -j2 >/dev/null
fi

failures=()
start_all=$SECONDS
for m in "${models[@]}"; do
  say "$m: must pass"
  t0=$SECONDS
  if timeout "$per_run_timeout" "$bin/model_$m"; then
    say "$m: passed in $((SECONDS - t0)) s"
  else
    say "FAILED: $m: Relacy reported a failure (rerun $bin/model_$m --history for the trace)"
    failures+=("$m")
  fi
  mutants=("$bin/model_${m}"_buggy*)
  if [ ! -x "${mutants[0]}" ]; then
    say "FAILED: $m has no -DBUGGY mutant built"
    failures+=("$m (no mutant)")
    continue
  fi
  for mutant in "${mutants[@]}"; do
    name=$(basename "$mutant")
    say "$name: must fail"
    if timeout "$per_run_timeout" "$mutant" --expect-failure; then
      say "$name: failed as it must"
    else
      say "FAILED: $name: the mutant was not caught as expected (Relacy cannot see this bug)"
      failures+=("$name")
    fi
  done
done

if [ ${#failures[@]} -ne 0 ]; then
  say "${#failures[@]} failure(s): ${failures[*]}"
  exit 1
fi
say "all ${#models[@]} models passed and all their mutants failed ($((SECONDS - start_all)) s)"
