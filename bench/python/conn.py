"""Connections with Python's multiprocessing.Pipe: the Python side of the
"conn" workload of go run ./bench.

    python3 conn.py [-n N] [--warmup W] [--sizes BYTES:MSGS,...]
        [--rounds R] [--rt-warmup W] [--rt-size B] [--placements one:0:0,two:0:1]

Throughput, for each size BYTES (MSGS messages per batch) and each of
"into BYTES" (the child receives with recv_bytes_into one reused
bytearray) and "bytes BYTES" (recv_bytes): over a multiprocessing.Pipe()
(duplex, a Unix stream socketpair), the parent send_bytes W + N batches of
MSGS messages of BYTES bytes; a forked child receives them, checks each
one's length and acknowledges each batch with a 1-byte message back on the
same connection, which the parent receives. A sample is a batch's time
divided by MSGS.

Round trip, "rt NAME" for each placement NAME:CPU_A:CPU_B (a CPU of -1: not
pinned): the parent, pinned with os.sched_setaffinity to CPU_A, sends B
bytes with send_bytes and receives them back with recv_bytes; a forked
child pinned to CPU_B echoes each message (recv_bytes, send_bytes). W
uncounted round trips, then N batches of R round trips; a sample is a
batch's time divided by R.

Each end closes its copy of the other's connection, so a child that dies
makes the parent's receive fail (EOFError) instead of hanging.

Samples are seconds per message (per round trip). Prints one JSON object:
{"python": "3.11.7", "samples": {variant: [seconds, ...]}, "errors": {variant: "why"}}.

Standard library only; the fork start method, so that children inherit the
parent's affinity and nothing is re-imported.
"""

import multiprocessing
import os
import sys


def _join(child, failed=False):
    """Waits for the child, killing it first after a failure."""
    if failed and child.is_alive():
        child.kill()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"child exit code {child.exitcode}")


def _start(mp, target, mine, theirs, *args):
    """Starts a forked child running target(theirs, *args) and closes this
    process's copy of theirs."""
    child = mp.Process(target=target, args=(mine, theirs) + args)
    child.start()
    theirs.close()
    return child


def _sink(mine, conn, into, size, batch, batches):
    mine.close()
    buf = bytearray(size)
    for _ in range(batches):
        for _ in range(batch):
            if into:
                n = conn.recv_bytes_into(buf)
            else:
                n = len(conn.recv_bytes())
            if n != size:
                raise RuntimeError(f"message of {n} bytes, want {size}")
        conn.send_bytes(b"\x01")


def throughput(mp, into, n, warmup, size, batch, now):
    a, b = mp.Pipe()
    child = _start(mp, _sink, a, b, into, size, batch, warmup + n)
    msg = bytes(size)
    send, recv = a.send_bytes, a.recv_bytes
    out = []
    try:
        for i in range(warmup + n):
            t0 = now()
            for _ in range(batch):
                send(msg)
            recv()
            t = (now() - t0) / batch
            if i >= warmup:
                out.append(t)
    except BaseException:
        _join(child, failed=True)
        raise
    finally:
        a.close()
    _join(child)
    return out


def _echo(mine, conn, cpu, total):
    mine.close()
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})
    send, recv = conn.send_bytes, conn.recv_bytes
    for _ in range(total):
        send(recv())


def round_trip(mp, n, rounds, warmup, size, cpu_a, cpu_b, now):
    old = os.sched_getaffinity(0)
    if cpu_a >= 0:
        os.sched_setaffinity(0, {cpu_a})
    a, b = mp.Pipe()
    msg = bytes(size)
    send, recv = a.send_bytes, a.recv_bytes
    out = []
    try:
        child = _start(mp, _echo, a, b, cpu_b, warmup + n * rounds)
        try:
            for _ in range(warmup):
                send(msg)
                recv()
            for _ in range(n):
                t0 = now()
                for _ in range(rounds):
                    send(msg)
                    if len(recv()) != size:
                        raise RuntimeError("round trip changed the message's length")
                out.append((now() - t0) / rounds)
        except BaseException:
            _join(child, failed=True)
            raise
        finally:
            a.close()
        _join(child)
    finally:
        os.sched_setaffinity(0, old)
    return out


def main():
    import argparse
    import json
    import platform
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5, help="batches (samples) per variant")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted batches per throughput variant")
    ap.add_argument("--sizes", default="64:1000,65536:32,1048576:4", help="BYTES:MSGS,...")
    ap.add_argument("--rounds", type=int, default=100, help="round trips per batch")
    ap.add_argument("--rt-warmup", type=int, default=200, help="uncounted round trips")
    ap.add_argument("--rt-size", type=int, default=64, help="round-trip message bytes")
    ap.add_argument("--placements", default="one:0:0,two:0:1", help="NAME:CPU_A:CPU_B,...")
    a = ap.parse_args()

    mp = multiprocessing.get_context("fork")
    now = time.perf_counter
    samples, errors = {}, {}

    def attempt(name, f, *args):
        try:
            samples[name] = f(*args)
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"

    for spec in filter(None, a.sizes.split(",")):
        size, batch = (int(x) for x in spec.split(":"))
        for kind, into in (("into", True), ("bytes", False)):
            attempt(f"{kind} {size}", throughput, mp, into, a.n, a.warmup, size, batch, now)
    for p in filter(None, a.placements.split(",")):
        name, cpu_a, cpu_b = p.split(":")
        attempt(f"rt {name}", round_trip, mp, a.n, a.rounds, a.rt_warmup, a.rt_size, int(cpu_a), int(cpu_b), now)

    json.dump({"python": platform.python_version(), "samples": samples, "errors": errors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
