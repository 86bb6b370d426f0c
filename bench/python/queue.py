"""Queues and pipes with Python's multiprocessing: the Python side of the
"queue" workload of go run ./bench.

    python3 queue.py [-n N] [--warmup W] [--sizes BYTES:CAP:MSGS,...]
        [--rounds R] [--rt-warmup W] [--rt-size B] [--placements one:0:0,two:0:1]
        [--mpmc 2x2,4x4] [--mpmc-size B] [--mpmc-capacity C] [--mpmc-batch M]

Throughput, for each size BYTES (queue capacity CAP, MSGS messages per
batch) and each of "queue BYTES" (Queue(maxsize=CAP), put/get), "simple
BYTES" (SimpleQueue, put/get) and "pipe BYTES" (Pipe(duplex=False),
send_bytes/recv_bytes): the parent puts W + N batches of MSGS messages of
BYTES bytes; a forked child gets them, checks each one's length and sets a
multiprocessing.Event after each batch, which the parent waits for and
clears. A sample is a batch's time divided by MSGS.

Round trip, "rt NAME" for each placement NAME:CPU_A:CPU_B (a CPU of -1: not
pinned): the parent, pinned with os.sched_setaffinity to CPU_A, puts B
bytes on one Queue and gets them back from another; a forked child pinned
to CPU_B gets each message and puts it on the second queue. W uncounted
round trips, then N batches of R round trips; a sample is a batch's time
divided by R.

Many to many, "mpmc PxC" for each shape: P forked producers and C forked
consumers share one Queue(maxsize=C) of messages of B bytes. For each of
W + N batches the parent gives each producer a share of M messages (a
token on a start Queue); once all producers say they have put their
shares, it puts one 1-byte report message per consumer on the data queue
and adds up the counts of messages the consumers report back, again until
all M are counted (a producer's put returns before its feeder thread has
written the message, so report messages can overtake data). A sample is a
batch's time divided by M.

Samples are seconds per message (per round trip). Prints one JSON object:
{"python": "3.11.7", "samples": {variant: [seconds, ...]}, "errors": {variant: "why"}}.

Standard library only; the fork start method, so that children inherit the
parent's affinity and nothing is re-imported.
"""

import os
import sys

# This file is named queue.py and Python puts its directory first on
# sys.path, where it would shadow the standard library's queue module that
# multiprocessing imports. Drop that directory before importing anything.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import multiprocessing  # noqa: E402

_WAIT_SLICE = 1.0  # seconds between checks that a child is still alive


def _wait(ev, children):
    """Waits for Event ev, failing if a child has ended meanwhile."""
    while not ev.wait(_WAIT_SLICE):
        for c in children:
            if not c.is_alive():
                raise RuntimeError(f"child ended early, exit code {c.exitcode}")


def _get(get, children):
    """Returns get() of a multiprocessing Queue, failing if a child ended."""
    import queue

    while True:
        try:
            return get(True, _WAIT_SLICE)
        except queue.Empty:
            for c in children:
                if not c.is_alive():
                    raise RuntimeError(f"child ended early, exit code {c.exitcode}")


def _join(children, failed=False):
    """Waits for the children, killing them first after a failure."""
    for c in children:
        if failed and c.is_alive():
            c.kill()
    for c in children:
        c.join()
    for c in children:
        if c.exitcode != 0:
            raise RuntimeError(f"child exit code {c.exitcode}")


def _sink(get, done, size, batch, batches):
    for _ in range(batches):
        for _ in range(batch):
            m = get()
            if len(m) != size:
                raise RuntimeError(f"message of {len(m)} bytes, want {size}")
        done.set()


def throughput(mp, kind, n, warmup, size, cap, batch, now):
    if kind == "queue":
        q = mp.Queue(maxsize=cap)
        put, get = q.put, q.get
    elif kind == "simple":
        q = mp.SimpleQueue()
        put, get = q.put, q.get
    else:
        r, w = mp.Pipe(duplex=False)
        put, get = w.send_bytes, r.recv_bytes
    done = mp.Event()
    child = mp.Process(target=_sink, args=(get, done, size, batch, warmup + n))
    child.start()
    msg = bytes(size)
    out = []
    try:
        for b in range(warmup + n):
            t0 = now()
            for _ in range(batch):
                put(msg)
            _wait(done, [child])
            t = (now() - t0) / batch
            done.clear()
            if b >= warmup:
                out.append(t)
    except BaseException:
        _join([child], failed=True)
        raise
    _join([child])
    return out


def _echo(cpu, ping, pong, total):
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})
    for _ in range(total):
        pong.put(ping.get())


def round_trip(mp, n, rounds, warmup, size, cpu_a, cpu_b, now):
    ping, pong = mp.Queue(), mp.Queue()
    old = os.sched_getaffinity(0)
    if cpu_a >= 0:
        os.sched_setaffinity(0, {cpu_a})
    child = mp.Process(target=_echo, args=(cpu_b, ping, pong, warmup + n * rounds))
    child.start()
    msg = bytes(size)
    out = []
    try:
        for _ in range(warmup):
            ping.put(msg)
            _get(pong.get, [child])
        for _ in range(n):
            t0 = now()
            for _ in range(rounds):
                ping.put(msg)
                if len(_get(pong.get, [child])) != size:
                    raise RuntimeError("round trip changed the message's length")
            out.append((now() - t0) / rounds)
    except BaseException:
        _join([child], failed=True)
        raise
    finally:
        os.sched_setaffinity(0, old)
    _join([child])
    return out


def _producer(start, put_done, data, size):
    msg = bytes(size)
    while True:
        n = start.get()
        if n < 0:
            return
        for _ in range(n):
            data.put(msg)
        put_done.put(1)


def _consumer(data, got, size):
    n = 0
    while True:
        m = data.get()
        if len(m) == size:
            n += 1
        elif m == b"r":
            got.put(n)
            n = 0
        elif m == b"stop":
            if n != 0:
                raise RuntimeError(f"{n} messages got after the last report")
            return
        else:
            raise RuntimeError(f"message of {len(m)} bytes")


def mpmc(mp, n, warmup, producers, consumers, size, cap, batch, now):
    data = mp.Queue(maxsize=cap)
    start, put_done, got = mp.Queue(), mp.Queue(), mp.Queue()
    ps = [mp.Process(target=_producer, args=(start, put_done, data, size)) for _ in range(producers)]
    cs = [mp.Process(target=_consumer, args=(data, got, size)) for _ in range(consumers)]
    children = ps + cs
    for c in children:
        c.start()
    share = batch // producers
    out = []
    try:
        for b in range(warmup + n):
            t0 = now()
            for _ in range(producers):
                start.put(share)
            for _ in range(producers):
                _get(put_done.get, children)
            count = 0
            while count < share * producers:
                for _ in range(consumers):
                    data.put(b"r")
                for _ in range(consumers):
                    count += _get(got.get, children)
            t = (now() - t0) / (share * producers)
            if count != share * producers:
                raise RuntimeError(f"consumers got {count} messages of {share * producers}")
            if b >= warmup:
                out.append(t)
    except BaseException:
        _join(children, failed=True)
        raise
    for _ in range(producers):
        start.put(-1)
    for _ in range(consumers):
        data.put(b"stop")
    _join(children)
    return out


def main():
    import argparse
    import json
    import platform
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5, help="batches (samples) per variant")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted batches per variant")
    ap.add_argument("--sizes", default="64:1024:1000,65536:16:32,1048576:8:4", help="BYTES:CAP:MSGS,...")
    ap.add_argument("--rounds", type=int, default=100, help="round trips per batch")
    ap.add_argument("--rt-warmup", type=int, default=200, help="uncounted round trips")
    ap.add_argument("--rt-size", type=int, default=64, help="round-trip message bytes")
    ap.add_argument("--placements", default="one:0:0,two:0:1", help="NAME:CPU_A:CPU_B,...")
    ap.add_argument("--mpmc", default="2x2,4x4", help="PxC,...")
    ap.add_argument("--mpmc-size", type=int, default=64)
    ap.add_argument("--mpmc-capacity", type=int, default=1024)
    ap.add_argument("--mpmc-batch", type=int, default=1000)
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
        size, cap, batch = (int(x) for x in spec.split(":"))
        for kind in ("queue", "simple", "pipe"):
            attempt(f"{kind} {size}", throughput, mp, kind, a.n, a.warmup, size, cap, batch, now)
    for p in filter(None, a.placements.split(",")):
        name, cpu_a, cpu_b = p.split(":")
        attempt(f"rt {name}", round_trip, mp, a.n, a.rounds, a.rt_warmup, a.rt_size, int(cpu_a), int(cpu_b), now)
    for shape in filter(None, a.mpmc.split(",")):
        producers, consumers = (int(x) for x in shape.split("x"))
        attempt(f"mpmc {shape}", mpmc, mp, a.n, a.warmup, producers, consumers, a.mpmc_size,
                a.mpmc_capacity, a.mpmc_batch, now)

    json.dump({"python": platform.python_version(), "samples": samples, "errors": errors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
