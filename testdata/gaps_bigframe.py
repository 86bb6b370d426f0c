"""A Python peer for gaps_test.go: one message over 0x7fffffff bytes each
way through unmodified multiprocessing.connection, whose framing then
uses the length -1 and an 8-byte length.

    gaps_bigframe.py ADDR KEY

It dials the unix socket ADDR with authkey KEY and prints "OK". Go sends
"<n> <crc32>" and then n bytes; Python checks the length and zlib.crc32 of
what recv_bytes returned and answers "ok <len> <crc32> <seconds>" (or "bad
..."). Then it sends n bytes of the pattern pattern(n) and prints "SENT
<seconds>"; at EOF it prints "DONE". Any failure prints "ERR <text>" and
exits 1.
"""
import hashlib
import sys
import time
import traceback
import zlib
from multiprocessing.connection import Client

PERIOD = 65521  # a prime: a dropped or repeated piece shows in the checksum


def block():
    out = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range((PERIOD + 31) // 32))
    return out[:PERIOD]


def pattern(n):
    b = block()
    return b"".join([b] * (n // PERIOD) + [b[: n % PERIOD]])


def main():
    addr, key = sys.argv[1], sys.argv[2].encode()
    c = Client(addr, authkey=key)
    print("OK", flush=True)
    n, crc = (int(x) for x in c.recv_bytes().split())
    t0 = time.monotonic()
    data = c.recv_bytes()
    got_len, got_crc = len(data), zlib.crc32(data)
    del data
    verdict = b"ok" if (got_len, got_crc) == (n, crc) else b"bad"
    c.send_bytes(b"%s %d %d %.2f" % (verdict, got_len, got_crc, time.monotonic() - t0))
    t0 = time.monotonic()
    out = pattern(n)
    c.send_bytes(out)
    del out
    print("SENT %.2f" % (time.monotonic() - t0), flush=True)
    try:
        c.recv_bytes()
        raise AssertionError("Go sent more than the script")
    except EOFError:
        pass
    print("DONE", flush=True)


try:
    main()
except Exception as e:
    traceback.print_exc()
    print("ERR %s: %s" % (type(e).__name__, e), flush=True)
    sys.exit(1)
