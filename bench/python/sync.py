"""Locks and events with Python's multiprocessing: the Python side of the
"lock" and "event" workloads of go run ./bench.

    python3 sync.py lock [-n N] [--pairs P] [--contended-pairs K] [--warmup W]
    python3 sync.py event [-n N] [--rounds R] [--warmup W] [--placements one:0:0,two:0:1]

lock: "uncontended" times N batches of P acquire()+release() pairs of one
multiprocessing.Lock in one process; "contended" runs, N times, K pairs in
the parent and K in one forked child at once, each pair incrementing a
shared counter (multiprocessing.RawValue) under the lock, timed in the
parent from releasing the child (an Event) until the child reports done (an
Event), divided by 2K. The counter is checked at the end. Inside the lock
each contender also counts how often the lock changed hands; the counts,
one per contended batch, are reported as "contended hand-overs" among the
samples (a count, not seconds).

event: for each placement NAME:CPU_A:CPU_B (a CPU of -1: not pinned), a
forked child pinned with os.sched_setaffinity to CPU_B and the parent
pinned to CPU_A ping-pong over two multiprocessing.Event: the parent sets
ping and waits for pong, then clears pong; the child waits for ping, clears
it, sets pong. N batches of R round trips, W uncounted round trips first.

Samples are seconds per operation (per pair, per round trip), one per
batch. Prints one JSON object:
{"python": "3.11.7", "samples": {variant: [seconds, ...]}, "errors": {variant: "why"}}.

Standard library only; the fork start method, so that children inherit the
parent's affinity and nothing is re-imported.
"""

import multiprocessing


def _count(tally, me):
    """Counts a pair done by contender me (1 or 2): pairs, last, hand-overs."""
    tally[0] += 1
    if tally[1] != me:
        tally[1] = me
        tally[2] += 1


def _lock_child(lock, tally, go, done, batches, k):
    for _ in range(batches):
        go.wait()
        go.clear()
        for _ in range(k):
            lock.acquire()
            _count(tally, 2)
            lock.release()
        done.set()


def _pong(cpu, ping, pong, total):
    import os

    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})
    for _ in range(total):
        ping.wait()
        ping.clear()
        pong.set()


def lock_uncontended(mp, n, pairs, warmup, now):
    lock = mp.Lock()
    acquire, release = lock.acquire, lock.release
    out = []
    for b in range(warmup + n):
        t0 = now()
        for _ in range(pairs):
            acquire()
            release()
        t = (now() - t0) / pairs
        if b >= warmup:
            out.append(t)
    return out


def lock_contended(mp, n, k, warmup, now):
    lock = mp.Lock()
    tally = mp.RawArray("q", 3)
    go, done = mp.Event(), mp.Event()
    child = mp.Process(target=_lock_child, args=(lock, tally, go, done, warmup + n, k))
    child.start()
    out, hand_overs = [], []
    try:
        for b in range(warmup + n):
            h0 = tally[2]
            t0 = now()
            go.set()
            for _ in range(k):
                lock.acquire()
                _count(tally, 1)
                lock.release()
            done.wait()
            t = (now() - t0) / (2 * k)
            done.clear()
            if b >= warmup:
                out.append(t)
                hand_overs.append(tally[2] - h0)
    finally:
        child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"child exit code {child.exitcode}")
    if tally[0] != 2 * k * (warmup + n):
        raise RuntimeError(f"counter {tally[0]}, want {2 * k * (warmup + n)}: the lock did not exclude")
    return out, hand_overs


def event_pingpong(mp, n, rounds, warmup, cpu_a, cpu_b, now):
    import os

    ping, pong = mp.Event(), mp.Event()
    old = os.sched_getaffinity(0)
    if cpu_a >= 0:
        os.sched_setaffinity(0, {cpu_a})
    child = mp.Process(target=_pong, args=(cpu_b, ping, pong, warmup + n * rounds))
    child.start()
    out = []
    try:
        for _ in range(warmup):
            ping.set()
            pong.wait()
            pong.clear()
        for _ in range(n):
            t0 = now()
            for _ in range(rounds):
                ping.set()
                pong.wait()
                pong.clear()
            out.append((now() - t0) / rounds)
    finally:
        child.join()
        os.sched_setaffinity(0, old)
    if child.exitcode != 0:
        raise RuntimeError(f"child exit code {child.exitcode}")
    return out


def main():
    import argparse
    import json
    import platform
    import sys
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["lock", "event"])
    ap.add_argument("-n", type=int, default=20, help="batches (samples) per variant")
    ap.add_argument("--pairs", type=int, default=20000, help="lock: pairs per uncontended batch")
    ap.add_argument("--contended-pairs", type=int, default=2000, help="lock: pairs per process per contended batch")
    ap.add_argument("--rounds", type=int, default=200, help="event: round trips per batch")
    ap.add_argument("--warmup", type=int, default=2, help="uncounted batches (lock) or round trips (event)")
    ap.add_argument("--placements", default="one:0:0,two:0:1", help="event: NAME:CPU_A:CPU_B,...")
    a = ap.parse_args()

    mp = multiprocessing.get_context("fork")
    now = time.perf_counter
    samples, errors = {}, {}

    def attempt(name, f, *args):
        try:
            samples[name] = f(*args)
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"

    if a.workload == "lock":
        attempt("uncontended", lock_uncontended, mp, a.n, a.pairs, a.warmup, now)
        attempt("contended", lock_contended, mp, a.n, a.contended_pairs, a.warmup, now)
        if "contended" in samples:
            samples["contended"], samples["contended hand-overs"] = samples["contended"]
    else:
        for p in filter(None, a.placements.split(",")):
            name, cpu_a, cpu_b = p.split(":")
            attempt(name, event_pingpong, mp, a.n, a.rounds, a.warmup, int(cpu_a), int(cpu_b), now)

    json.dump({"python": platform.python_version(), "samples": samples, "errors": errors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
