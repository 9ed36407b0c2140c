package node

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
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
	conns   sync.WaitGroup // the connections' goroutines
	h2done  chan error     // h2.Serve's end
}

func newTLSFront(h2 *http.Server, front *h1.Server) *tlsFront {
	return &tlsFront{h1: front, h2: h2, h2ln: newChanListener(), h2done: make(chan error, 1)}
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
		go func() {
			defer f.conns.Done()
			f.serveConn(c)
		}()
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
	tc := tls.Server(c, f.conf)
	if d := f.h1.ReadHeaderTimeout; d > 0 {
		dl := time.Now().Add(d)
		c.SetReadDeadline(dl)
		c.SetWriteDeadline(dl)
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
	c.SetReadDeadline(time.Time{})
	c.SetWriteDeadline(time.Time{})
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
