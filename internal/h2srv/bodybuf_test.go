package h2srv

import (
	"net/http"
	"strings"
	"testing"
)

// TestBodyBufferOnlyWhileWriting: a handler that has written no body
// holds no 4 KiB body buffer (a proxied stream waiting for its origin:
// 500 of them held 2 MB), takes one at its first body write, and the
// answer arrives whole, across several buffers' worth.
func TestBodyBufferOnlyWhileWriting(t *testing.T) {
	body := strings.Repeat("b", 3*handlerChunkWriteSize+100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rws := w.(*responseWriter).rws
		if rws.bw != nil {
			t.Error("before any body write: the stream holds a body buffer")
		}
		w.Header().Set("X", "y")
		w.WriteHeader(200)
		if rws.bw != nil {
			t.Error("after the header only: the stream holds a body buffer")
		}
		w.Write([]byte(body[:10]))
		if rws.bw == nil {
			t.Error("a body write went through no buffer")
		}
		w.Write([]byte(body[10:]))
	})
	rc := serveInlineConn(t, h, inlineFunc(func(http.ResponseWriter, *http.Request) bool { return false }))
	rc.get(1, "/x")
	res := rc.read(1)[1]
	if !res.ended || string(res.body) != body {
		t.Fatalf("answer: ended=%v, %d of %d bytes", res.ended, len(res.body), len(body))
	}
}
