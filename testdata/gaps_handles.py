"""A Python peer for gaps_test.go: file descriptors between Go's
Conn.SendFile/RecvFile and Python's multiprocessing.reduction
send_handle/recv_handle, unmodified standard library only.

    gaps_handles.py pipe FD GOPID       the connection is descriptor FD
    gaps_handles.py dial ADDR KEY GOPID a unix-socket Client with authkey KEY

It prints "READY <major.minor> blocking=<bool>" (whether the inherited
descriptor was blocking; a non-blocking one is made blocking, since
Python's Connection cannot use it otherwise), then follows the script in
go_to_python and python_to_go, and prints "DONE" when Go closes the
connection. Any failure prints "ERR <text>" and exits 1.
"""
import os
import stat
import sys
import tempfile
import traceback
from multiprocessing.connection import Client, Connection
from multiprocessing.reduction import recv_handle, send_handle


def expect(c, want):
    got = c.recv_bytes()
    if got != want:
        raise AssertionError("expected %r, got %r" % (want, got))


def read_all(fd):
    out = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(out)
        out.append(b)


def go_to_python(c):
    # Go: "before", a regular file, a pipe's write end, "after".
    expect(c, b"before")
    ffd = recv_handle(c)
    wfd = recv_handle(c)
    expect(c, b"after")
    st = os.fstat(ffd)
    if not stat.S_ISREG(st.st_mode):
        raise AssertionError("first descriptor is not a regular file: %o" % st.st_mode)
    if not stat.S_ISFIFO(os.fstat(wfd).st_mode):
        raise AssertionError("second descriptor is not a pipe")
    data = read_all(ffd)  # from the offset Go left: the start
    os.write(ffd, b"+python")  # appended at the shared offset
    os.close(ffd)
    os.write(wfd, b"through the pipe from python")
    os.close(wfd)
    c.send_bytes(b"ino %d read " % st.st_ino + data)


def python_to_go(c, gopid):
    ver = b"%d.%d" % sys.version_info[:2]
    f = tempfile.TemporaryFile()  # unlinked: only the descriptor reaches it
    f.write(b"from python " + ver)
    f.flush()
    f.seek(0)
    r, w = os.pipe()
    c.send_bytes(b"before")
    send_handle(c, f.fileno(), gopid)
    send_handle(c, w, gopid)
    c.send_bytes(b"after")
    f.close()
    os.close(w)
    got = read_all(r)  # EOF once Go has closed the only other write end
    os.close(r)
    c.send_bytes(b"pipe " + got)


def main():
    mode = sys.argv[1]
    blocking = True
    if mode == "pipe":
        fd, gopid = int(sys.argv[2]), int(sys.argv[3])
        blocking = os.get_blocking(fd)
        if not blocking:
            os.set_blocking(fd, True)
        c = Connection(fd)
    else:
        addr, key, gopid = sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
        c = Client(addr, authkey=key)
    print("READY %d.%d blocking=%s" % (sys.version_info[0], sys.version_info[1], blocking), flush=True)
    go_to_python(c)
    python_to_go(c, gopid)
    try:
        c.recv_bytes()
        raise AssertionError("Go sent more than the script")
    except EOFError:
        pass
    c.close()
    print("DONE", flush=True)


try:
    main()
except Exception as e:
    traceback.print_exc()
    print("ERR %s: %s" % (type(e).__name__, e), flush=True)
    sys.exit(1)
