#!/usr/bin/env python3
"""Runs the side-by-side benchmarks for tools/bench and writes the results.

Started by tools/bench once everything is built; see `tools/bench --help`.
Stdlib only. Every server it starts is recorded in <work>/pids (one pid a
line) so that tools/bench's trap can stop it even if this process is killed.
"""
import argparse
import csv
import datetime
import json
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:5.0f}s] {msg}", flush=True)


def cpu_count(cpus):
    n = 0
    for part in cpus.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            n += int(hi) - int(lo) + 1
        else:
            n += 1
    return n


def first_cpu(cpus):
    return int(re.split("[,-]", cpus)[0])


# ---------------------------------------------------------------- processes

class Server:
    """One server process, pinned with taskset, stopped by stop()."""

    def __init__(self, ctx, name, argv, env=None, port=None):
        self.ctx, self.name, self.argv = ctx, name, argv
        self.port = port if port is not None else ctx.next_port()
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None

    def start(self):
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        logf = open(os.path.join(self.ctx.logdir, f"{self.name}.log"), "ab")
        logf.write(("\n$ " + " ".join(shlex.quote(a) for a in argv) + "\n").encode())
        logf.flush()
        self.proc = subprocess.Popen(["taskset", "-c", self.ctx.server_cpus] + argv,
                                     stdout=logf, stderr=subprocess.STDOUT, env=self.env,
                                     stdin=subprocess.DEVNULL)
        with open(self.ctx.pidfile, "a") as f:
            f.write(f"{self.proc.pid}\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start (code {self.proc.returncode}); "
                                   f"see {logf.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                self.ctx.kernel_apis.setdefault(self.name, self.kernel_apis())
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on port {self.port} within 10 s")

    def kernel_apis(self):
        """Which event interfaces the process holds open: io_uring, epoll (fd links)."""
        found = set()
        try:
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                except OSError:
                    continue
                if "io_uring" in link:
                    found.add("io_uring")
                elif "eventpoll" in link:
                    found.add("epoll")
        except OSError:
            return "?"
        return "+".join(sorted(found)) or "neither"

    @property
    def pid(self):
        return self.proc.pid

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])  # utime, stime

    def status_kib(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return -1

    def reset_peak(self):
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_load(ctx, argv, timeout):
    """Runs a load generator pinned to the load CPUs; returns its stdout."""
    full = ["timeout", "-k", "5", str(int(timeout)), "taskset", "-c", ctx.load_cpus] + argv
    r = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"load failed ({r.returncode}): {' '.join(full)}\n{r.stderr[-2000:]}")
    return r.stdout


def parse_echo_load(out):
    kv = dict(re.findall(r"(\w+)=([0-9.]+)", out))
    return {"rate": float(kv["msgs_per_s"]), "ops": int(kv["messages"]),
            "p50_us": float(kv["p50_us"]), "p99_us": float(kv["p99_us"]),
            "errors": int(kv.get("errors", 0))}


def wrk_time_us(s):
    m = re.match(r"([0-9.]+)(us|ms|s|m)$", s)
    v, unit = float(m.group(1)), m.group(2)
    return v * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[unit]


def parse_wrk(out):
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    ops = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = wrk_time_us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = wrk_time_us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return {"rate": rate, "ops": ops, "p50_us": p50, "p99_us": p99, "errors": errors}


def measure(ctx, server, load_argv, parse, timeout):
    """One counted (or warm-up) load run against a started server."""
    peak_ok = server.reset_peak()
    u0, s0 = server.cpu_ticks()
    out = run_load(ctx, load_argv, timeout)
    u1, s1 = server.cpu_ticks()
    res = parse(out)
    ops = max(res["ops"], 1)
    res["user_s_100k"] = (u1 - u0) / HZ / ops * 1e5
    res["sys_s_100k"] = (s1 - s0) / HZ / ops * 1e5
    res["cpu_s_100k"] = res["user_s_100k"] + res["sys_s_100k"]
    res["peak_rss_kib"] = server.status_kib("VmHWM") if peak_ok else -1
    return res


# ---------------------------------------------------------------- context

class Ctx:
    def __init__(self, a):
        self.a = a
        self.root = a.root
        self.rel = a.build
        self.peers = a.peers
        self.server_cpus, self.load_cpus = a.server_cpus, a.load_cpus
        self.ncores = cpu_count(a.server_cpus)
        self.work = a.work
        self.logdir = os.path.join(self.work, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.pidfile = os.path.join(self.work, "pids")
        self.port = 20000 + (os.getpid() % 2000) * 10
        self.raw = []       # every counted run: dict
        self.notes = []     # lines for the report
        self.skipped = []
        self.kernel_apis = {}  # server -> "io_uring", "epoll", ... (fds open once listening)
        self.loadavgs = {}  # suite -> 1-minute load average at the start of each round

    def next_port(self):
        while True:
            self.port += 1
            if self.port > 60000:
                self.port = 20000
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                    return self.port
                except OSError:
                    continue


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


# ---------------------------------------------------------------- suites

def builds(ctx):
    """(server name prefix, release build folder): ours, then the baseline's."""
    out = [("fiber", ctx.rel)]
    if ctx.a.baseline:
        out.append(("base", ctx.a.baseline))
    return out


def echo_servers(ctx):
    n = ctx.ncores
    p = ctx.peers
    servers = []
    for prefix, rel in builds(ctx):
        echo = os.path.join(rel, "examples", "echo")
        for drv in ("io_uring", "epoll"):
            servers.append((f"{prefix}_{drv}", [echo, f"--cores={n}", f"--driver={drv}",
                                                "--grace=1s", "--addr=127.0.0.1:{port}"], {}))
    if ctx.a.no_peers:
        return servers
    servers.append(("go", [os.path.join(p, "go_echo"), "--addr=127.0.0.1:{port}"],
                    {"GOMAXPROCS": str(n)}))
    for backend in ("io_uring", "epoll"):
        b = os.path.join(p, f"asio_echo_{backend}")
        if os.access(b, os.X_OK):
            servers.append((f"asio_{backend}", [b, "--addr=127.0.0.1:{port}"], {}))
    t = os.path.join(p, "tokio_echo")
    if os.access(t, os.X_OK):
        servers.append(("tokio_current_thread", [t, "--flavor=current_thread",
                                                 "--addr=127.0.0.1:{port}"], {}))
        servers.append(("tokio_multi_thread", [t, "--flavor=multi_thread", f"--threads={n}",
                                               "--addr=127.0.0.1:{port}"], {}))
    return servers


def http_servers(ctx):
    n = ctx.ncores
    servers = []
    for prefix, rel in builds(ctx):
        ours = os.path.join(rel, "examples", "http", "http_server")
        if os.access(ours, os.X_OK):
            for drv in ("io_uring", "epoll"):
                servers.append((f"{prefix}_{drv}", [ours, "--addr=127.0.0.1:{port}",
                                                    f"--cores={n}", f"--driver={drv}",
                                                    "--grace=1s"], {}))
        else:
            msg = f"skipped: the HTTP server ({ours}) is not built yet"
            log("http: " + msg)
            ctx.skipped.append("http " + msg)
    if ctx.a.no_peers:
        return servers
    servers.append(("go_nethttp", [os.path.join(ctx.peers, "go_http"), "--addr=127.0.0.1:{port}"],
                    {"GOMAXPROCS": str(n)}))
    servers.append(("nginx", None, {}))  # argv made per start (port in the config)
    return servers


def nginx_argv(ctx, port):
    d = os.path.join(ctx.work, f"nginx-{port}")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""# generated by tools/bench
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = / {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
""")
    return ["/usr/sbin/nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf]


def make_server(ctx, name, argv, env):
    if name == "nginx":
        port = ctx.next_port()
        return Server(ctx, name, nginx_argv(ctx, port), env, port=port)
    return Server(ctx, name, argv, env)


def run_suite(ctx, suite, servers, shapes, load_for, parse, dur, warm_dur, check=None):
    """Warm-up, then ctx.a.rounds rounds; in each round every server is started
    once (in turn, the order rotating per round) and runs every shape."""
    if not servers:
        return
    log(f"{suite}: warm-up ({len(servers)} servers)")
    ok = []
    for name, argv, env in servers:
        s = make_server(ctx, name, argv, env)
        try:
            s.start()
            if check:
                check(s.port)
            measure(ctx, s, load_for(s.port, shapes[0], warm_dur), parse, warm_dur + 30)
            ok.append((name, argv, env))
        except Exception as e:  # noqa: BLE001
            log(f"{suite}: {name} left out: {e}")
            ctx.skipped.append(f"{suite}: {name} left out: failed in the warm-up: {e}")
        finally:
            s.stop()
    servers = ok
    for rnd in range(1, ctx.a.rounds + 1):
        la = loadavg()
        ctx.loadavgs.setdefault(suite, []).append(la)
        log(f"{suite}: round {rnd}/{ctx.a.rounds} (load average {la})")
        k = (rnd - 1) % len(servers)
        for name, argv, env in servers[k:] + servers[:k]:
            s = make_server(ctx, name, argv, env).start()
            try:
                for shape in shapes:
                    r = measure(ctx, s, load_for(s.port, shape, dur), parse, dur + 30)
                    r.update({"suite": suite, "shape": shape_name(suite, shape),
                              "server": name, "round": rnd, "loadavg": la})
                    ctx.raw.append(r)
                    log(f"  {name:22s} {shape_name(suite, shape):14s} {r['rate']:>10.0f}/s "
                        f"p50 {r['p50_us']:.0f}us p99 {r['p99_us']:.0f}us "
                        f"cpu {r['cpu_s_100k']:.3f}s/100k rss {r['peak_rss_kib']}KiB"
                        + (f" errors {r['errors']}" if r["errors"] else ""))
            finally:
                s.stop()


def shape_name(suite, shape):
    if suite == "echo":
        return f"c{shape[0]}_s{shape[1]}"
    return f"c{shape}"


def suite_echo(ctx):
    q = ctx.a.quick
    shapes = [(100, 64), (1000, 4096)] if q else [(c, s) for c in (1, 100, 1000) for s in (64, 4096)]
    dur = ctx.a.duration or (1.0 if q else 5.0)
    load = os.path.join(ctx.rel, "tools", "load", "echo_load")
    lcpu = first_cpu(ctx.load_cpus)

    def load_for(port, shape, d):
        return [load, f"--addr=127.0.0.1:{port}", f"--connections={shape[0]}",
                f"--size={shape[1]}", f"--duration={int(d * 1000)}ms", f"--cpu={lcpu}"]
    run_suite(ctx, "echo", echo_servers(ctx), shapes, load_for, parse_echo_load, dur,
              min(dur, 1.0) / 2)


def suite_http(ctx):
    q = ctx.a.quick
    shapes = [100] if q else [10, 100, 1000]
    dur = ctx.a.duration or (1.0 if q else 10.0)

    def load_for(port, conns, d):
        return ["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(round(d)))}s", "--latency",
                "--timeout", "5s", f"http://127.0.0.1:{port}/"]
    def check(port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            body = r.read()
        if r.status != 200 or body.strip() != b"Hello, World!":
            raise RuntimeError(f"GET / answered {r.status} {body[:60]!r}, not 'Hello, World!'")
    run_suite(ctx, "http", http_servers(ctx), shapes, load_for, parse_wrk, dur, 1.0, check)


# ---------------------------------------------------------------- micro

MICRO_PAIRS = [
    # (what, ours benchmark name, Go benchmark name with -cpu suffix, note)
    ("yield round trip (2 switches), 1 core", "BM_YieldSwitch", "BenchmarkGosched", ""),
    ("spawn + join, 1 core", "BM_SpawnJoin", "BenchmarkSpawnJoin", "Go: go + receive on a chan"),
    ("cross-core wake round trip (Mutex+CondVar)", "BM_CrossCoreWakeRoundTrip",
     "BenchmarkCondPingPong-2", "Go: sync.Cond, GOMAXPROCS=2"),
    ("mutex uncontended", "BM_MutexUncontended", "BenchmarkMutexUncontended", ""),
    ("mutex contended, 2 cores", "BM_MutexContended", "BenchmarkMutexContended-2",
     "Go: GOMAXPROCS=2"),
    ("spawn_blocking round trip", "BM_SpawnBlockingRoundTrip", None, "no Go equivalent"),
]
# Extra rows pairing one of our benchmarks with a second Go shape.
EXTRA_PAIRS = [
    ("chan_bench: BM_ChanPingPongTwoCores vs Go with each goroutine on its own thread",
     "BM_ChanPingPongTwoCores", "BenchmarkChanPingPongThreads-2",
     "Go: LockOSThread on both sides, GOMAXPROCS=2: every hand-off crosses threads"),
]
GO_CHAN = [("unbuffered channel ping-pong, GOMAXPROCS=1", "BenchmarkChanPingPong"),
           ("unbuffered channel ping-pong, GOMAXPROCS=2", "BenchmarkChanPingPong-2"),
           ("spawn + join with WaitGroup, 1 core", "BenchmarkSpawnJoinWaitGroup")]


def run_gbench(ctx, binary, reps, min_time):
    out_json = os.path.join(ctx.work, os.path.basename(binary) + ".json")
    argv = ["timeout", "-k", "5", "600", "taskset", "-c", f"{ctx.server_cpus},{ctx.load_cpus}",
            binary, f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true",
            f"--benchmark_min_time={min_time}", f"--benchmark_out={out_json}",
            "--benchmark_out_format=json"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(os.path.join(ctx.logdir, os.path.basename(binary) + ".log"), "w") as f:
        f.write(r.stdout)
    if r.returncode != 0:
        raise RuntimeError(f"{binary} failed ({r.returncode}); see logs")
    res = {}
    with open(out_json) as f:
        for b in json.load(f)["benchmarks"]:
            if b.get("aggregate_name") == "median":
                scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
                res[b["run_name"].replace("/real_time", "")] = b["real_time"] * scale
    return res


def run_gotest(ctx, reps, benchtime):
    argv = ["timeout", "-k", "5", "600", "taskset", "-c", f"{ctx.server_cpus},{ctx.load_cpus}",
            os.path.join(ctx.peers, "go_micro.test"), "-test.run=^$", "-test.bench=.",
            "-test.cpu=1,2", f"-test.count={reps}", f"-test.benchtime={benchtime}"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       cwd=ctx.work)
    with open(os.path.join(ctx.logdir, "go_micro.log"), "w") as f:
        f.write(r.stdout)
    if r.returncode != 0:
        raise RuntimeError("go_micro.test failed; see logs")
    runs = {}
    for m in re.finditer(r"^(Benchmark\S+)\s+\d+\s+([0-9.]+) ns/op", r.stdout, re.M):
        runs.setdefault(m.group(1), []).append(float(m.group(2)))
    return {k: statistics.median(v) for k, v in runs.items()}


def suite_micro(ctx):
    q = ctx.a.quick
    reps = max(3, ctx.a.rounds)
    ours, base = {}, {}
    for prefix, rel in builds(ctx):
        for b in ("runtime_bench", "chan_bench"):
            path = os.path.join(rel, "tools", "micro", b)
            if not os.access(path, os.X_OK):
                log(f"micro: {path} not built, skipped")
                ctx.skipped.append(f"micro: {path} is not built (yet), skipped")
                continue
            log(f"micro: {prefix} {b} ({reps} repetitions)")
            for k, v in run_gbench(ctx, path, reps, 0.02 if q else 0.5).items():
                if prefix == "fiber":
                    ours[k] = (b, v)
                else:
                    base[k] = v
    go = {}
    if not ctx.a.no_peers:
        log(f"micro: go_micro.test ({reps} counts)")
        go = run_gotest(ctx, reps, "20ms" if q else "1s")
    rows = []
    used = set()
    for what, o, g, note in MICRO_PAIRS:
        if o in ours:
            used.add(o)
        rows.append({"what": what, "ours_name": o, "ours_ns": ours.get(o, (None, None))[1],
                     "go_name": g, "go_ns": go.get(g) if g else None, "note": note})
    # chan_bench rows: paired with Go's channel ping-pong by name.
    go_used = set(g for _, _, g, _ in MICRO_PAIRS if g)
    for name, (binary, ns) in sorted(ours.items()):
        if name in used:
            continue
        g = None
        note = ""
        low = name.lower().replace("_", "")
        if "pingpong" in low:
            if "cross" in low or "two" in low:
                g, note = "BenchmarkChanPingPong-2", "Go: GOMAXPROCS=2"
            else:
                g, note = "BenchmarkChanPingPong", "Go: GOMAXPROCS=1"
        elif "Benchmark" + name[3:] in go:  # BM_Foo beside BenchmarkFoo
            g = "Benchmark" + name[3:]
        rows.append({"what": f"{binary}: {name}", "ours_name": name, "ours_ns": ns, "go_name": g,
                     "go_ns": go.get(g) if g else None, "note": note})
        if g:
            go_used.add(g)
    for what, o, g, note in EXTRA_PAIRS:
        if o in ours:
            rows.append({"what": what, "ours_name": o, "ours_ns": ours[o][1], "go_name": g,
                         "go_ns": go.get(g), "note": note})
            go_used.add(g)
    for what, g in GO_CHAN:
        if g not in go_used and g in go:
            rows.append({"what": what, "ours_name": None, "ours_ns": None, "go_name": g,
                         "go_ns": go[g], "note": "no counterpart in our benchmarks"})
    for r in rows:
        r["base_ns"] = base.get(r["ours_name"]) if r["ours_name"] else None
    # Baseline benchmarks that ours no longer has (renamed or removed).
    for name in sorted(set(base) - set(ours)):
        rows.append({"what": f"baseline only: {name}", "ours_name": None, "ours_ns": None,
                     "go_name": None, "go_ns": None, "base_ns": base[name], "note": ""})
    ctx.micro = rows


# ---------------------------------------------------------------- memory

def suite_memory(ctx):
    q = ctx.a.quick
    rows = []
    counts = [50000] if q else [100000, 1000000]
    for n in counts:
        for who, argv, key in (
                ("fiber", [os.path.join(ctx.rel, "tools", "micro", "park_memory"), str(n)],
                 "rss_per_fiber_bytes"),
                ("go", [os.path.join(ctx.peers, "go_park"), str(n)], "rss_per_goroutine_bytes")):
            if who == "go" and ctx.a.no_peers:
                continue
            env = dict(os.environ)
            if who == "go":
                env["GOMAXPROCS"] = "1"
            log(f"memory: parked {who} x {n}")
            r = subprocess.run(["timeout", "-k", "5", "300", "taskset", "-c", ctx.server_cpus]
                               + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
            m = re.search(key + r"=(-?\d+)", r.stdout)
            if r.returncode != 0 or not m:
                log(f"memory: {who} x {n} failed: {r.stderr.strip()[-300:]}")
                rows.append({"what": f"parked {n}", "server": who, "bytes": None})
                continue
            rows.append({"what": f"parked {n}", "server": who, "bytes": int(m.group(1))})
    nconn = 10000
    names = ["fiber_io_uring", "go"] if q else ["fiber_io_uring", "fiber_epoll", "go"]
    names += ["base_io_uring"] if q else ["base_io_uring", "base_epoll"]
    if not q:
        names += ["asio_io_uring", "asio_epoll", "tokio_current_thread", "tokio_multi_thread"]
    client = os.path.join(ctx.root, "tools", "bench_support", "idle_conns.py")
    for name, argv, env in echo_servers(ctx):
        if name not in names:
            continue
        log(f"memory: {nconn} idle connections to {name}")
        s = Server(ctx, name, argv, env).start()
        cl = None
        try:
            time.sleep(0.2)
            before = s.status_kib("VmRSS")
            cl = subprocess.Popen(["taskset", "-c", ctx.load_cpus, sys.executable, client,
                                   f"--addr=127.0.0.1:{s.port}", f"--count={nconn}",
                                   "--hold=120"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
            with open(ctx.pidfile, "a") as f:
                f.write(f"{cl.pid}\n")
            line = ""
            t_end = time.monotonic() + 90
            while time.monotonic() < t_end:
                line = cl.stdout.readline()
                if line.startswith("ready") or not line:
                    break
            if not line.startswith("ready"):
                raise RuntimeError(f"idle_conns did not connect {nconn} to {name}")
            time.sleep(0.5)
            after = s.status_kib("VmRSS")
            rows.append({"what": f"idle TCP connection ({nconn})", "server": name,
                         "bytes": (after - before) * 1024 // nconn,
                         "before_kib": before, "after_kib": after})
        except Exception as e:  # noqa: BLE001
            log(f"memory: {name}: {e}")
            rows.append({"what": f"idle TCP connection ({nconn})", "server": name, "bytes": None})
        finally:
            if cl is not None:
                try:
                    cl.stdin.close()
                    cl.wait(timeout=20)
                except Exception:  # noqa: BLE001
                    cl.kill()
            s.stop()
    ctx.memory = rows


# ---------------------------------------------------------------- main

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "vcpus": os.cpu_count(), "kernel": platform.release(),
            "os": (open("/etc/debian_version").read().strip()
                   if os.path.exists("/etc/debian_version") else "?")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--load-cpus", default="1")
    ap.add_argument("--only", default="echo,http,micro,memory")
    ap.add_argument("--command", default="tools/bench")
    ap.add_argument("--versions", default="")
    ap.add_argument("--baseline", default="")
    ap.add_argument("--no-peers", action="store_true")
    a = ap.parse_args()
    ctx = Ctx(a)
    ctx.micro, ctx.memory = [], []
    started = datetime.datetime.now(datetime.timezone.utc)
    only = a.only.split(",")
    failures = []
    for suite, fn in (("echo", suite_echo), ("http", suite_http), ("micro", suite_micro),
                      ("memory", suite_memory)):
        if suite not in only:
            continue
        try:
            fn(ctx)
        except Exception as e:  # noqa: BLE001
            log(f"{suite}: FAILED: {e}")
            failures.append(f"{suite}: {e}")
    meta = {"machine": machine(), "command": a.command, "started": started,
            "finished": datetime.datetime.now(datetime.timezone.utc), "quick": a.quick,
            "rounds": a.rounds, "server_cpus": a.server_cpus, "load_cpus": a.load_cpus,
            "skipped": ctx.skipped, "failures": failures, "versions": a.versions,
            "baseline": a.baseline, "no_peers": a.no_peers,
            "notes": ctx.notes, "loadavgs": ctx.loadavgs, "kernel_apis": ctx.kernel_apis}
    report.write_all(a.out, meta, ctx.raw, ctx.micro, ctx.memory)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
