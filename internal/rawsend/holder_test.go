package rawsend

import (
	"bufio"
	"bytes"
	"testing"
)

// TestHoldFlushKeepsBytesOutOfTheWriter: a held flush reaches neither W
// nor loses a byte; writes outside it pass through to W.
func TestHoldFlushKeepsBytesOutOfTheWriter(t *testing.T) {
	var out bytes.Buffer
	h := &Holder{W: &out}
	bw := bufio.NewWriterSize(h, 64)
	bw.WriteString("head")
	if err := h.HoldFlush(bw); err != nil {
		t.Fatal(err)
	}
	if string(h.Held) != "head" || out.Len() != 0 {
		t.Fatalf("held %q, written %q; want held \"head\", nothing written", h.Held, out.String())
	}
	h.Held = nil
	bw.WriteString("body")
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "body" || h.Held != nil {
		t.Fatalf("written %q, held %q; want \"body\" written through", out.String(), h.Held)
	}
}
