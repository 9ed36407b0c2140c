package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"
)

// rejects makes visible the answers Go's HTTP server writes itself, which
// never reach the proxy's handler and so carry no request id and leave no
// access line: 400 for a malformed request or Host, 431 for an oversized
// head, 501 for an unknown transfer coding, and HTTP/2 protocol errors.
// Each is counted (edge_http_server_rejected_total) and logged: in the
// access log when it is on, at debug level in the node's log.
//
//   - HTTP port: the connection is wrapped, and the bytes Go writes for
//     such an answer (a status line followed at once by Go's fixed
//     "Content-Type: text/plain; charset=utf-8\r\nConnection: close"
//     headers; the proxy's answers always carry a Date and an
//     X-Request-Id) are recognised, so the status is exact.
//   - HTTPS port, HTTP/1.1: the bytes are encrypted below the server, so
//     a connection that began a request (StateActive) and closed without
//     the handler being called for it is counted as "unparsed": refused by
//     Go, or abandoned by the client mid-head.
//   - HTTP/2: HTTP2Config.CountError reports protocol errors by type. The
//     400 and 431 answers Go's HTTP/2 server writes for a stream are not
//     reported by Go at all: they stay invisible (see the README).
type rejects struct {
	log    *zap.Logger // the node's, for debug lines
	access *zap.Logger // nil when log.access is off
	count  func(proto, reason string)
	conns  sync.Map // HTTPS net.Conn → *connTrack
}

// goErrorHeaders follows the status line of every answer Go's HTTP/1
// server writes itself (net/http, server.go: errorHeaders).
var goErrorHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

// goErrorStatus returns the status of an answer Go's server wrote itself,
// or 0 when b is not one.
func goErrorStatus(b []byte) int {
	if len(b) < 12 || b[9] < '4' || !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) {
		return 0
	}
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 || !bytes.HasPrefix(b[i:], goErrorHeaders) {
		return 0
	}
	code, err := strconv.Atoi(string(b[9:12]))
	if err != nil {
		return 0
	}
	return code
}

func (r *rejects) record(port, proto, reason, remote string) {
	r.count(proto, reason)
	fields := []zap.Field{zap.String("port", port), zap.String("proto", proto), zap.String("reason", reason), zap.String("remote", remote)}
	if code, err := strconv.Atoi(reason); err == nil {
		fields = append(fields, zap.Int("status", code))
	}
	r.log.Debug("request answered by Go's HTTP server, not the proxy", fields...)
	if r.access != nil {
		r.access.Info("request refused by the server", fields...)
	}
}

// listener wraps the HTTP port's listener.
func (r *rejects) listener(ln net.Listener) net.Listener { return watchListener{ln, r} }

type watchListener struct {
	net.Listener
	r *rejects
}

func (l watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchConn{Conn: c, r: l.r, port: "http"}, nil
}

type watchConn struct {
	net.Conn
	r    *rejects
	port string
}

func (c *watchConn) Write(b []byte) (int, error) {
	if code := goErrorStatus(b); code != 0 {
		c.r.record(c.port, "HTTP/1.1", strconv.Itoa(code), c.RemoteAddr().String())
	}
	return c.Conn.Write(b)
}

// NetConn is the connection watched (the drainer follows it).
func (c *watchConn) NetConn() net.Conn { return c.Conn }

// SyscallConn is the watched connection's socket, when it has one:
// internal/h1 writes the end of a keep-alive response on it and waits for
// the next request in one step (issue 22). Those bytes skip Write, which
// loses nothing: the answers Write counts all close the connection, and
// internal/h1 writes those through Write.
func (c *watchConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNoSyscallConn
}

var errNoSyscallConn = errors.New("connection without a socket")

// tlsConn watches an HTTPS connection served by Edge's HTTP/1.x front: it
// writes its refusals (the same bytes as Go's) in plaintext through this
// wrapper, so their status is exact, as on the HTTP port.
func (r *rejects) tlsConn(tc *tls.Conn) net.Conn {
	return &watchTLSConn{watchConn{Conn: tc, r: r, port: "https"}, tc}
}

type watchTLSConn struct {
	watchConn
	tc *tls.Conn
}

// Write: a write of more than one TLS record goes out corked (see
// corkedWrite). Go's refusals, which Write watches for, are small.
func (c *watchTLSConn) Write(b []byte) (int, error) {
	if len(b) <= corkAbove {
		return c.watchConn.Write(b)
	}
	return corkedWrite(c.tc, b)
}

// Cork corks or uncorks the socket under TLS: internal/h1 corks the writes
// of a body piece that make several TLS records (see corkedWrite).
func (c *watchTLSConn) Cork(on bool) {
	if h, ok := c.tc.NetConn().(*holdConn); ok {
		h.cork(on)
	}
}

// ConnectionState is the TLS state its requests carry (internal/h1 reads
// it).
func (c *watchTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// NetConn is the connection under TLS (the drainer follows it).
func (c *watchTLSConn) NetConn() net.Conn { return c.tc.NetConn() }

// HoldLastWrite: internal/h1 calls it before the flush of a connection's
// last answer, which then leaves with TLS's close_notify (see holdConn).
func (c *watchTLSConn) HoldLastWrite() {
	if h, ok := c.tc.NetConn().(*holdConn); ok {
		h.holdLast()
	}
}

// ReadFrom keeps sendfile for file origins: Go's own answers are never
// written through it.
func (c *watchConn) ReadFrom(src io.Reader) (int64, error) { return io.Copy(c.Conn, src) }

// CloseWrite lets Go's server half-close after a 431, so that the client
// reads the answer before the connection goes.
func (c *watchConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// connTrack follows one HTTPS connection's current request.
type connTrack struct {
	active atomic.Bool // a request began (StateActive) ...
	served atomic.Bool // ... and reached the handler
}

type trackKey struct{}

// watchTLS sets the hooks on the HTTPS server and wraps its handler.
func (r *rejects) watchTLS(srv *http.Server) {
	srv.Handler = servedMark{srv.Handler}
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		t := &connTrack{}
		r.conns.Store(c, t)
		return context.WithValue(ctx, trackKey{}, t)
	}
	srv.ConnState = r.state
	if srv.HTTP2 == nil {
		srv.HTTP2 = &http.HTTP2Config{}
	}
	srv.HTTP2.CountError = func(errType string) {
		r.count("HTTP/2.0", errType)
		r.log.Debug("HTTP/2 protocol error answered by Go's HTTP server", zap.String("type", errType))
	}
}

func (r *rejects) state(c net.Conn, s http.ConnState) {
	c = baseConn(c) // HTTP/2's server reports its batchConn
	v, ok := r.conns.Load(c)
	if !ok {
		return
	}
	t := v.(*connTrack)
	switch s {
	case http.StateActive:
		t.active.Store(true)
		t.served.Store(false)
	case http.StateIdle:
		t.active.Store(false)
	case http.StateHijacked:
		r.conns.Delete(c)
	case http.StateClosed:
		r.conns.Delete(c)
		if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
			return // HTTP/2 reports through CountError
		}
		if _, ok := c.(*watchTLSConn); ok {
			return // Edge's front: counted by status as it answers
		}
		if t.active.Load() && !t.served.Load() {
			r.record("https", "HTTP/1.1", "unparsed", c.RemoteAddr().String())
		}
	}
}

// servedMark marks the request's connection served (see rejects.state)
// before its handler runs.
type servedMark struct{ next http.Handler }

func (m servedMark) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	markServed(req)
	m.next.ServeHTTP(w, req)
}

// ServeInline: see internal/h2srv's InlineHandler (HTTP/2 only, so the
// mark, which only HTTP/1.1 reads, is not needed; set it all the same).
func (m servedMark) ServeInline(w http.ResponseWriter, req *http.Request) bool {
	if !serveInline(m.next, w, req) {
		return false
	}
	markServed(req)
	return true
}

func markServed(req *http.Request) {
	if t, ok := req.Context().Value(trackKey{}).(*connTrack); ok {
		t.served.Store(true)
	}
}
