#!/usr/bin/env bash
# Extended tier (run by hand, not from .ci/run): slow-client attacks on the HTTP demo
# (test-plan row T45). For each driver, starts the server with short timeouts and runs
# three slowhttptest attacks of 500 connections each:
#   slowloris  -H   headers never finish        -> closed by --header_timeout
#   slow body  -B   body trickles in            -> closed by --body_timeout
#   slow read  -X   a 1 MiB file read through a tiny window -> closed by --write_timeout
# During each attack a probe GET / every 0.5 s must get 200 in < 1 s. Meanwhile the
# server's established connections are sampled (ss, by client port) every 0.5 s:
# every slow connection must be gone within its timeout + 2 s. The server's peak RSS
# (VmHWM) must stay under 100 MiB, and after the attacks it must still answer and
# exit 0 on SIGINT. Prints a table; exits 1 on any failure. About 2½ minutes.
#
#   tools/ci/slow_clients.sh [build-dir]     (default build/release: cmake --preset release
#                                            && cmake --build --preset release --target http_server)
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
server=$build/examples/http/http_server
[ -x "$server" ] || { echo "slow_clients: $server is not built" >&2; exit 1; }
need=()
command -v slowhttptest >/dev/null || need+=(slowhttptest)
command -v curl >/dev/null || need+=(curl)
command -v ss >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null || { echo "slow_clients: cannot install ${need[*]}" >&2; exit 1; }
fi
ulimit -n 4096 2>/dev/null || true   # 500 slow connections plus probes, on both sides

conns=${SLOW_CONNS:-500}
length=${SLOW_LENGTH:-25}      # seconds per attack
timeout_s=5                    # header, body, write and idle timeouts
slack=2                        # a connection may outlive its timeout by this much
rss_limit_kib=$((100 * 1024))
probe_limit_ms=1000

work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/static"
head -c $((1024 * 1024)) /dev/urandom >"$work/static/big.bin"

failures=()
rows=()
fail() { failures+=("$*"); echo "slow_clients: FAILED: $*" >&2; }

start_server() {  # $1: driver; sets pid, port, url
  log=$work/server.$1.log
  "$server" --addr=127.0.0.1:0 --driver="$1" --static_dir="$work/static" \
    --header_timeout=${timeout_s}s --body_timeout=${timeout_s}s \
    --write_timeout=${timeout_s}s --idle_timeout=${timeout_s}s --grace=1s >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "serving http://" "$log" && break; sleep 0.1; done
  url=$(sed -n 's|.*serving \(http://[^/ ]*\)/.*|\1|p' "$log" | head -n 1)
  port=${url##*:}
  [ -n "$url" ]
}

# Probe GET / every 0.5 s until $work/stop exists: "code milliseconds" per line.
probe_loop() {
  while [ ! -e "$work/stop" ]; do
    curl -s -o /dev/null --max-time 3 -w '%{http_code} %{time_total}\n' "$url/" |
      awk '{ printf "%s %d\n", $1, $2 * 1000 }' >>"$1"
    sleep 0.5
  done
}

# Sample the server's established connections every 0.5 s until $work/stop exists:
# "seconds client-port" per connection per sample.
conn_loop() {
  local t0; t0=$(date +%s.%N)
  while [ ! -e "$work/stop" ]; do
    local t; t=$(date +%s.%N)
    ss -Htn state established "( sport = :$port )" 2>/dev/null |
      awk -v t="$t" -v t0="$t0" '{ n = split($NF, a, ":"); printf "%.2f %s\n", t - t0, a[n] }' >>"$1"
    echo "$t" | awk -v t0="$t0" '{ printf "%.2f -\n", $1 - t0 }' >>"$1"   # sample marker
    sleep 0.5
  done
}

run_attack() {  # $1: name, $2: driver, rest: slowhttptest arguments
  local name=$1 driver=$2; shift 2
  local probes=$work/probes.$name.$driver conns_f=$work/conns.$name.$driver out=$work/slow.$name.$driver
  : >"$probes"; : >"$conns_f"; rm -f "$work/stop"
  probe_loop "$probes" & local ppid=$!
  conn_loop "$conns_f" & local cpid=$!
  slowhttptest -c "$conns" -i 10 -r 100 -l "$length" -p 3 "$@" -g -o "$out" >"$out.log" 2>&1
  local src=$?
  sleep $((timeout_s + slack))   # let the last connections meet their deadline while sampled
  touch "$work/stop"; wait "$ppid" "$cpid"

  [ $src = 0 ] || fail "$name/$driver: slowhttptest exited with $src ($(tail -n 3 "$out.log" | tr '\n' ' '))"
  kill -0 "$pid" 2>/dev/null || fail "$name/$driver: the server died"

  local total ok maxms
  total=$(wc -l <"$probes")
  ok=$(awk -v lim=$probe_limit_ms '$1 == 200 && $2 < lim' "$probes" | wc -l)
  maxms=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$probes")
  [ "$total" -gt 0 ] && [ "$ok" = "$total" ] ||
    fail "$name/$driver: $ok of $total probes got 200 in < ${probe_limit_ms} ms (worst $(sort -k2 -n "$probes" | tail -n 1))"

  # Lifetime of each connection (by client port): last sample seen minus first, plus
  # one sampling interval. The probe's own connections are short and included.
  local stats seen late maxlife peak
  stats=$(awk -v lim=$((timeout_s + slack)) '
    $2 == "-" { if (cur > peak) peak = cur; cur = 0; next }
    { cur++; if (!($2 in first)) first[$2] = $1; last[$2] = $1 }
    END {
      n = 0; late = 0; m = 0
      for (p in first) { life = last[p] - first[p] + 0.5; n++; if (life > m) m = life; if (life > lim) late++ }
      printf "%d %d %.1f %d\n", n, late, m, peak
    }' "$conns_f")
  read -r seen late maxlife peak <<<"$stats"
  [ "$seen" -ge $((conns / 2)) ] || fail "$name/$driver: only $seen connections reached the server"
  [ "$late" = 0 ] || fail "$name/$driver: $late of $seen connections outlived ${timeout_s}s + ${slack}s (longest ${maxlife}s)"
  local left; left=$(ss -Htn state established "( sport = :$port )" | wc -l)
  [ "$left" = 0 ] || fail "$name/$driver: $left connections still open after the attack"

  local hwm; hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "${hwm:-0}" -lt $rss_limit_kib ] || fail "$name/$driver: peak RSS ${hwm} KiB >= $rss_limit_kib KiB"

  rows+=("$(printf '%-10s %-8s %8s %9s %10s %16s %9s %9s' "$name" "$driver" "$ok/$total" "${maxms}ms" \
    "$peak" "$((seen - late))/$seen" "${maxlife}s" "$((hwm / 1024))MiB")")
}

for driver in io_uring epoll; do
  start_server "$driver" || { fail "$driver: the server did not start ($(cat "$log"))"; continue; }
  echo "slow_clients: $driver: $url (pid $pid)"
  run_attack slowloris "$driver" -H -u "$url/"
  run_attack slow-body "$driver" -B -s 8192 -u "$url/echo"
  run_attack slow-read "$driver" -X -k 4 -w 10 -y 20 -n 3 -z 32 -u "$url/static/big.bin"

  code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$url/")
  [ "$code" = 200 ] || fail "$driver: GET / after the attacks: $code"
  kill -INT "$pid"
  rc=0; wait "$pid" || rc=$?
  pid=""
  [ $rc = 0 ] || fail "$driver: the server exited with $rc after SIGINT ($(tail -n 5 "$log" | tr '\n' ' '))"
done

echo
printf '%-10s %-8s %8s %9s %10s %16s %9s %9s\n' attack driver probes max-probe peak-conns "closed-in-$((timeout_s + slack))s" longest peak-RSS
for r in "${rows[@]}"; do echo "$r"; done
echo
if [ ${#failures[@]} -gt 0 ]; then
  printf 'slow_clients: FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "slow_clients: OK"
