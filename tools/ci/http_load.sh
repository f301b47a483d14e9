#!/usr/bin/env bash
# CI: load smoke of the HTTP demo (test-plan row T46). For each driver, starts the
# server from the given build (default: the ASan+UBSan build, so a memory error
# under concurrency and pipelining fails the run), then
#   wrk -t1 -c100 -d10s                       keep-alive GETs
#   h2load --h1 -n100000 -c100 -m10           10 pipelined requests per connection
#   ab -k -n10000 -c50                         HTTP/1.0 with keep-alive
# and requires 0 errors from each, then SIGINT and exit 0 with no sanitizer report.
#
#   tools/ci/http_load.sh [build-dir]      (after tools/test.sh asan)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/asan}
server=$build/examples/http/http_server
[ -x "$server" ] || { echo "http_load: $server is not built" >&2; exit 1; }
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v ab >/dev/null || need+=(apache2-utils)
if [ ${#need[@]} -gt 0 ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null
fi

fail() { echo "http_load: FAILED: $*" >&2; [ -f "${log:-}" ] && cat "$log" >&2; exit 1; }

for driver in io_uring epoll; do
  log=$(mktemp)
  ASAN_OPTIONS=abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$server" --addr=127.0.0.1:0 --driver=$driver >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "serving http://" "$log" && break; sleep 0.1; done
  url=$(sed -n 's|.*serving \(http://[^/ ]*\)/.*|\1|p' "$log" | head -n 1)
  [ -n "$url" ] || fail "$driver: the server did not start"

  out=$(wrk -t1 -c100 -d10s "$url/")
  echo "$out"
  if grep -qE "Socket errors|Non-2xx" <<<"$out"; then fail "$driver: wrk saw errors"; fi
  grep -q "Requests/sec" <<<"$out" || fail "$driver: wrk printed no rate"

  out=$(h2load --h1 -n100000 -c100 -m10 "$url/")
  echo "$out" | grep -E "^(finished|requests|status codes):"
  grep -qE "^requests: 100000 total, 100000 started, 100000 done, 100000 succeeded, 0 failed, 0 errored" <<<"$out" ||
    fail "$driver: h2load: $(grep '^requests:' <<<"$out")"
  grep -qE "^status codes: 100000 2xx" <<<"$out" || fail "$driver: h2load: $(grep '^status codes:' <<<"$out")"

  # ab speaks HTTP/1.0: every connection lives only by its Connection: keep-alive.
  out=$(ab -k -n10000 -c50 "$url/" 2>&1) || fail "$driver: ab failed: $out"
  echo "$out" | grep -E "^(Complete|Failed|Keep-Alive) requests:"
  grep -qE "^Complete requests: +10000$" <<<"$out" || fail "$driver: ab: $(grep '^Complete' <<<"$out")"
  grep -qE "^Failed requests: +0$" <<<"$out" || fail "$driver: ab: $(grep -A4 '^Failed' <<<"$out")"
  grep -qE "^Keep-Alive requests: +10000$" <<<"$out" || fail "$driver: ab: $(grep '^Keep-Alive' <<<"$out")"
  if grep -q "Non-2xx" <<<"$out"; then fail "$driver: ab: $(grep 'Non-2xx' <<<"$out")"; fi

  kill -INT $pid
  rc=0; wait $pid || rc=$?
  [ $rc = 0 ] || fail "$driver: the server exited with $rc after SIGINT"
  if grep -qE "ERROR: (Address|Undefined|Leak)Sanitizer|runtime error:" "$log"; then fail "$driver: sanitizer report"; fi
  echo "http_load: $driver: 0 errors"
  rm -f "$log"
done
