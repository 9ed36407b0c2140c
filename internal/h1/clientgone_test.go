package h1_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

type clientGoneHooker interface {
	SetClientGone(ctx context.Context, f func()) bool
	ClearClientGone() (fired bool)
}

// TestClientGoneHook: the hook a handler sets with SetClientGone is called
// when the client closes its connection mid-request (as
// context.AfterFunc on the request's context), is refused for a context
// that is not the request's own, and once cleared is never called, not
// even by the request's end.
func TestClientGoneHook(t *testing.T) {
	fired := make(chan struct{})
	started := make(chan struct{}, 1)
	var late atomic.Bool
	result := make(chan string, 3)
	s := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hk := w.(clientGoneHooker)
		switch r.URL.Path {
		case "/other":
			if hk.SetClientGone(context.WithoutCancel(r.Context()), func() {}) {
				result <- "took another context"
			}
		case "/cleared":
			if !hk.SetClientGone(r.Context(), func() { late.Store(true) }) {
				result <- "refused the request's context"
			}
			if hk.ClearClientGone() {
				result <- "fired before the client went"
			}
		case "/check":
			if late.Load() {
				result <- "a cleared hook was called at the request's end"
			}
		case "/gone":
			if !hk.SetClientGone(r.Context(), func() { close(fired) }) {
				result <- "refused the request's context"
			}
			started <- struct{}{}
			select {
			case <-fired:
				if !hk.ClearClientGone() {
					result <- "ClearClientGone after the hook ran says not fired"
				}
				result <- "fired"
			case <-time.After(5 * time.Second):
				hk.ClearClientGone()
				result <- "not fired"
			}
			return
		}
		io.WriteString(w, "ok")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, p := range []string{"/other", "/cleared", "/check"} {
		io.WriteString(c, "GET "+p+" HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(p, err)
		}
		io.ReadAll(resp.Body)
	}
	io.WriteString(c, "GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	for {
		got := <-result
		if got == "fired" {
			break
		}
		t.Fatal(got)
	}
	select {
	case got := <-result:
		t.Fatal(got)
	default:
	}
}
