# An unmodified Python manager server: a SyncManager with two registered
# queues, one read by a consumer thread that puts each item doubled into
# the other. Prints "network address key" and serves until shut down.
import os
import queue
import sys
import tempfile
import threading
from multiprocessing.managers import SyncManager

inq, outq = queue.Queue(), queue.Queue()


def consume():
    while True:
        outq.put(inq.get() * 2)


class M(SyncManager):
    pass


M.register("get_in", callable=lambda: inq)
M.register("get_out", callable=lambda: outq)

key = os.urandom(16)
path = os.path.join(tempfile.mkdtemp(), "mgr")
m = M(address=path, authkey=key)
server = m.get_server()
threading.Thread(target=consume, daemon=True).start()
print("unix", path, key.hex(), flush=True)
server.serve_forever()
