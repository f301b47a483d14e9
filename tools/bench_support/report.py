#!/usr/bin/env python3
"""Aggregates tools/bench runs (medians, ratios) and writes results.md,
results.csv, micro.csv, memory.csv, raw.csv and ratios.png (gnuplot).
Stdlib only; the chart needs gnuplot (Debian gnuplot-nox)."""
import csv
import os
import shutil
import statistics
import subprocess

OURS = ("fiber_io_uring", "fiber_epoll")
FIELDS = ["rate", "p50_us", "p99_us", "cpu_s_100k", "user_s_100k", "sys_s_100k", "peak_rss_kib"]


def aggregate(raw):
    groups = {}
    order = []
    for r in raw:
        key = (r["suite"], r["shape"], r["server"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(r)
    rows = []
    for key in order:
        runs = groups[key]
        row = {"suite": key[0], "shape": key[1], "server": key[2], "rounds": len(runs),
               "errors": sum(r["errors"] for r in runs)}
        for f in FIELDS:
            vals = [r[f] for r in runs if r[f] is not None and r[f] >= 0]
            row[f] = statistics.median(vals) if vals else None
        rows.append(row)
    # Ratios of ours to each server of the same suite and shape.
    by = {(r["suite"], r["shape"], r["server"]): r for r in rows}
    for row in rows:
        for drv in OURS:
            o = by.get((row["suite"], row["shape"], drv))
            tag = drv.split("_", 1)[1]
            row[f"{tag}_rate_ratio"] = (o["rate"] / row["rate"]
                                        if o and row["rate"] else None)
            row[f"{tag}_cpu_ratio"] = (o["cpu_s_100k"] / row["cpu_s_100k"]
                                       if o and row["cpu_s_100k"] else None)
    return rows


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def lat(suite, us):
    # echo_load's histogram ends at 100 ms: a value there means "at least".
    if suite == "echo" and us is not None and us >= 100000:
        return "≥100000"
    return fmt(us, ".0f")


def shape_label(suite, shape):
    if suite == "echo":
        c, s = shape[1:].split("_s")
        return f"C={c}, {s} B"
    return f"-c{shape[1:]}"


def md_tables(rows, suite, unit):
    out = []
    shapes = []
    for r in rows:
        if r["suite"] == suite and r["shape"] not in shapes:
            shapes.append(r["shape"])
    if not shapes:
        return out
    out.append(f"| load | server | {unit} | p50 µs | p99 µs | CPU s/100k (user+sys) "
               f"| peak RSS MiB | ours io_uring ÷ this: {unit}, CPU | "
               f"ours epoll ÷ this: {unit}, CPU |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for shape in shapes:
        for r in [x for x in rows if x["suite"] == suite and x["shape"] == shape]:
            rss = r["peak_rss_kib"] / 1024 if r["peak_rss_kib"] is not None else None
            cpu = (f"{r['cpu_s_100k']:.3f} ({r['user_s_100k']:.3f}+{r['sys_s_100k']:.3f})"
                   if r["cpu_s_100k"] is not None else "—")
            name = f"**{r['server']}**" if r["server"] in OURS else r["server"]
            err = f" ({r['errors']} errors)" if r["errors"] else ""
            out.append(
                f"| {shape_label(suite, shape)} | {name} | {fmt(r['rate'], ',.0f')}{err} | "
                f"{lat(suite, r['p50_us'])} | {lat(suite, r['p99_us'])} | {cpu} | "
                f"{fmt(rss, '.1f')} | {fmt(r['io_uring_rate_ratio'], '.2f')}, "
                f"{fmt(r['io_uring_cpu_ratio'], '.2f')} | {fmt(r['epoll_rate_ratio'], '.2f')}, "
                f"{fmt(r['epoll_cpu_ratio'], '.2f')} |")
    return out


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else
                            (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k)))
                        for k in fields})


def memory_ratio(memory):
    ours = {}
    for m in memory:
        if m["server"] in ("fiber", "fiber_io_uring") and m["bytes"]:
            ours[m["what"]] = m["bytes"]
    for m in memory:
        o = ours.get(m["what"])
        m["ours_ratio"] = o / m["bytes"] if o and m["bytes"] else None
    return memory


def chart(out, rows, micro, memory):
    """ratios.png: >1 means ours is better, in every panel."""
    gp = shutil.which("gnuplot")
    if not gp:
        return "gnuplot not found: no chart"
    panels = []
    for suite in ("echo", "http"):
        peers = []
        shapes = []
        for r in rows:
            if r["suite"] != suite or r["server"] in OURS or r["io_uring_rate_ratio"] is None:
                continue
            if r["server"] not in peers:
                peers.append(r["server"])
            if r["shape"] not in shapes:
                shapes.append(r["shape"])
        if not peers:
            continue
        for metric, title in (
                ("rate", f"{suite}: ours (io_uring) / peer, throughput (>1: ours faster)"),
                ("cpu", f"{suite}: peer / ours (io_uring), CPU per 100k (>1: ours cheaper)")):
            path = os.path.join(out, f"chart_{suite}_{metric}.dat")
            with open(path, "w") as f:
                f.write("shape " + " ".join(peers) + "\n")
                for shape in shapes:
                    vals = []
                    for p in peers:
                        r = next((x for x in rows if x["suite"] == suite and x["shape"] == shape
                                  and x["server"] == p), None)
                        v = r and r[f"io_uring_{metric}_ratio"]
                        if v and metric == "cpu":
                            v = 1 / v
                        vals.append(f"{v:.4f}" if v else "?")
                    f.write(f"\"{shape_label(suite, shape)}\" " + " ".join(vals) + "\n")
            panels.append((path, title, len(peers)))
    pairs = [m for m in micro if m["ours_ns"] and m["go_ns"]]
    mem = [m for m in memory if m.get("ours_ratio") and m["server"] not in ("fiber",
                                                                            "fiber_io_uring")]
    if pairs or mem:
        path = os.path.join(out, "chart_micro_memory.dat")
        with open(path, "w") as f:
            f.write("what peer/ours\n")
            for m in pairs:
                label = m["ours_name"].replace("BM_", "")
                f.write(f"\"{label}\" {m['go_ns'] / m['ours_ns']:.4f}\n")
            for m in mem:
                label = ("park " if m["what"].startswith("parked") else "idle conn ") + \
                    m["what"].split()[-1].strip("()") + " vs " + m["server"]
                f.write(f"\"{label}\" {1 / m['ours_ratio']:.4f}\n")
        panels.append((path, "micro (Go ns / ours ns) and memory (peer bytes / ours bytes); "
                       ">1: ours better; log scale", 1))
    if not panels:
        return "no ratios to chart"
    png = os.path.join(out, "ratios.png")
    script = [f"set terminal pngcairo size 1400,{420 * len(panels)} font 'DejaVu Sans,10'",
              "set termoption noenhanced", f"set output '{png}'", f"set multiplot layout {len(panels)},1",
              "set style data histogram", "set style histogram clustered gap 1",
              "set style fill solid 0.8 border -1", "set datafile missing '?'",
              "set key outside right top", "set grid ytics", "set yrange [0:*]",
              "set xtics rotate by -20", "set arrow from graph 0, first 1 to graph 1, first 1 "
              "nohead lw 2 dt 2 lc rgb 'black' front"]
    for path, title, n in panels:
        if "log scale" in title:
            script += ["set logscale y", "set yrange [*:*]"]
        script.append(f"set title \"{title}\"")
        script.append(f"plot for [i=2:{n + 1}] '{path}' using i:xtic(1) title columnheader")
    script.append("unset multiplot")
    gpfile = os.path.join(out, "ratios.gp")
    with open(gpfile, "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run([gp, gpfile], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        return "gnuplot failed: " + r.stdout[-500:]
    return None


def write_all(out, meta, raw, micro, memory):
    os.makedirs(out, exist_ok=True)
    rows = aggregate(raw)
    memory = memory_ratio(memory)
    write_csv(os.path.join(out, "raw.csv"), raw,
              ["suite", "shape", "server", "round", "loadavg", "rate", "ops", "p50_us", "p99_us",
               "cpu_s_100k", "user_s_100k", "sys_s_100k", "peak_rss_kib", "errors"])
    ratio_fields = ["io_uring_rate_ratio", "io_uring_cpu_ratio", "epoll_rate_ratio",
                    "epoll_cpu_ratio"]
    write_csv(os.path.join(out, "results.csv"), rows,
              ["suite", "shape", "server", "rounds"] + FIELDS + ["errors"] + ratio_fields)
    for m in micro:
        m["ours_over_go"] = m["ours_ns"] / m["go_ns"] if m["ours_ns"] and m["go_ns"] else None
        b = m.get("base_ns")
        m["ours_over_base"] = m["ours_ns"] / b if m["ours_ns"] and b else None
    write_csv(os.path.join(out, "micro.csv"), micro,
              ["what", "ours_name", "ours_ns", "go_name", "go_ns", "ours_over_go", "base_ns",
               "ours_over_base", "note"])
    write_csv(os.path.join(out, "memory.csv"), memory,
              ["what", "server", "bytes", "before_kib", "after_kib", "ours_ratio"])
    chart_note = chart(out, rows, micro, memory)

    m = meta["machine"]
    L = [f"# Benchmark results ({'quick' if meta['quick'] else 'full'} run)", "",
         f"- Date: {meta['started']:%Y-%m-%d %H:%M} UTC (finished {meta['finished']:%H:%M})",
         f"- Command: `{meta['command']}`",
         f"- Machine: {m['cpu']}, {m['vcpus']} vCPUs, kernel {m['kernel']}, Debian {m['os']}",
         f"- Pinning: servers on CPU {meta['server_cpus']}, load generators on CPU "
         f"{meta['load_cpus']} (taskset)",
         f"- Method: one warm-up run per server, then {meta['rounds']} rounds; in each round "
         "every server is started in turn (the order rotates per round) and runs every load "
         "shape; figures are medians over the rounds. CPU = the server's utime+stime from "
         "/proc/PID/stat around each run, per 100k messages or requests. Peak RSS = VmHWM "
         "(reset through /proc/PID/clear_refs before each run). Ratios are ours ÷ this server: "
         "throughput > 1 and CPU < 1 mean ours is better. Every column is a median of its own "
         "(so user+sys need not add up to the median total). echo_load's latency histogram "
         "ends at 100 ms (≥100000 µs)."]
    if meta.get("loadavgs"):
        L.append("- 1-minute load average at the start of each round (the machine was "
                 "idle only if these are near 0): " + "; ".join(
                     f"{k} {', '.join(v)}" for k, v in meta["loadavgs"].items()))
    if meta.get("kernel_apis"):
        L.append("- Event interfaces each server held open once listening (from /proc/PID/fd; "
                 "this is how the Asio backend is checked): " + ", ".join(
                     f"{k} {v}" for k, v in meta["kernel_apis"].items()))
    if meta["versions"]:
        L.append(f"- Versions: {meta['versions']}")
    if meta.get("baseline"):
        L.append(f"- Baseline: `base_*` rows and the micro baseline column are the release "
                 f"build in `{meta['baseline']}`, run in the same rounds with our load "
                 "generator; ratios ours ÷ base_* compare the two builds.")
    if meta.get("no_peers"):
        L.append("- Peers left out (--no-peers).")
    L.append("")
    if any(r["suite"] == "echo" for r in rows):
        L += ["## Echo (tools/load/echo_load: C connections × S-byte messages, each waits "
              "for its echo)", ""]
        L += md_tables(rows, "echo", "msgs/s") + [""]
    if any(r["suite"] == "http" for r in rows):
        L += ["## HTTP (wrk -t1, keep-alive, GET /)", ""]
        L += md_tables(rows, "http", "req/s") + [""]
    if micro:
        L += ["## Micro (Google Benchmark medians vs Go testing.B medians)", "",
              "Time per iteration, pinned to the server and load CPUs together. ours ÷ Go < 1 "
              "means ours is faster. Go's -2 rows run with GOMAXPROCS=2, but Go may keep both "
              "goroutines of a ping-pong on one P (runnext hand-off), so they are not always "
              "cross-core.", "",
              "| what | ours | ns | Go | ns | ours ÷ Go | baseline ns | ours ÷ baseline | note |",
              "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
        for x in micro:
            L.append(f"| {x['what']} | {x['ours_name'] or '—'} | {fmt(x['ours_ns'], '.1f')} | "
                     f"{x['go_name'] or '—'} | {fmt(x['go_ns'], '.1f')} | "
                     f"{fmt(x['ours_over_go'], '.2f')} | {fmt(x.get('base_ns'), '.1f')} | "
                     f"{fmt(x['ours_over_base'], '.2f')} | {x['note']} |")
        L.append("")
    if memory:
        L += ["## Memory", "", "| what | who | bytes each | ours ÷ this |",
              "| --- | --- | ---: | ---: |"]
        for x in memory:
            L.append(f"| {x['what']} | {x['server']} | {fmt(x['bytes'], ',d')} | "
                     f"{fmt(x['ours_ratio'], '.2f')} |")
        L += ["", "Parked: growth of VmRSS over N parked fibers (tools/micro/park_memory) or "
              "goroutines (tools/peers/go_park), divided by N. Idle TCP connection: growth of "
              "the server's VmRSS once tools/bench_support/idle_conns.py holds the connections "
              "open (each after one 1-byte echo), divided by their number; kernel socket "
              "memory is not in RSS.", ""]
    if meta["skipped"] or meta["failures"] or chart_note:
        L += ["## Not measured", ""]
        L += [f"- {s}" for s in meta["skipped"]]
        L += [f"- FAILED: {s}" for s in meta["failures"]]
        if chart_note:
            L.append(f"- chart: {chart_note}")
        L.append("")
    if os.path.exists(os.path.join(out, "ratios.png")):
        L += ["![ratios](ratios.png)", ""]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(L))
    print("\n".join(L))
    print(f"\nwritten: {out}/results.md results.csv micro.csv memory.csv raw.csv"
          + (" ratios.png" if os.path.exists(os.path.join(out, "ratios.png")) else ""))
