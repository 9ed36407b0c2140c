package node

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

// tlsFront serves the HTTPS port when listen.http1_server is "edge": it
// accepts and handshakes each connection itself (in the connection's
// goroutine, within the read-header timeout), then hands those that
// chose HTTP/2 to Go's server (h2, through a listener fed by a channel)
// and serves the others with Edge's HTTP/1.x front (h1). Both share the
// handler and the hooks the node sets on h2 (rejects, drain, session
// tickets): see servers.
type tlsFront struct {
	h1 *h1.Server
	h2 *http.Server // its TLSConfig is the port's

	h2ln *chanListener
	// wrap, when set, wraps an HTTP/1.1 connection before h1 serves it
	// (the rejects watcher: see rejects.tlsConn).
	wrap func(*tls.Conn) net.Conn
	conf *tls.Config // h2.TLSConfig's clone, made by Serve (as ServeTLS does)

	mu      sync.Mutex
	ln      net.Listener
	closed  bool
	started bool           // Serve started h2.Serve
	conns   sync.WaitGroup // the connections being served
	h2done  chan error     // h2.Serve's end

	// The connections' goroutines (workers): one serves a connection,
	// then waits up to workerIdle for the next (handoff), until quit.
	workers sync.WaitGroup
	handoff chan net.Conn // unbuffered: a send succeeds only to a waiting worker
	idle    atomic.Int32  // workers waiting
	live    atomic.Int32  // workers
	quit    chan struct{} // closed by stop
	idleFor time.Duration // workerIdle; set before Serve
	maxIdle int32         // maxIdleWorkers; set before Serve
}

// A worker that served a connection waits this long for another one, and
// at most maxIdleWorkers wait: a goroutine kept keeps the stack its first
// handshake grew, where a new one copies its stack two or three times
// during its handshake (5 % of the CPU of a new TLS connection, measured).
// Idle, a worker holds its stack (a few KiB, halved by each collection).
const (
	workerIdle     = 2 * time.Second
	maxIdleWorkers = 256
)

func newTLSFront(h2 *http.Server, front *h1.Server) *tlsFront {
	return &tlsFront{h1: front, h2: h2, h2ln: newChanListener(), h2done: make(chan error, 1),
		handoff: make(chan net.Conn), quit: make(chan struct{}), idleFor: workerIdle, maxIdle: maxIdleWorkers}
}

// Serve accepts on ln until Shutdown or Close (http.ErrServerClosed).
func (f *tlsFront) Serve(ln net.Listener) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return http.ErrServerClosed
	}
	f.ln = ln
	f.conf = f.h2.TLSConfig.Clone()
	f.h2ln.addr = ln.Addr()
	f.started = true
	f.mu.Unlock()
	go func() { f.h2done <- f.h2.Serve(f.h2ln) }()
	for {
		c, err := ln.Accept()
		if err != nil {
			f.mu.Lock()
			closed := f.closed
			f.mu.Unlock()
			if closed {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		f.conns.Add(1)
		select {
		case f.handoff <- c: // to a waiting worker
		default:
			f.workers.Add(1)
			f.live.Add(1)
			go f.work(c)
		}
	}
}

// work serves c, then the connections handed to it while it waits.
func (f *tlsFront) work(c net.Conn) {
	defer f.workers.Done()
	defer f.live.Add(-1)
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		f.serveConn(c)
		f.conns.Done()
		if f.idle.Add(1) > f.maxIdle {
			f.idle.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(f.idleFor)
		} else {
			idle.Reset(f.idleFor)
		}
		select {
		case c = <-f.handoff:
			f.idle.Add(-1)
		case <-idle.C:
			f.idle.Add(-1)
			return
		case <-f.quit:
			f.idle.Add(-1)
			return
		}
	}
}

// serveConn handshakes c and passes it on. The connection is reported
// new (ConnState) before its handshake, as Go's server does: the drain
// learns from the handshake whether the client offered h2.
func (f *tlsFront) serveConn(c net.Conn) {
	state := f.h2.ConnState
	if state != nil {
		state(c, http.StateNew)
	}
	// Under TLS, a holdConn: the last answer of an HTTP/1.x connection
	// leaves with TLS's close_notify alert, in one write.
	tc := tls.Server(&holdConn{Conn: c}, f.conf)
	if d := f.h1.ReadHeaderTimeout; d > 0 {
		c.SetDeadline(time.Now().Add(d))
	}
	if err := tc.Handshake(); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		if f.h2.ErrorLog != nil {
			f.h2.ErrorLog.Printf("http: TLS handshake error from %s: %v", c.RemoteAddr(), err)
		}
		c.Close()
		if state != nil {
			state(c, http.StateClosed)
		}
		return
	}
	c.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		if !f.h2ln.push(tc) {
			tc.Close()
			if state != nil {
				state(c, http.StateClosed)
			}
		}
		return
	}
	if f.wrap != nil {
		f.h1.ServeConn(f.wrap(tc))
		return
	}
	f.h1.ServeConn(tc)
}

// shareHooks gives h1 the handler h and the connection hooks set on h2
// (call it once they are all set). h is the port's handler without the
// rejects watcher's wrapper and connection context: those make up for
// what Go's server does not report, and h1's refusals are counted through
// its connection (wrap) instead.
func (f *tlsFront) shareHooks(h http.Handler) {
	f.h1.Handler = h
	f.h1.ConnState = f.h2.ConnState
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

func (f *tlsFront) stop() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		close(f.quit) // idle workers leave; busy ones after their connection
	}
	f.closed = true
	f.h2ln.Close()
	if f.ln != nil {
		return f.ln.Close()
	}
	return nil
}

// waitH2 waits for h2.Serve to return (its listener is closed by stop).
func (f *tlsFront) waitH2() {
	f.mu.Lock()
	started := f.started
	f.started = false
	f.mu.Unlock()
	if started {
		<-f.h2done
	}
}

// Shutdown stops accepting and shuts both servers down (see
// http.Server.Shutdown); it returns once every connection it handed on
// ended, or ctx did.
func (f *tlsFront) Shutdown(ctx context.Context) error {
	f.stop()
	errs := make(chan error, 2)
	go func() { errs <- f.h1.Shutdown(ctx) }()
	go func() { errs <- f.h2.Shutdown(ctx) }()
	err := errors.Join(<-errs, <-errs)
	f.waitH2()
	if err != nil {
		return err
	}
	// Handshakes under way end within the read-header timeout.
	done := make(chan struct{})
	go func() {
		f.conns.Wait()
		f.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *tlsFront) Close() error {
	err := errors.Join(f.stop(), f.h1.Close(), f.h2.Close())
	f.waitH2()
	return err
}

func (f *tlsFront) SetKeepAlivesEnabled(v bool) {
	f.h1.SetKeepAlivesEnabled(v)
	f.h2.SetKeepAlivesEnabled(v)
}

// chanListener is a net.Listener whose connections are pushed to it.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to Accept; false once the listener is closed.
func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
