"""Shared dicts with Python's multiprocessing managers: the Python side of
the "manager" workload of go run ./bench.

    python3 manager.py local [-n N] [--warmup W] [--batch B]
    python3 manager.py client --address PATH --key HEX [-n N] [--warmup W] [--batch B]
    python3 manager.py server

One op is d[k] = v followed by d[k] (checked to be v), on a dict proxy:
k a short str (one of "k0" ... "k7", in turn), v a small int. W uncounted
batches, then N batches of B ops; a sample is a batch's time divided by B,
timed with time.perf_counter.

"local" ("py-py"): d = multiprocessing.Manager().dict(). Manager() starts
its server (a SyncManager) in a child process, with the default start
method; the ops run in this, the main, process.

"client" ("py-go"): an unmodified SyncManager client,
SyncManager(address=PATH, authkey=bytes.fromhex(HEX)).connect(), then
d = m.dict(), against a server someone else runs (the bench's Go server).

Both print one JSON object:
{"python": "3.11.7", "samples": {variant: [seconds, ...]}, "errors": {variant: "why"}}.

"server": m = multiprocessing.Manager(), the server of "local", for a
client in another process (the bench's Go client). Prints one line,
{"python": ..., "address": PATH, "key": HEX} (the authkey is this
process's, which Manager() uses), serves until its standard input ends,
then shuts the manager down.

Standard library only.
"""

import os
import sys

# Python puts this file's directory first on sys.path, where queue.py, a
# sibling, would shadow the standard library's queue module that
# multiprocessing.managers imports. Drop that directory before importing
# anything.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import json  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from multiprocessing.managers import SyncManager  # noqa: E402

KEYS = ["k%d" % i for i in range(8)]


def measure(d, n, warmup, batch):
    """W + N batches of B ops (set, then get and check) on d."""
    now = time.perf_counter
    keys = KEYS
    nk = len(keys)
    out = []
    for b in range(warmup + n):
        base = b * batch
        t0 = now()
        for i in range(batch):
            k, v = keys[i % nk], (base + i) % 100
            d[k] = v
            if d[k] != v:
                raise RuntimeError(f"d[{k!r}] is not {v}")
        t = now() - t0
        if b >= warmup:
            out.append(t / batch)
    return out


def local(a):
    m = multiprocessing.Manager()
    try:
        return measure(m.dict(), a.n, a.warmup, a.batch)
    finally:
        m.shutdown()


def client(a):
    m = SyncManager(address=a.address, authkey=bytes.fromhex(a.key))
    m.connect()
    d = m.dict()
    try:
        return measure(d, a.n, a.warmup, a.batch)
    finally:
        del d  # drops its reference (decref) while the server is there


def server():
    m = multiprocessing.Manager()
    try:
        addr = m.address
        if addr.startswith("\0"):  # an abstract socket, Go's "@name"
            addr = "@" + addr[1:]
        key = bytes(multiprocessing.current_process().authkey).hex()
        print(json.dumps({"python": platform.python_version(), "address": addr, "key": key}), flush=True)
        sys.stdin.read()
    finally:
        m.shutdown()


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["local", "client", "server"])
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--address")
    ap.add_argument("--key")
    a = ap.parse_args()
    if a.mode == "server":
        server()
        return

    name = {"local": "py-py", "client": "py-go"}[a.mode]
    samples, errors = {}, {}
    try:
        samples[name] = local(a) if a.mode == "local" else client(a)
    except Exception as e:
        errors[name] = f"{type(e).__name__}: {e}"
    json.dump({"python": platform.python_version(), "samples": samples, "errors": errors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
