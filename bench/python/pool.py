"""Process pools with Python's multiprocessing and concurrent.futures: the
Python side of the "pool" workload of go run ./bench.

    python3 pool.py [-n N] [--warmup W] [--workers 2] [--map1 1000]
        [--mapauto 40000] [--submit 100]

Tiny tasks: f(x) returns x, an int. With multiprocessing.Pool(workers)
(fork context), started before timing, W + N iterations each time
"map1", pool.map(f, xs, chunksize=1) over MAP1 ints, and "mapauto",
pool.map(f, xs) with the default chunksize (len(xs) / (4 * workers),
rounded up) over MAPAUTO ints, the two alternating; a sample is the call's
time divided by len(xs). Then with
concurrent.futures.ProcessPoolExecutor(workers) (fork context), "submit":
SUBMIT calls of executor.submit(f, i).result(), one after the other; a
sample is their time divided by SUBMIT. The first W iterations of each
are not counted. Every result is checked.

Start-up, one sample per run: "pool start", the Pool constructor (it
returns once the workers are forked); "executor start", the executor's
constructor and one submit(f, 0).result() per worker at once (the
executor starts its processes on the first submit).

Samples are seconds per task (per call, per start). Prints one JSON object:
{"python": "3.11.7", "samples": {variant: [seconds, ...]}, "errors": {variant: "why"}}.

Standard library only; the fork start method, so that nothing is
re-imported and every Python version measures the same thing.
"""

import os
import sys

# Python puts this file's directory first on sys.path, where queue.py, a
# sibling, would shadow the standard library's queue module that
# multiprocessing imports. Drop that directory before importing anything.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import multiprocessing  # noqa: E402


def f(x):
    return x


def main():
    import argparse
    import concurrent.futures
    import json
    import platform
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--map1", type=int, default=1000)
    ap.add_argument("--mapauto", type=int, default=40000)
    ap.add_argument("--submit", type=int, default=100)
    a = ap.parse_args()

    ctx = multiprocessing.get_context("fork")
    samples, errors = {}, {}
    now = time.perf_counter

    def check(name, got, want):
        if got != want:
            raise RuntimeError(f"{name}: wrong results")

    try:
        t0 = now()
        pool = ctx.Pool(a.workers)
        samples["pool start"] = [now() - t0]
        try:
            xs1, xsa = list(range(a.map1)), list(range(a.mapauto))
            samples["map1"], samples["mapauto"] = [], []
            for i in range(a.warmup + a.n):
                for name, xs, kw in (("map1", xs1, {"chunksize": 1}), ("mapauto", xsa, {}))[:: 1 if i % 2 == 0 else -1]:
                    t0 = now()
                    rs = pool.map(f, xs, **kw)
                    t = now() - t0
                    check(name, rs, xs)
                    if i >= a.warmup:
                        samples[name].append(t / len(xs))
        finally:
            pool.terminate()
            pool.join()
    except Exception as e:
        for k in ("pool start", "map1", "mapauto"):
            samples.pop(k, None)
            errors[k] = f"{type(e).__name__}: {e}"

    try:
        t0 = now()
        ex = concurrent.futures.ProcessPoolExecutor(a.workers, mp_context=ctx)
        try:
            fs = [ex.submit(f, 0) for _ in range(a.workers)]
            for fu in fs:
                fu.result()
            samples["executor start"] = [now() - t0]
            samples["submit"] = []
            for i in range(a.warmup + a.n):
                t0 = now()
                for x in range(a.submit):
                    if ex.submit(f, x).result() != x:
                        raise RuntimeError("submit: wrong result")
                t = now() - t0
                if i >= a.warmup:
                    samples["submit"].append(t / a.submit)
        finally:
            ex.shutdown(wait=True)
    except Exception as e:
        for k in ("executor start", "submit"):
            samples.pop(k, None)
            errors[k] = f"{type(e).__name__}: {e}"

    json.dump({"python": platform.python_version(), "samples": samples, "errors": errors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
