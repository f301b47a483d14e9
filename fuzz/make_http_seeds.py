#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/http_request into fuzz/corpus/http_request/.

Each seed is the request bytes followed by five bytes the fuzzer reads from the
end: a seed for the read boundaries (4 bytes) and the limits selector (1 byte,
0 = the server's defaults). Run it again after editing the list.
"""
import hashlib
import os
import struct

CASES = {
    "get": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "pipelined": b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
                 b"HEAD /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "post_cl": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
    "chunked": b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n",
    "http10_keepalive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
    "expect_continue": b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "empty_lines_first": b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    # Smuggling attempts: each followed by a request that must not be served.
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    "two_cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
              b"GET /smuggled HTTP/1.1\r\n\r\n",
    "te_not_final": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "te_chunkedchunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedchunked\r\n\r\n0\r\n\r\n",
    "te_twice": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "cl_overflow": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "cl_spaces": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4 2\r\n\r\nabcd",
    "chunk_size_overflow": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
    "missing_last_chunk": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    "http2": b"GET / HTTP/2.0\r\n\r\n",
    "bad_version": b"GET / HTTP/1.10\r\n\r\n",
    "unknown_method": b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n",
    "expect_unknown": b"GET / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "upgrade": b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    "connect": b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
}

# Limits selectors (see LLVMFuzzerTestOneInput): small head, URI, body and
# header-count limits on a few cases, so the 431/414/413 paths are seeded.
SMALL_LIMITS = {
    "long_head": (b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + b"v" * 300 + b"\r\n\r\n", 0b00000010),
    "long_uri": (b"GET /" + b"u" * 100 + b" HTTP/1.1\r\n\r\n", 0b00001000),
    "big_body": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n" + b"b" * 20, 0b00100000),
    "big_chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n" + b"b" * 20 +
                    b"\r\n0\r\n\r\n", 0b00100000),
    "many_headers": (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0b01000000),
}


def write(out, name, body, limits):
    seed = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "little")
    data = body + struct.pack("<I", seed) + bytes([limits])
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "http_request")
    os.makedirs(out, exist_ok=True)
    for name, body in CASES.items():
        write(out, name, body, 0)
    for name, (body, limits) in SMALL_LIMITS.items():
        write(out, name, body, limits)


if __name__ == "__main__":
    main()
