#!/usr/bin/env python3
"""idle_conns: opens N TCP connections to an echo server and keeps them idle.

Each connection first does one 1-byte echo round trip (so the server has
accepted it and its per-connection task/fiber/goroutine has run), then stays
open and silent. Prints "ready N" on stdout once all N are open, then waits
until stdin closes (or --hold seconds pass) and closes them all.

  idle_conns.py --addr=127.0.0.1:9000 --count=10000 [--hold=60]
"""
import argparse
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--hold", type=float, default=60.0)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    socks = []
    deadline = time.monotonic() + 60
    # In batches: connect a batch, send one byte on each, then read each echo,
    # so that the round trips of a batch overlap.
    batch = 200
    while len(socks) < a.count:
        if time.monotonic() > deadline:
            print(f"idle_conns: only {len(socks)} of {a.count} connections in 60 s",
                  file=sys.stderr)
            return 1
        fresh = [socket.create_connection((host, int(port)), timeout=10)
                 for _ in range(min(batch, a.count - len(socks)))]
        for s in fresh:
            s.sendall(b"x")
        for s in fresh:
            if s.recv(1) != b"x":
                print("idle_conns: bad echo", file=sys.stderr)
                return 1
        socks.extend(fresh)
    print(f"ready {len(socks)}", flush=True)
    # Wait for the caller: stdin closing (or --hold seconds) ends the hold.
    import select
    select.select([sys.stdin], [], [], a.hold)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
