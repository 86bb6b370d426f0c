"""Resident memory of Python's multiprocessing processes and queues: the
Python side of the "memory" workload of go run ./bench.

    python3 memory.py [-n N] [--methods fork,spawn] [--workers 2]
        [--queues 1024,65536] [--size 64]

N samples of each variant, the variants taking turns sample by sample:

- "process M": an idle multiprocessing.Process(target=idle) with start
  method M; the child says it runs over a Pipe() and blocks reading it; it
  is measured once the parent has its word.
- "pool M": multiprocessing Pool(WORKERS) with start method M; tiny tasks
  (os.getpid) are submitted WORKERS at a time until each worker ran one,
  then every worker is measured (WORKERS samples per pool).
- "queue Q": in a forked child, multiprocessing.Queue(Q) filled with Q puts
  of fresh SIZE-byte bytes objects and no consumer; the child's growth
  from before the Queue was made to when the feeder thread stopped moving
  messages into the pipe (full), and where the messages were then: still
  in the feeder's buffer (a deque, in the heap) or in the pipe (kernel
  memory, read with FIONREAD).

A process is measured from /proc/PID/status (VmRSS, RssAnon, RssFile,
RssShmem) and /proc/PID/smaps_rollup (Pss; Private_Clean + Private_Dirty,
the USS) once its VmRSS has not changed over 4 reads 25 ms apart (at most
3 s; "settled" says whether it had). Figures are bytes. Prints one JSON
object: {"python": "3.11.7", "samples": {"VARIANT/FIGURE": [...]},
"errors": {VARIANT: "why"}} with FIGURE rss, pss, uss, anon, file, shmem,
and settled for processes, pipe and buffered for queues.

Standard library only. Top-level imports are kept to what the interpreter
has loaded anyway and multiprocessing, because spawn children re-import
this file.
"""

import os
import sys
import time

# Python puts this file's directory first on sys.path, where queue.py, a
# sibling, would shadow the standard library's queue module that
# multiprocessing imports. Drop that directory before importing anything.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import multiprocessing  # noqa: E402

POLL = 0.025  # seconds between reads while waiting for VmRSS to settle
STABLE = 4  # equal reads in a row
SETTLE_MAX = 3.0  # seconds
WAIT_MAX = 30.0  # seconds, for a child's word
WARMUP = 16  # messages through a warm-up queue before a queue is measured


def _kb(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.split()
            if len(v) == 2 and v[1] == "kB":
                out[k] = int(v[0]) * 1024
    return out


def read_mem(pid):
    st = _kb(f"/proc/{pid}/status")
    ro = _kb(f"/proc/{pid}/smaps_rollup")
    return {
        "rss": st["VmRSS"],
        "pss": ro["Pss"],
        "uss": ro.get("Private_Clean", 0) + ro.get("Private_Dirty", 0),
        "anon": st.get("RssAnon", 0),
        "file": st.get("RssFile", 0),
        "shmem": st.get("RssShmem", 0),
    }


def settle(pid):
    import time

    deadline = time.monotonic() + SETTLE_MAX
    last, same = None, 0
    while True:
        m = read_mem(pid)
        same = same + 1 if m["rss"] == last else 1
        last = m["rss"]
        if same >= STABLE or time.monotonic() > deadline:
            m["settled"] = int(same >= STABLE)
            return m
        time.sleep(POLL)


def idle(conn):
    conn.send_bytes(b"r")
    try:
        conn.recv_bytes()
    except EOFError:
        pass


def getpid(pause):
    # A pause, so that one worker cannot take every task while another
    # is still starting (spawn, on a busy machine).
    time.sleep(pause)
    return os.getpid()


def process_sample(ctx):
    parent, child = ctx.Pipe()
    p = ctx.Process(target=idle, args=(child,))
    p.start()
    child.close()
    try:
        if not parent.poll(WAIT_MAX):
            raise RuntimeError("no word from the child")
        parent.recv_bytes()
        m = settle(p.pid)
        if not p.is_alive():
            raise RuntimeError("the idle child ended while measured")
    finally:
        try:
            parent.send_bytes(b"x")
        except OSError:
            pass
        parent.close()
        p.join(WAIT_MAX)
    if p.exitcode != 0:
        raise RuntimeError(f"child exit code {p.exitcode}")
    p.close()
    return [m]


def pool_sample(ctx, workers):
    pool = ctx.Pool(workers)
    try:
        ran = set()
        deadline = time.monotonic() + WAIT_MAX
        while len(ran) < workers and time.monotonic() < deadline:
            rs = [pool.apply_async(getpid, (0.005,)) for _ in range(workers)]
            ran.update(r.get(WAIT_MAX) for r in rs)
        if len(ran) != workers:
            raise RuntimeError(f"only workers {sorted(ran)} ran a task")
        return [settle(pid) for pid in sorted(ran)]
    finally:
        pool.terminate()
        pool.join()


def _fionread(fd):
    import array
    import fcntl
    import termios

    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


def fill_queue(conn, n, size):
    """In a forked child: fill a Queue(n) and send back the growth."""
    import gc
    import time

    try:
        # Warm up before the baseline: a small queue made, filled, drained
        # and closed loads the modules and touches the code that a Queue
        # and this measurement run, and the stack that glibc keeps for the
        # next thread (the feeder). The growth is then the queue's data
        # and bookkeeping, not code pages.
        ctx = multiprocessing.get_context("fork")
        w = ctx.Queue(WARMUP)
        for i in range(WARMUP):
            w.put(i.to_bytes(8, "little") * (size // 8))
        for _ in range(WARMUP):
            w.get(timeout=WAIT_MAX)
        _fionread(w._reader.fileno())
        w.close()
        w.join_thread()
        del w
        gc.collect()
        me = os.getpid()
        before = read_mem(me)
        q = ctx.Queue(n)
        for i in range(n):
            q.put(i.to_bytes(8, "little") * (size // 8))
        # The feeder thread moves messages into the pipe until it is full:
        # wait until the buffer and the pipe stop changing.
        deadline = time.monotonic() + WAIT_MAX
        last, same = None, 0
        while same < STABLE and time.monotonic() < deadline:
            time.sleep(POLL)
            cur = (len(q._buffer), _fionread(q._reader.fileno()))
            same = same + 1 if cur == last else 1
            last = cur
        after = read_mem(me)
        out = {k: after[k] - before[k] for k in ("rss", "pss", "uss", "anon", "file", "shmem")}
        out["buffered"], out["pipe"] = last
        # No consumer: the feeder is blocked on the full pipe for good, so
        # the process must not wait for it to flush at exit.
        q.cancel_join_thread()
        conn.send(out)
    except Exception as e:
        conn.send({"error": f"{type(e).__name__}: {e}"})
    conn.close()


def queue_sample(n, size):
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=fill_queue, args=(child, n, size))
    p.start()
    child.close()
    try:
        if not parent.poll(WAIT_MAX + 30):
            raise RuntimeError("no result from the queue's process")
        out = parent.recv()
    finally:
        parent.close()
        p.join(WAIT_MAX)
        if p.exitcode is None:
            p.kill()
            p.join()
    if "error" in out:
        raise RuntimeError(out["error"])
    if p.exitcode != 0:
        raise RuntimeError(f"queue process exit code {p.exitcode}")
    return [out]


def main():
    import argparse
    import json
    import platform

    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--methods", default="fork,spawn")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queues", default="1024,65536")
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()

    errors = {}
    variants = []  # (name, function returning a list of measurements)
    for m in filter(None, a.methods.split(",")):
        try:
            ctx = multiprocessing.get_context(m)
        except ValueError as e:
            errors[f"process {m}"] = errors[f"pool {m}"] = str(e)
            continue
        variants.append((f"process {m}", lambda ctx=ctx: process_sample(ctx)))
        variants.append((f"pool {m}", lambda ctx=ctx: pool_sample(ctx, a.workers)))
    for q in filter(None, a.queues.split(",")):
        variants.append((f"queue {q}", lambda q=int(q): queue_sample(q, a.size)))

    samples = {}
    for i in range(a.n):
        k = i % len(variants) if variants else 0
        for name, run in variants[k:] + variants[:k]:
            if name in errors:
                continue
            try:
                ms = run()
            except Exception as e:
                errors[name] = f"{type(e).__name__}: {e}"
                for key in [s for s in samples if s.startswith(name + "/")]:
                    del samples[key]
                continue
            for m in ms:
                for fig, v in m.items():
                    samples.setdefault(f"{name}/{fig}", []).append(v)

    json.dump({"python": platform.python_version(), "samples": samples, "errors": errors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
