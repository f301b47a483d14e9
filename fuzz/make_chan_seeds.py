#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/chan_script into fuzz/corpus/chan_script/.

chan_script decodes its input with FuzzedDataProvider, which takes integers
from the END of the input, one byte per value whose range fits in a byte and
none for a range of one value. Encoder mirrors decode() in chan_script.cc.
Run it again after editing the scenarios.
"""
import os

OPS = ["send", "send_ctx", "recv", "recv_ctx", "try_send", "try_recv", "close",
       "select_rr", "select_rsd", "select_srt", "select_rdone", "sleep", "sleep_ctx",
       "yield", "cancel", "spawn", "len"]


class Encoder:
    def __init__(self):
        self.tail = []  # values in consumption order

    def value(self, v, lo, hi):
        rng = hi - lo
        assert lo <= v <= hi
        nbytes = 0
        while nbytes < 4 and (rng >> (8 * nbytes)) > 0:
            nbytes += 1
        x = v - lo
        # FDP builds result = (result << 8) | next byte from the end: the first
        # byte taken is the most significant.
        for i in reversed(range(nbytes)):
            self.tail.append((x >> (8 * i)) & 0xFF)

    def data(self):
        return bytes(reversed(self.tail))


def scenario(caps, starts, timeout_ms, seed, ops):
    """ops: (script, name, a, b, d) tuples, in the order decode() reads them."""
    e = Encoder()
    e.value(len(caps), 1, 4)
    for c in caps:
        e.value(c, 0, 3)
    e.value(len(starts), 1, 6)
    for s in starts[1:]:
        e.value(1 if s else 0, 0, 255)  # ConsumeBool: the low bit of a byte
    e.value(timeout_ms, 0, 100)
    e.value(seed, 0, 2**32 - 1)
    for (script, name, a, b, d) in ops:
        e.value(script, 0, len(starts) - 1)
        e.value(OPS.index(name), 0, len(OPS) - 1)
        e.value(a, 0, 255)
        e.value(b, 0, len(caps) - 1)
        e.value(d, 0, 31)
    return e.data()


SCENARIOS = {
    # Unbuffered ping-pong between two fibers, then close and drain.
    "ping_pong": scenario([0], [True, True], 50, 7, [
        (0, "send", 0, 0, 0), (1, "recv", 0, 0, 0), (0, "recv", 0, 0, 0),
        (1, "send", 0, 0, 0), (0, "close", 0, 0, 0), (1, "recv", 0, 0, 0)]),
    # Buffered producer and consumer; the consumer drains after close.
    "buffered_close_drain": scenario([2], [True, True], 50, 9, [
        (0, "send", 0, 0, 0), (0, "send", 0, 0, 0), (0, "send", 0, 0, 0),
        (0, "close", 0, 0, 0), (1, "recv", 0, 0, 0), (1, "recv", 0, 0, 0),
        (1, "recv", 0, 0, 0), (1, "recv", 0, 0, 0), (1, "try_recv", 0, 0, 0)]),
    # A receive nobody answers: the deadlock hook must end the run.
    "deadlock": scenario([0, 1], [True, True], 50, 3, [
        (0, "recv", 0, 0, 0), (1, "recv", 1, 0, 0), (1, "send", 0, 1, 0)]),
    # select with a timeout while the peer sleeps, then a select on two channels.
    "select_timeout": scenario([0, 0], [True, True], 100, 11, [
        (0, "select_srt", 0, 1, 5), (1, "sleep", 0, 0, 10), (1, "select_rr", 0, 1, 0),
        (0, "send", 1, 0, 0), (0, "select_rsd", 0, 1, 0), (1, "try_send", 0, 0, 0)]),
    # Context cancel wakes receivers and sleepers; the child context times out.
    "context_cancel": scenario([1], [True, True, True], 20, 5, [
        (0, "recv_ctx", 0, 0, 1), (1, "sleep_ctx", 0, 0, 30), (2, "yield", 0, 0, 0),
        (2, "cancel", 0, 0, 0), (0, "select_rdone", 0, 0, 0), (1, "send_ctx", 0, 0, 0)]),
    # Fibers spawning fibers, try_send/try_recv on a full and an empty channel.
    "spawn_chain": scenario([1, 3], [True, False, False], 10, 13, [
        (0, "spawn", 1, 0, 0), (1, "spawn", 2, 0, 0), (2, "try_send", 0, 0, 0),
        (2, "try_send", 0, 0, 0), (1, "try_recv", 1, 1, 0), (0, "len", 1, 1, 0),
        (0, "recv", 0, 0, 0)]),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "chan_script")
    os.makedirs(out, exist_ok=True)
    for name, data in SCENARIOS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
