package cache

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// TestTrimKeepsReaderViews: a reader writing out a view of the buffer must
// see the bytes it was given while other readers advance and the buffer is
// trimmed and grows.
func TestTrimKeepsReaderViews(t *testing.T) {
	f := &fill{head: make(chan struct{}), wake: make(chan struct{}), readers: map[*int64]struct{}{}, declared: -1}
	f.shared = true
	f.setMode() // not storing: trimmed as read
	r1 := new(int64)
	r2 := new(int64)
	f.readers[r1], f.readers[r2] = struct{}{}, struct{}{}
	var data bytes.Buffer
	for i := 0; data.Len() < 300<<10; i++ {
		fmt.Fprintf(&data, "%08d", i)
	}
	all := data.Bytes()
	ctx := context.Background()
	if err := f.write(ctx, all[:200<<10]); err != nil {
		t.Fatal(err)
	}
	f.advance(r2, 100<<10)
	view, _, _ := f.read(ctx, r2)
	want := bytes.Clone(view)
	f.advance(r1, 100<<10) // everyone is past 100 KiB (> trimStep): trimmed
	if err := f.write(ctx, all[200<<10:300<<10]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(view, want) {
		t.Fatal("a reader's view changed under it")
	}
	rest, _, _ := f.read(ctx, r2)
	if !bytes.Equal(rest, all[100<<10:300<<10]) {
		t.Fatalf("reading on gives %d bytes, not the stream's", len(rest))
	}
}
