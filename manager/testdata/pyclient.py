# An unmodified Python client of a manager server: SyncManager.connect(),
# then the built-in types as Python programs use them. Prints "ok".
import queue
import sys
from multiprocessing.managers import SyncManager


class M(SyncManager):
    pass


def main():
    network, addr, key = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
    if network == "tcp":
        host, port = addr.rsplit(":", 1)
        addr = (host, int(port))
    m = M(address=addr, authkey=key)
    m.connect()

    d = m.dict()
    d["k"] = "v"
    d["n"] = 1
    d[(1, 2)] = b"\x00\xff"
    assert d["k"] == "v"
    assert d[(1, 2)] == b"\x00\xff"
    assert len(d) == 3
    assert sorted(d.keys(), key=repr) == sorted(["k", "n", (1, 2)], key=repr)
    assert ("n", 1) in d.items()
    assert d.get("missing", 42) == 42
    try:
        d["missing"]
    except KeyError as e:
        assert e.args == ("missing",), e.args
    else:
        raise AssertionError("no KeyError")
    assert d.pop("n") == 1
    d.update({"a": [1, 2.5, None]}, b=True)
    assert d["a"] == [1, 2.5, None] and d["b"] is True
    assert d.setdefault("s", {1, 2}) == {1, 2}
    assert dict(d.copy())["k"] == "v"
    assert sorted(k for k in d if isinstance(k, str)) == ["a", "b", "k", "s"]

    l = m.list([1, 2, 3])
    l.append(4)
    l.extend([5, 6])
    assert len(l) == 6
    assert l[1:3] == [2, 3]
    assert l[-1] == 6
    l[0] = "zero"
    del l[1]
    assert l[:] == ["zero", 3, 4, 5, 6]
    assert l.pop() == 6
    l.remove(3)
    assert 4 in l
    try:
        l[99]
    except IndexError:
        pass
    else:
        raise AssertionError("no IndexError")

    q = m.Queue(2)
    q.put("hello")
    q.put({"n": 1, "l": [1.5, None]}, timeout=2)
    try:
        q.put_nowait("full")
    except queue.Full:
        pass
    else:
        raise AssertionError("no queue.Full")
    assert q.qsize() == 2
    assert q.get() == "hello"
    assert q.get(timeout=1) == {"n": 1, "l": [1.5, None]}
    try:
        q.get_nowait()
    except queue.Empty:
        pass
    else:
        raise AssertionError("no queue.Empty")
    try:
        q.get(timeout=0.05)
    except queue.Empty:
        pass
    else:
        raise AssertionError("no queue.Empty after a timeout")

    jq = m.JoinableQueue()
    jq.put(1)
    jq.get()
    jq.task_done()
    jq.join()

    lock = m.Lock()
    with lock:
        assert not lock.acquire(False)
    assert lock.acquire(timeout=1)
    lock.release()
    rlock = m.RLock()
    with rlock:
        with rlock:
            pass
    sem = m.BoundedSemaphore(1)
    with sem:
        assert not sem.acquire(timeout=0.01)
    try:
        sem.release()
    except ValueError:
        pass
    else:
        raise AssertionError("BoundedSemaphore released too many times")

    ns = m.Namespace(a=1)
    ns.x = 5
    assert ns.x == 5 and ns.a == 1
    try:
        ns.nope
    except AttributeError:
        pass
    else:
        raise AssertionError("no AttributeError")

    ev = m.Event()
    assert not ev.wait(0.01)
    ev.set()
    assert ev.is_set() and ev.wait(1)

    cond = m.Condition()
    with cond:
        assert not cond.wait(0.01)
        cond.notify_all()

    v = m.Value("i", 7)
    assert v.value == 7
    v.value = 8
    assert v.get() == 8

    arr = m.Array("i", [1, 2, 3])
    arr[0] = 5
    assert len(arr) == 3 and arr[0] == 5 and arr[:] == [5, 2, 3]
    zeros = m.Array("d", 2)
    assert zeros[:] == [0.0, 0.0]

    b = m.Barrier(1)
    assert b.wait() == 0
    assert b.parties == 1

    print("ok")


main()
