// Pythonconn: a Go worker process answers an unmodified Python program
// that connects with multiprocessing.connection.Client. mproc.Listen speaks
// Python's protocol (its framing and authkey handshake) and pickle.Codec its
// values, so Python's send and recv work as against a Python Listener. The
// worker listens and tells the parent where; the parent starts Python.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"time"

	"mproc"
	"mproc/pickle"
)

// request is what Python sends: a dict, whose keys name the fields.
type request struct {
	Op      string  `pickle:"op"`
	N       int64   `pickle:"n"`
	Text    string  `pickle:"text"`
	Numbers []int64 `pickle:"numbers"`
}

type args struct {
	Key  []byte               // the shared secret of the handshake
	Addr *mproc.Queue[string] // where the worker listens
}

var worker = mproc.Register("worker", func(ctx context.Context, a args) error {
	l, err := mproc.Listen("unix", "", a.Key, mproc.ListenOptions{}) // a socket in a private directory
	if err != nil {
		return err
	}
	defer l.Close()
	if err := a.Addr.Put(ctx, l.Addr()); err != nil {
		return err
	}
	c, err := l.Accept(ctx) // returns once Python passed the handshake
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetCodec(pickle.Codec{}) // Python's send and recv pickle their values
	for {
		var req request
		if err := c.Recv(ctx, &req); err == io.EOF {
			fmt.Printf("go worker (pid %d): EOF, Python closed the connection\n", os.Getpid())
			return nil
		} else if err != nil {
			return err
		}
		var reply any
		switch req.Op {
		case "square":
			reply = req.N * req.N
		case "upper":
			reply = strings.ToUpper(req.Text)
		case "sum":
			var sum int64
			for _, n := range req.Numbers {
				sum += n
			}
			reply = sum
		default:
			reply = "unknown op " + req.Op
		}
		fmt.Printf("go worker (pid %d): %s -> %v\n", os.Getpid(), req.Op, reply)
		if err := c.Send(ctx, reply); err != nil {
			return err
		}
	}
})

const client = `
import os, sys
from multiprocessing.connection import Client
with Client(sys.argv[1], authkey=bytes.fromhex(sys.argv[2])) as conn:
    for req in ({"op": "square", "n": 12}, {"op": "upper", "text": "hello from python"},
                {"op": "sum", "numbers": [1, 2, 3, 4]}):
        conn.send(req)
        print("python %d.%d (pid %d): sent %r, got %r" % (sys.version_info[0], sys.version_info[1],
              os.getpid(), req, conn.recv()), flush=True)
`

func main() {
	mproc.Main()
	if _, err := exec.LookPath("python3"); err != nil {
		fmt.Println("python3 not found: skipping this example")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := args{Key: make([]byte, 16)}
	rand.Read(a.Key)
	var err error
	if a.Addr, err = mproc.NewQueue[string](1); err != nil {
		log.Fatal(err)
	}
	w, err := worker.Start(ctx, a, mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err)
	}
	addr, err := a.Addr.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	py := exec.CommandContext(ctx, "python3", "-c", client, addr, hex.EncodeToString(a.Key))
	py.Stdout, py.Stderr = os.Stdout, os.Stderr
	if err := py.Run(); err != nil {
		log.Fatal("python: ", err)
	}
	if err := w.Wait(ctx); err != nil {
		log.Fatal(err)
	}
}
