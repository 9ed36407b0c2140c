package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

// serveH1 serves the edge's handler on Edge's HTTP/1.x front and returns
// its address.
func serveH1(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &h1.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String()
}

// TestClientGoneAbortsStalledOriginOverH1: on Edge's HTTP/1.x front, a
// client that leaves while the origin has not answered ends the exchange
// at once (the front's client-gone hook, not context.AfterFunc): the
// origin's connection is closed, long before the response-header timeout.
func TestClientGoneAbortsStalledOriginOverH1(t *testing.T) {
	got, closed := make(chan struct{}, 1), make(chan struct{}, 1)
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		got <- struct{}{}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, c) // until the edge closes it
		closed <- struct{}{}
	})
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}",
		"timeouts: {response_header: 60s}")})
	addr := serveH1(t, e.srv.HTTPHandler())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a.example\r\n\r\n")
	<-got
	start := time.Now()
	c.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("origin connection still open 10 s after the client left")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("origin connection closed %v after the client left", d)
	}
}

// TestWatchClientUsesFrontHook: the exchange's client watch takes the
// HTTP/1.x front's hook through the access recorder, for the request's
// own context and for the request state over it, and falls back to
// context.AfterFunc for any other context (a cache fill's, which must
// outlive the client).
func TestWatchClientUsesFrontHook(t *testing.T) {
	res := make(chan string, 1)
	addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := newRecorder(w)
		defer rec.release()
		msg := "ok"
		for i, tc := range []struct {
			ctx  context.Context
			hook bool
		}{{r.Context(), true}, {&request{Context: r.Context()}, true}, {context.WithoutCancel(r.Context()), false}} {
			cw := watchClient(tc.ctx, rec, func() {})
			if (cw.hk != nil) != tc.hook {
				msg = fmt.Sprintf("context %d: hook used %v, want %v", i, cw.hk != nil, tc.hook)
			}
			if !cw.end() {
				msg = "fired"
			}
		}
		res <- msg
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if m := <-res; m != "ok" {
		t.Fatal(m)
	}
}
