#!/usr/bin/env bash
# Builds (Release) and runs the main job: the HTTP/1.1 demo server
# (examples/http), on 127.0.0.1:8080 with every core and the driver picked
# automatically, until Ctrl-C. Extra arguments go to the server (e.g.
# --addr=0.0.0.0:8080 --driver=epoll --static_dir=./www).
#
#   tools/demo.sh --smoke [server args]   (or DEMO_SMOKE=1 tools/demo.sh)
# starts it on a free port instead, checks GET /, GET /stats and POST /echo with
# curl, sends SIGINT and requires a clean exit 0: the non-interactive run for CI.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke="${DEMO_SMOKE:-0}"
if [ "${1:-}" = "--smoke" ]; then
  smoke=1
  shift
fi

tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target http_server
server=build/release/examples/http/http_server

if [ "$smoke" != "1" ]; then
  echo "demo: http://127.0.0.1:8080/ (unless --addr says otherwise); Ctrl-C stops it"
  echo "demo: try  curl http://127.0.0.1:8080/  ·  curl http://127.0.0.1:8080/stats  ·  curl --data hi http://127.0.0.1:8080/echo"
  exec "$server" "$@"
fi

# ---- smoke run -------------------------------------------------------------------
# Port 0: the kernel picks a free port; the server prints the URL it serves.
log=$(mktemp)
"$server" --addr=127.0.0.1:0 "$@" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT
fail() {
  echo "demo smoke: FAILED: $*" >&2
  echo "--- server output ---" >&2
  cat "$log" >&2
  exit 1
}

# Wait for the listening line (bounded: 10 s), or for the server to die.
for _ in $(seq 100); do
  grep -q "serving http://" "$log" && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited before listening"
  sleep 0.1
done
grep -q "serving http://" "$log" || fail "the server did not start listening within 10 s"
cat "$log"
url=$(sed -n 's|.*serving \(http://[^/ ]*\)/.*|\1|p' "$log" | head -n 1)
[ -n "$url" ] || fail "no URL in the server's output"

body=$(curl -sS --max-time 10 "$url/") || fail "GET / did not answer"
[ "$body" = "Hello, World!" ] || fail "GET / answered '$body'"
echo "demo smoke: GET / -> $body"

stats=$(curl -sS --max-time 10 "$url/stats") || fail "GET /stats did not answer"
case "$stats" in
  *'"driver":'*'"schedulers":[{'*'"fibers_alive":'*) ;;
  *) fail "GET /stats answered '$stats'" ;;
esac
echo "demo smoke: GET /stats -> $stats"

echoed=$(curl -sS --max-time 10 --data-binary 'ping from the smoke test' "$url/echo") ||
  fail "POST /echo did not answer"
[ "$echoed" = "ping from the smoke test" ] || fail "POST /echo answered '$echoed'"
echo "demo smoke: POST /echo -> $echoed"

kill -INT "$pid"
# Bounded wait for the exit (the grace period is 5 s by default).
for _ in $(seq 150); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "the server did not exit within 15 s of SIGINT"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || fail "the server exited with $status after SIGINT"
tail -n 2 "$log"
echo "demo smoke: OK (exit 0 after SIGINT)"
