package node

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

// drainer follows the connections of the node's servers so that the old
// process of an upgrade answers every request it accepted. Go's
// Server.Shutdown drops a request it reads after shutdown began: an
// HTTP/1 connection accepted just before (its TLS handshake or request
// head still on the way) would be closed unanswered. So the old process
// first stops accepting and turns keep-alive off, waits until its HTTP/1
// connections have answered and closed, and only then calls Shutdown,
// which sends GOAWAY on HTTP/2 connections (clients retry the requests it
// did not take on a new connection, to the new process) and waits for
// their streams.
type drainer struct {
	mu sync.Mutex
	// conns are the open connections (the raw net.Conn under TLS) and
	// what is known of them.
	conns map[net.Conn]*connInfo
}

type connInfo struct {
	since time.Time
	h2    bool // the client offered h2, which the server prefers
	used  bool // a request was read (HTTP/1)
}

func newDrainer() *drainer { return &drainer{conns: map[net.Conn]*connInfo{}} }

// watch follows srv's connections; call it once the server's ConnState
// and TLSConfig are set (they are chained, not replaced).
func (d *drainer) watch(s server) {
	switch srv := s.(type) {
	case *h1.Server:
		srv.ConnState = d.chain(srv.ConnState)
	case *tlsFront:
		d.watch(srv.h2) // whose hooks the front shares
	case *http.Server:
		srv.ConnState = d.chain(srv.ConnState)
		d.watchTLS(srv)
	}
}

func (d *drainer) chain(prev func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(c net.Conn, s http.ConnState) {
		d.state(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
}

func (d *drainer) watchTLS(srv *http.Server) {
	if srv.TLSConfig == nil {
		return
	}
	prevConfig := srv.TLSConfig.GetConfigForClient
	srv.TLSConfig.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hello.SupportedProtos, "h2") {
			d.mu.Lock()
			if ci := d.conns[rawConn(hello.Conn)]; ci != nil {
				ci.h2 = true
			}
			d.mu.Unlock()
		}
		if prevConfig != nil {
			return prevConfig(hello)
		}
		return nil, nil
	}
}

// rawConn is the connection accepted under c's wrappers (TLS, the
// rejects watcher's, the HTTPS front's holdConn).
func rawConn(c net.Conn) net.Conn {
	for {
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		c = nc.NetConn()
	}
}

func (d *drainer) state(c net.Conn, s http.ConnState) {
	// Under TLS, HTTP/2's batchConn or the rejects watcher's wrapper: the
	// raw connection, the one accepted.
	c = rawConn(baseConn(c))
	d.mu.Lock()
	defer d.mu.Unlock()
	switch s {
	case http.StateNew:
		// Once: the HTTPS front reports a connection new before its
		// handshake (which may mark it h2), and the server it goes to
		// again.
		if d.conns[c] == nil {
			d.conns[c] = &connInfo{since: time.Now()}
		}
	case http.StateActive, http.StateIdle:
		if ci := d.conns[c]; ci != nil {
			ci.used = true
		}
	case http.StateClosed, http.StateHijacked:
		delete(d.conns, c)
	}
}

// http1 counts the connections Shutdown could still cut: HTTP/1 ones,
// and those whose protocol is not known yet. Like Shutdown, it does not
// wait for a connection that has sent no request for 5 seconds.
func (d *drainer) http1() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	idle := time.Now().Add(-5 * time.Second)
	for _, ci := range d.conns {
		if !ci.h2 && (ci.used || ci.since.After(idle)) {
			n++
		}
	}
	return n
}

// wait returns once no HTTP/1 connection is open, or ctx ends.
func (d *drainer) wait(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for d.http1() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
