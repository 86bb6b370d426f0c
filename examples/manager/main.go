// Command manager shares a dict and a queue between a Go process and an
// unmodified Python program through a manager server (package
// mproc/manager), as Python's multiprocessing.Manager() shares them
// between Python processes.
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"os/exec"
	"time"

	"mproc"
	"mproc/manager"
)

func main() {
	mproc.Main()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	srv, err := manager.Start(ctx, manager.StartOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	c, err := manager.Dial(ctx, srv.Network, srv.Addr, srv.Key, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Objects the Go side makes; Python reaches them by their ids.
	d, err := manager.NewDict[string, int64](ctx, c)
	if err != nil {
		log.Fatal(err)
	}
	q, err := manager.NewQueue[string](ctx, c, 0)
	if err != nil {
		log.Fatal(err)
	}
	py := exec.CommandContext(ctx, "python3", "-c", pythonSide, srv.Addr, hex.EncodeToString(srv.Key), d.ID(), q.ID())
	py.Stdout, py.Stderr = os.Stdout, os.Stderr
	if err := py.Run(); err != nil {
		log.Fatal("python: ", err)
	}

	items, err := d.Items(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for k, v := range items {
		fmt.Printf("go: dict[%q] = %d\n", k, v)
	}
	msg, err := q.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("go: from the queue:", msg)
}

// pythonSide attaches to the Go-made objects by id (a proxy built from a
// Token, as Python passes proxies between its own processes).
const pythonSide = `
import sys
from multiprocessing.managers import Token, DictProxy, AutoProxy
addr, key, dict_id, queue_id = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3], sys.argv[4]
d = DictProxy(Token("dict", addr, dict_id), "pickle", authkey=key)
q = AutoProxy(Token("JoinableQueue", addr, queue_id), "pickle", authkey=key,
              exposed=("put", "get", "qsize"))
d["from python"] = 3
d["answer"] = 42
q.put("hello from Python %d.%d" % sys.version_info[:2])
print("python: done")
`
