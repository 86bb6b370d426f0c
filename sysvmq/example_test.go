//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package sysvmq_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"mproc/sysvmq"
)

// Types as priorities: a negative filter takes the lowest type first.
func Example() {
	q, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Remove()
	ctx := context.Background()
	q.Send(ctx, 3, []byte("low"))
	q.Send(ctx, 1, []byte("urgent"))
	q.Send(ctx, 2, []byte("normal"))
	buf := make([]byte, 64)
	for {
		n, typ, err := q.TryReceive(-3, buf)
		if errors.Is(err, sysvmq.ErrEmpty) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(typ, string(buf[:n]))
	}
	// Output:
	// 1 urgent
	// 2 normal
	// 3 low
}

// A message longer than the buffer stays queued; the error says how long
// it is.
func ExampleTooLongError() {
	q, err := sysvmq.Get(sysvmq.IPCPrivate, 0, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Remove()
	q.TrySend(7, make([]byte, 100))
	_, _, err = q.TryReceive(0, make([]byte, 16))
	var tl *sysvmq.TooLongError
	if errors.As(err, &tl) {
		fmt.Println(tl.Size, "bytes; buffer", tl.Buffer)
	}
	n, _, err := q.TryReceive(0, make([]byte, tl.Size))
	fmt.Println(n, err)
	// Output:
	// 100 bytes; buffer 16
	// 100 <nil>
}
