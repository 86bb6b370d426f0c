package posixmq_test

import (
	"context"
	"fmt"
	"os"

	"mproc/posixmq"
)

func Example() {
	name := fmt.Sprintf("/example-%d", os.Getpid())
	q, err := posixmq.Open(name, posixmq.O_RDWR|posixmq.O_CREATE|posixmq.O_EXCL, &posixmq.Attr{MaxMsgs: 4, MsgSize: 64}, 0o600)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer posixmq.Unlink(name)
	defer q.Close()

	ctx := context.Background()
	q.Send(ctx, []byte("routine"), 1)
	q.Send(ctx, []byte("urgent"), 9)
	q.Send(ctx, []byte("also routine"), 1)

	buf := make([]byte, 64) // the queue's MsgSize: the kernel insists
	for {
		n, prio, err := q.TryReceive(buf)
		if err != nil {
			break // ErrEmpty
		}
		fmt.Printf("%d %s\n", prio, buf[:n])
	}
	// Output:
	// 9 urgent
	// 1 routine
	// 1 also routine
}

func ExampleQueue_Notify() {
	name := fmt.Sprintf("/example-notify-%d", os.Getpid())
	q, err := posixmq.Open(name, posixmq.O_RDWR|posixmq.O_CREATE|posixmq.O_EXCL, &posixmq.Attr{MaxMsgs: 4, MsgSize: 64}, 0o600)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer posixmq.Unlink(name)
	defer q.Close()

	ready := make(chan struct{})
	if _, err := q.Notify(func() { close(ready) }); err != nil {
		fmt.Println(err)
		return
	}
	q.TrySend([]byte("hello"), 0) // from any process that opens the queue
	<-ready
	a, _ := q.Attr()
	fmt.Println("messages waiting:", a.CurMsgs)
	// Output:
	// messages waiting: 1
}
