package h2srv

// The client-gone hook of a stream (edge_gone.go): the proxy watches the
// request's context through it while it waits for the origin. It must
// fire for its own stream when that stream's client leaves (reset,
// connection closed, server shutdown), never for another stream, and
// never once cleared.

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// serveConnCtx serves one plain (h2c prior-knowledge) connection with h
// under the base context ctx, and returns the client's side after the
// SETTINGS exchange.
func serveConnCtx(t *testing.T, ctx context.Context, h http.Handler) *rconn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		(&Server{}).ServeConn(c, &ServeConnOpts{Context: ctx, Handler: h, BaseConfig: &http.Server{}})
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ln.Close()
		wg.Wait()
	})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			fr.WriteSettingsAck()
			break
		}
	}
	return &rconn{t: t, c: c, fr: fr}
}

type goneHooker interface {
	SetClientGone(ctx context.Context, f func()) bool
	ClearClientGone() (fired bool)
}

// goneHandler sets the hook of each request, tells its path on set, and
// waits until the hook fired (its path on fired) or 10 s passed.
type goneHandler struct {
	set, fired chan string
	timedOut   atomic.Int32
}

func newGoneHandler() *goneHandler {
	return &goneHandler{set: make(chan string, 16), fired: make(chan string, 16)}
}

func (h *goneHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	hit := make(chan struct{})
	if !w.(goneHooker).SetClientGone(r.Context(), func() { close(hit) }) {
		h.set <- "refused " + path
		return
	}
	h.set <- path
	select {
	case <-hit:
		h.fired <- path
	case <-time.After(10 * time.Second):
		h.timedOut.Add(1)
		h.fired <- "timeout " + path
	}
}

// TestH2ClientResetFiresGoneHookOfItsStreamOnly (attack: a client resets
// its stream while the proxy waits for a stalled origin: without the hook
// the exchange holds its goroutine and origin connection until a timeout;
// with a hook shared or misrouted, another stream's exchange is aborted).
// Two streams set their hooks; the client resets one: only its hook
// fires, then the other's, on its own reset.
func TestH2ClientResetFiresGoneHookOfItsStreamOnly(t *testing.T) {
	h := newGoneHandler()
	rc := serveConnCtx(t, context.Background(), h)
	rc.get(1, "/one")
	rc.get(3, "/three")
	for range 2 {
		if p := <-h.set; p != "/one" && p != "/three" {
			t.Fatal(p)
		}
	}
	rc.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	if p := <-h.fired; p != "/three" {
		t.Fatalf("reset of stream 3 fired %q", p)
	}
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	if p := <-h.fired; p != "/one" {
		t.Fatalf("reset of stream 1 fired %q", p)
	}
}

// TestH2ConnectionClosedFiresGoneHook: the client's connection ends while
// the handler waits: the hook fires.
func TestH2ConnectionClosedFiresGoneHook(t *testing.T) {
	h := newGoneHandler()
	rc := serveConnCtx(t, context.Background(), h)
	rc.get(1, "/one")
	if p := <-h.set; p != "/one" {
		t.Fatal(p)
	}
	rc.c.Close()
	if p := <-h.fired; p != "/one" {
		t.Fatalf("closing the connection fired %q", p)
	}
}

// TestH2ServerShutdownFiresGoneHook: the connection's base context ends
// (the node's shutdown) while the handler waits: the hook fires, as
// context.AfterFunc on the request's context would.
func TestH2ServerShutdownFiresGoneHook(t *testing.T) {
	h := newGoneHandler()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := serveConnCtx(t, ctx, h)
	rc.get(1, "/one")
	if p := <-h.set; p != "/one" {
		t.Fatal(p)
	}
	cancel()
	if p := <-h.fired; p != "/one" {
		t.Fatalf("cancelling the base context fired %q", p)
	}
}

// TestH2GoneHookAfterReset: a hook set once the stream was reset is
// called at once; a hook cleared before the reset is never called; a
// hook for any other context than the request's own is refused.
func TestH2GoneHookAfterReset(t *testing.T) {
	res := make(chan string, 1)
	reset := make(chan struct{})
	rc := serveConnCtx(t, context.Background(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hk := w.(goneHooker)
		msg := "ok"
		type key struct{}
		if hk.SetClientGone(context.WithValue(r.Context(), key{}, 1), func() {}) {
			msg = "hook set for another context"
		}
		var cleared atomic.Bool
		if !hk.SetClientGone(r.Context(), func() { cleared.Store(true) }) {
			msg = "refused"
		}
		if hk.ClearClientGone() {
			msg = "cleared hook fired before the reset"
		}
		close(reset)
		<-r.Context().Done()
		called := false
		if !hk.SetClientGone(r.Context(), func() { called = true }) || !called {
			msg = "hook set after the reset not called at once"
		}
		if !hk.ClearClientGone() {
			msg = "ClearClientGone: not fired"
		}
		if cleared.Load() {
			msg = "cleared hook called"
		}
		res <- msg
	}))
	rc.get(1, "/one")
	<-reset
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	if m := <-res; m != "ok" {
		t.Fatal(m)
	}
}
