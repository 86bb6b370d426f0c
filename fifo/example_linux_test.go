package fifo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"mproc/fifo"
)

// A server reads messages that any number of writers send, each in one
// atomic write.
func Example() {
	dir, _ := os.MkdirTemp("", "fifo-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "inbox")
	if err := fifo.Create(path, 0o600); err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	r, err := fifo.OpenServer(path) // never sees the end; writers may come and go
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	// In another process, or a shell: printf '%04x%s' 9 hello > inbox
	w, err := fifo.OpenWriter(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	w.WriteMessage(ctx, []byte("hello"))
	w.Close()

	msg, err := r.ReadMessage(ctx)
	fmt.Printf("%s %v\n", msg, err)
	// Output: hello <nil>
}
