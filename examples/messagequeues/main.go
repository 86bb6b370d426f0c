// Messagequeues: the kernel's two message queues, each filled by the
// parent and emptied by a child. A POSIX queue (posixmq) hands out the
// highest priority first; a System V queue (sysvmq) chooses by message type,
// and a negative type filter takes the lowest type first, so types serve as
// priorities. Within a priority, messages keep their order.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"mproc"
	"mproc/posixmq"
	"mproc/sysvmq"
)

type args struct {
	Posix string        // a POSIX queue is opened by name
	SysV  *sysvmq.Queue // a System V queue travels as its identifier
	N     int
}

var receive = mproc.Register("receive", func(ctx context.Context, a args) error {
	q, err := posixmq.Open(a.Posix, posixmq.O_RDONLY, nil, 0)
	if err != nil {
		return err
	}
	defer q.Close()
	buf := make([]byte, 128) // a POSIX receive buffer holds the queue's MsgSize
	fmt.Println("POSIX queue, highest priority first:")
	for range a.N {
		n, prio, err := q.Receive(ctx, buf)
		if err != nil {
			return err
		}
		fmt.Printf("  priority %d: %s\n", prio, buf[:n])
	}
	fmt.Println("System V queue, receiving with type filter -9 (lowest type up to 9 first):")
	for range a.N {
		n, typ, err := a.SysV.Receive(ctx, -9, buf)
		if err != nil {
			return err
		}
		fmt.Printf("  type %d: %s\n", typ, buf[:n])
	}
	return nil
})

// sent in this order; the child receives them in priority order
var msgs = []struct {
	text string
	prio int
}{{"routine report", 1}, {"disk almost full", 5}, {"FIRE", 9}, {"backup done", 1}, {"high load", 5}}

func main() {
	mproc.Main()
	ctx := context.Background()
	name := fmt.Sprintf("/mproc-example-%d", os.Getpid())
	pq, err := posixmq.Open(name, posixmq.O_WRONLY|posixmq.O_CREATE|posixmq.O_EXCL,
		&posixmq.Attr{MaxMsgs: 10, MsgSize: 128}, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer posixmq.Unlink(name) // the name outlives every process until then
	defer pq.Close()
	sq, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer sq.Remove() // so does a System V queue

	fmt.Println("sent, in this order:")
	for _, m := range msgs {
		typ := int64(10 - m.prio) // System V: type 1 is the most urgent
		fmt.Printf("  %-18q POSIX priority %d, System V type %d\n", m.text, m.prio, typ)
		if err := pq.Send(ctx, []byte(m.text), uint(m.prio)); err != nil {
			log.Fatal(err)
		}
		if err := sq.Send(ctx, typ, []byte(m.text)); err != nil {
			log.Fatal(err)
		}
	}
	p, err := receive.Start(ctx, args{Posix: name, SysV: sq, N: len(msgs)}, mproc.ProcOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(ctx); err != nil {
		log.Fatal(err)
	}
}
