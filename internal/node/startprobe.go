package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// errProbeDone ends the start probe's Serve.
var errProbeDone = errors.New("start probe done")

// startProbe answers the admin port while the node starts, before the
// admin API exists: /healthz is ok (the process runs), /readyz is 503 and
// says which stages are done and for how long the node has been starting,
// anything else is 503. Without it a probe would wait unanswered in the
// kernel's queue for the whole start (40 s with 100,000 properties before
// issue 20). The admin server takes the same listener over at readiness.
// A process started by an upgrade has none: the old process answers the
// admin port until the new one is ready.
type startProbe struct {
	srv   *http.Server
	ln    *probeListener
	drain *drainer
	done  chan struct{} // Serve returned
	once  sync.Once
}

// probeListener lets the probe stop accepting without closing the socket
// the admin server serves next.
type probeListener struct {
	net.Listener
	deadline interface{ SetDeadline(time.Time) error }
	mu       sync.Mutex
	stopped  bool
}

func (l *probeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.mu.Lock()
		stopped := l.stopped
		l.mu.Unlock()
		if stopped {
			return nil, errProbeDone
		}
	}
	return c, err
}

// Close leaves the socket open: the admin server owns it.
func (l *probeListener) Close() error { return nil }

// startStartProbe serves the probe on ln; nil when ln cannot be paused.
func startStartProbe(ln net.Listener, clock *startClock) *startProbe {
	d, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok || clock == nil {
		return nil
	}
	p := &startProbe{ln: &probeListener{Listener: ln, deadline: d}, drain: newDrainer(), done: make(chan struct{})}
	p.srv = &http.Server{Handler: http.HandlerFunc(clock.serveProbe), ReadHeaderTimeout: 5 * time.Second}
	p.srv.SetKeepAlivesEnabled(false)
	p.drain.watch(p.srv)
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(p.ln)
	}()
	return p
}

// stop ends the probe: no more accepts, its requests answered, the
// listener left as it was for the admin server.
func (p *startProbe) stop() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		p.ln.mu.Lock()
		p.ln.stopped = true
		p.ln.mu.Unlock()
		_ = p.ln.deadline.SetDeadline(time.Now()) // wakes the blocked Accept
		<-p.done
		_ = p.ln.deadline.SetDeadline(time.Time{})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.drain.wait(ctx)
		_ = p.srv.Shutdown(ctx)
	})
}

// serveProbe is the start probe's handler.
func (c *startClock) serveProbe(w http.ResponseWriter, r *http.Request) {
	done, since := c.progress()
	msg := fmt.Sprintf("starting for %v; stages done: %s", since.Round(time.Millisecond), strings.Join(done, ", "))
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	case "/readyz":
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": false, "degraded": false,
			"checks": map[string]string{"start": msg}, "stages_done": done})
	default:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "starting", "message": "the node is " + msg}})
	}
}
