"""Process start + join with Python's multiprocessing: the Python side of the
"process" workload of go run ./bench.

    python3 process.py [-n N] [--warmup W] [--methods fork,spawn,forkserver]

Each iteration times multiprocessing.Process(target=noop), start() and join()
with time.perf_counter, interleaving the start methods iteration by
iteration; W warm-up iterations per method are not counted (they start
forkserver's server and the resource tracker). Prints one JSON object:
{"python": "3.11.7", "samples": {method: [seconds, ...]}, "errors": {method: "why"}}.

Standard library only. Top-level imports are kept to multiprocessing alone,
because spawn and forkserver children re-import this file.
"""

import multiprocessing


def noop():
    pass


def main():
    import argparse
    import json
    import platform
    import sys
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--methods", default="fork,spawn,forkserver")
    a = ap.parse_args()

    ctxs, errors = {}, {}
    for m in filter(None, a.methods.split(",")):
        try:
            ctxs[m] = multiprocessing.get_context(m)
        except ValueError as e:
            errors[m] = str(e)
    samples = {m: [] for m in ctxs}

    for i in range(a.warmup + a.n):
        for m, ctx in list(ctxs.items()):
            try:
                t0 = time.perf_counter()
                p = ctx.Process(target=noop)
                p.start()
                p.join()
                t = time.perf_counter() - t0
                code = p.exitcode
                p.close()
                if code != 0:
                    raise RuntimeError(f"child exit code {code}")
            except Exception as e:
                errors[m] = f"{type(e).__name__}: {e}"
                del ctxs[m], samples[m]
                continue
            if i >= a.warmup:
                samples[m].append(t)

    json.dump({"python": platform.python_version(), "samples": samples, "errors": errors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
