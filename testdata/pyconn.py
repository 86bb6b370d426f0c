"""A Python peer for mproc's connection tests: unmodified
multiprocessing.connection, standard library only.

    pyconn.py listen|dial unix|tcp ADDRESS KEY

listen: prints the address it listens on, accepts one connection; dial:
connects. KEY "-" means no authkey. Then it echoes every message
(recv_bytes -> send_bytes) until EOF; the message b"close-now" makes it
close the connection at once. A failed handshake prints "ERR <type>".
"""
import sys
from multiprocessing.connection import Listener, Client


def echo(c):
    print("OK", flush=True)
    while True:
        try:
            b = c.recv_bytes()
        except EOFError:
            return
        if b == b"close-now":
            c.close()
            return
        if b == b"send-objects":
            for v in [None, True, 7, -(2**70), 1.5, "héllo", b"\x00\xff", [1, [2]], (1, "a"), {"k": [1, 2]}, {1, 2}]:
                c.send(v)
            continue
        if b == b"recv-objects":
            for _ in range(int(c.recv_bytes())):
                print("REPR", repr(c.recv()), flush=True)
            continue
        c.send_bytes(b)


def main():
    mode, family, addr, key = sys.argv[1:5]
    key = None if key == "-" else key.encode()
    if family == "tcp":
        host, port = addr.rsplit(":", 1)
        address = (host, int(port))
    else:
        address = addr
    if mode == "listen":
        with Listener(address, authkey=key) as listener:
            a = listener.address
            print(a if isinstance(a, str) else "%s:%d" % a, flush=True)
            try:
                c = listener.accept()
            except Exception as e:
                print("ERR", type(e).__name__, flush=True)
                return
            echo(c)
    else:
        try:
            c = Client(address, authkey=key)
        except Exception as e:
            print("ERR", type(e).__name__, flush=True)
            return
        echo(c)


main()
