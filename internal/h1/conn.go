package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edge-cdn/edge/internal/rawsend"
	"golang.org/x/net/http/httpguts"
)

// Connection states (conn.state), for Shutdown's closing of idle ones.
const (
	stateNew int32 = iota
	stateActive
	stateIdle
	stateClosing // closed by Shutdown or SetKeepAlivesEnabled
	stateHijacked
)

// conn is one client connection, served by one goroutine.
type conn struct {
	s      *Server
	rwc    net.Conn
	since  time.Time
	state  atomic.Int32
	tls    *tls.ConnectionState
	remote string

	cr   connReader
	br   *bufio.Reader
	bw   *bufio.Writer
	cw   connWriter                 // what bw writes to (response.go)
	head []byte                     // the current request's raw head
	pend [bufferBeforeChunking]byte // a response's body before its head is out

	// wmu orders a 100 Continue (written by whoever reads the body first)
	// with the response's head.
	wmu sync.Mutex

	// raw is the plain TCP socket under rwc (nil: none reachable, or
	// TLS): a keep-alive response's last bytes are then written and the
	// next request waited for in one step (sendAndWait). hw is what bw writes
	// to then.
	raw     syscall.RawConn
	hw      rawsend.Holder
	waitFn  func(fd uintptr) bool // c.sendWait, bound once
	rawErr  error                 // sendWait's write error
	waiting bool                  // sendWait wrote everything and waits

	lastMethod string
	hijacked   bool
	// body is the current request's body while its handler runs: closed
	// by close() before the reader it reads goes back to the pool.
	body *body
	// panicked: the handler panicked; goroutines it started may still
	// use its request and ResponseWriter, so the buffers are not pooled.
	panicked bool

	// The current request's cancellation and its client-gone hook
	// (response.SetClientGone), guarded by hookMu. cancelFn is
	// c.cancelRequest, bound once: every cancellation of the request's
	// context while it is served goes through it.
	hookMu    sync.Mutex
	reqCancel *reqCtx
	cancelled bool   // the request's context was cancelled
	hook      func() // to call when it is
	hookFired bool   // hook was called (or is being called)
	cancelFn  func()
}

// cancelRequest cancels the current request's context, then calls its
// client-gone hook if one is set.
func (c *conn) cancelRequest() {
	c.hookMu.Lock()
	cancel, f := c.reqCancel, c.hook
	c.cancelled = true
	c.hook = nil
	if f != nil {
		c.hookFired = true
	}
	c.hookMu.Unlock()
	if cancel != nil {
		cancel.cancel()
	}
	if f != nil {
		f()
	}
}

// endRequest forgets the request's context, cancelled by now: a connection
// waiting for its next request keeps nothing of the last (the context is
// in the request's reqState, with its ResponseWriter and, through it, the
// Request).
func (c *conn) endRequest() {
	c.hookMu.Lock()
	c.reqCancel = nil
	c.hookMu.Unlock()
}

// beginRequest makes cancel the current request's and clears the hook.
func (c *conn) beginRequest(cancel *reqCtx) {
	c.hookMu.Lock()
	c.reqCancel, c.cancelled, c.hook, c.hookFired = cancel, false, nil, false
	c.hookMu.Unlock()
}

const (
	readBufSize  = 4 << 10
	writeBufSize = 8 << 10
	// headBufKeep: a head buffer grown past this is not kept for the next
	// request (a 64 KiB head now and then must not pin 64 KiB per idle
	// connection).
	headBufKeep = 8 << 10
)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}
	heads   = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
)

func (c *conn) setState(st http.ConnState) {
	switch st {
	case http.StateNew:
		c.state.Store(stateNew)
	case http.StateActive:
		c.state.Store(stateActive)
	case http.StateIdle:
		c.state.Store(stateIdle)
	case http.StateHijacked:
		c.state.Store(stateHijacked)
	}
	if h := c.s.ConnState; h != nil {
		h(c.rwc, st)
	}
}

func (c *conn) serve() {
	c.remote = c.rwc.RemoteAddr().String()
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			const size = 64 << 10
			buf := make([]byte, size)
			buf = buf[:runtime.Stack(buf, false)]
			c.s.logf("h1: panic serving %v: %v\n%s", c.remote, p, buf)
		}
		c.close()
	}()
	switch tc := c.rwc.(type) {
	case *tls.Conn:
		if !tc.ConnectionState().HandshakeComplete {
			// From a tls.NewListener: the handshake, bounded as a head.
			if d := c.s.ReadHeaderTimeout; d > 0 {
				tc.SetDeadline(time.Now().Add(d))
			}
			if err := tc.Handshake(); err != nil {
				c.s.logf("h1: TLS handshake error from %s: %v", c.remote, err)
				return
			}
			tc.SetDeadline(time.Time{})
		}
		st := tc.ConnectionState()
		c.tls = &st
	case interface{ ConnectionState() tls.ConnectionState }:
		// A wrapped *tls.Conn (as Go's server takes it).
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.cr.c = c
	c.cancelFn = c.cancelRequest
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(&c.cr)
	c.bw = writers.Get().(*bufio.Writer)
	c.cw.init(c.rwc, c.tls == nil)
	c.bw.Reset(&c.cw)
	if c.tls == nil && rawWait {
		if sc, ok := c.rwc.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				c.raw = raw
				c.hw.W = &c.cw
				c.waitFn = c.sendWait
				c.bw.Reset(&c.hw)
			}
		}
	}
	hb := heads.Get().(*[]byte)
	c.head = (*hb)[:0]
	defer func() {
		if cap(c.head) <= headBufKeep {
			*hb = c.head[:0]
			heads.Put(hb)
		}
		c.head = nil
	}()
	max := c.s.maxHeaderBytes()
	for first := true; ; first = false {
		if !first {
			if !c.waitNext() {
				return
			}
		}
		if d := c.s.ReadHeaderTimeout; d > 0 && (first || c.lastMethod == http.MethodPost || !c.headBuffered()) {
			// (A head whole in the buffer is read without the
			// connection: the idle wait's deadline, still set, is moot.)
			c.cr.setDeadline(time.Now().Add(d))
		}
		if c.lastMethod == http.MethodPost {
			// RFC 9112 2.2: a CRLF after a POST body is tolerated (Go too).
			peek, _ := c.br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			c.br.Discard(n)
		}
		sawBytes, err := c.readHead(max)
		if sawBytes && first {
			c.setState(http.StateActive)
		}
		if err != nil {
			switch {
			case err == errHeadTooLarge:
				c.writeError("431 Request Header Fields Too Large", "431 Request Header Fields Too Large")
				c.closeWriteAndWait()
			case sawBytes && err == io.EOF:
				// The head was cut: Go's parser reads io.ErrUnexpectedEOF.
				c.writeError("400 Bad Request", "400 Bad Request")
			}
			return
		}
		// The head's (or the idle wait's) deadline is cleared before the
		// connection is read again, if it is (connReader.Read): a request
		// whose handler reads nothing from the connection changes it once,
		// for the wait for the next request, not three times.
		c.cr.markStale()
		st := new(reqState)
		r, fast := c.fastParse(st)
		if !fast {
			if r, err = c.slowParse(); err == nil {
				r = r.WithContext(&st.ctx)
			}
		}
		if err == nil {
			err = c.check(r, fast)
		}
		if err != nil {
			c.writeParseError(err)
			return
		}
		c.lastMethod = r.Method
		c.beginRequest(&st.ctx)
		keep := c.serveRequest(st, r, c.cancelFn)
		c.endRequest()
		if !keep {
			c.writeHeld()
			return
		}
		if c.hw.Held == nil {
			c.setState(http.StateIdle)
		} // else by waitNext, once the response is written
	}
}

// waitNext waits for the next request's first byte, up to IdleTimeout;
// false: the connection ends (closed by the client, the timeout, or
// Shutdown).
func (c *conn) waitNext() bool {
	if c.s.noKeep.Load() || c.s.inShutdown.Load() {
		c.writeHeld()
		return false
	}
	if cap(c.head) > headBufKeep {
		c.head = make([]byte, 0, 1024)
	}
	var idleEnd time.Time // zero: no idle timeout
	d := c.s.IdleTimeout
	raw := c.hw.Held != nil
	bounded := false // the raw wait ended at rawWaitMax
	switch {
	case raw && (d <= 0 || d > rawWaitMax):
		// The raw wait is bounded by rawWaitMax (see sendAndWait); the
		// idle timeout's deadline replaces it should it pass.
		now := time.Now()
		if d > 0 {
			idleEnd = now.Add(d)
		}
		c.cr.setDeadline(now.Add(rawWaitMax))
	case d > 0:
		c.cr.setDeadline(time.Now().Add(d))
		raw = false // nothing to replace
	default:
		c.cr.clearStale()
	}
	if c.hw.Held != nil && !c.sendAndWait() {
		return false
	}
	for {
		_, err := c.br.Peek(1)
		if err == nil {
			break
		}
		if !raw || !errors.Is(err, os.ErrDeadlineExceeded) || !idleEnd.IsZero() && !time.Now().Before(idleEnd) {
			return false
		}
		c.cr.setDeadline(idleEnd) // zero: none
		raw = false
		bounded = true
	}
	if bounded {
		// The bounded wait ended and a request came after all: either the
		// client paused more than rawWaitMax, or it sent while the handler
		// ran and the reset took the wake-up (a pipelining client that
		// writes each request on its own). Such a client is not made to
		// wait rawWaitMax again: this connection's answers are written the
		// ordinary way from now on.
		c.raw = nil
	}
	if raw && c.s.ReadHeaderTimeout <= 0 {
		c.cr.setDeadline(idleEnd) // the rest of the head, as before: under the idle deadline
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return false // closed by Shutdown meanwhile
	}
	if h := c.s.ConnState; h != nil {
		h(c.rwc, http.StateActive)
	}
	return true
}

// flushEnd is a response's final flush (response.finish). On a plain TCP
// connection the bytes are held, to be written by waitNext together with
// the wait for the next request (or by writeHeld, should the connection
// end first); their write error then ends the connection there.
func (c *conn) flushEnd() error {
	if c.raw == nil || c.bw.Buffered() == 0 {
		return c.bw.Flush()
	}
	return c.hw.HoldFlush(c.bw)
}

// writeHeld writes the bytes flushEnd held, if any: the connection ends,
// or the next request is there already.
func (c *conn) writeHeld() bool {
	p := c.hw.Held
	if p == nil {
		return true
	}
	c.hw.Held = nil
	_, err := c.rwc.Write(p)
	return err == nil
}

// rawWaitMax bounds sendAndWait's wait for the next request; then the
// idle timeout's deadline replaces it, and the read that follows waits as
// any other. It is the most a wake-up that came before the wait (below)
// delays a request: rare, only for a client that pipelines, and once per
// connection (waitNext then stops the raw wait on it).
const rawWaitMax = 10 * time.Millisecond

// sendAndWait writes the held response and waits for the next request's
// first byte in one syscall.RawConn.Read, under the read deadline waitNext
// set (rawWaitMax): the runtime resets the socket's readiness on entry to
// it, then sendWait writes the response and asks to wait, so a request
// the client sends after reading the response always wakes the wait. The
// read that follows (br.Peek) then finds it there, instead of failing
// with EAGAIN first and waiting after (issue 22: one read system call
// fewer per keep-alive request). Bytes of a next request that are already
// here (pipelined, or read by the client-gone watch) are read without a
// wait. Bytes (or a close) that came while the handler ran, after the
// last read and before the reset, may have had their wake-up taken by
// the reset: the wait then ends at its deadline, and the read that
// follows finds them. A write that is partial or would block is finished
// by rwc.Write. The connection goes idle once the response is written
// (Shutdown may close it from then); the ConnState hook hears so when the
// wait ends, before the next request's "active". false: the write failed;
// the connection ends.
func (c *conn) sendAndWait() bool {
	c.cr.lock()
	pending := c.cr.hasByte || c.cr.inRead
	c.cr.unlock()
	if pending || c.br.Buffered() > 0 {
		ok := c.writeHeld()
		c.setState(http.StateIdle)
		return ok
	}
	c.rawErr, c.waiting = nil, false
	_ = c.raw.Read(c.waitFn) // a failed wait is the Peek's to report
	if c.waiting {
		// Written: idle since (sendWait); the hook hears it now.
		if h := c.s.ConnState; h != nil {
			h(c.rwc, http.StateIdle)
		}
	}
	if c.rawErr != nil {
		c.hw.Held = nil
		return false
	}
	if c.hw.Held != nil { // partial, or it would block
		ok := c.writeHeld()
		c.setState(http.StateIdle)
		return ok
	}
	return true
}

// headBuffered reports whether the reader holds a whole head (a blank
// line ends one): readHead then reads nothing from the connection.
func (c *conn) headBuffered() bool {
	buf, _ := c.br.Peek(c.br.Buffered())
	return bytes.Contains(buf, crlfBlank) || bytes.Contains(buf, lfBlank)
}

var crlfBlank, lfBlank = []byte("\n\r\n"), []byte("\n\n")

func (c *conn) close() {
	c.cr.stopTimer()
	if c.hijacked {
		c.s.forget(c)
		return
	}
	c.cr.abortPendingRead() // after a panic: the watching read ends first
	c.rwc.Close()
	if b := c.body; b != nil {
		// After a panic the handler's body may live on in a goroutine:
		// its reads must fail, never read the pooled reader (then another
		// client's bytes). A read under way returns as rwc is closed.
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		c.body = nil
	}
	c.s.forget(c)
	if h := c.s.ConnState; h != nil {
		h(c.rwc, http.StateClosed)
	}
	if c.panicked {
		// Left as they are: a late write goes to the closed connection
		// (an error), never to another client's buffer, nor to nil.
		return
	}
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
}

// holdLastWrite tells a connection that can keep its last write until it
// closes (the node's HTTPS front: the answer then leaves with TLS's
// close_notify alert, in one write) that the coming flush is its last.
func (c *conn) holdLastWrite() {
	if h, ok := c.rwc.(interface{ HoldLastWrite() }); ok {
		h.HoldLastWrite()
	}
}

// closeWriteAndWait half-closes, so that a client still sending its
// request reads the answer before the connection goes (Go does the same
// after a 431).
func (c *conn) closeWriteAndWait() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	time.Sleep(rstAvoidanceDelay)
}

// rstAvoidanceDelay is net/http's: how long a half-closed connection
// stays open so that the client reads the answer before a reset.
const rstAvoidanceDelay = 500 * time.Millisecond

// writeError writes one of the answers Go's server writes itself, byte
// for byte (the node's rejects counter recognises them).
func (c *conn) writeError(status, body string) {
	c.rwc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c.rwc, "HTTP/1.1 "+status+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+body)
}

// statusError is a refusal with a status and a reason, as Go writes it.
type statusError struct {
	code int
	text string
}

func (e statusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.code, http.StatusText(e.code), e.text)
}

func (c *conn) writeParseError(err error) {
	var se statusError
	if errors.As(err, &se) {
		msg := fmt.Sprintf("%d %s: %s", se.code, http.StatusText(se.code), se.text)
		c.writeError(msg, msg)
		return
	}
	if s := err.Error(); strings.HasPrefix(s, "too many transfer encodings") || strings.HasPrefix(s, "unsupported transfer encoding") {
		// Go's unsupportedTEError (its text is fixed; the type is not
		// exported).
		c.writeError("501 Not Implemented", "Unsupported transfer encoding")
		return
	}
	c.writeError("400 Bad Request", "400 Bad Request")
}

// check is what Go's server checks of a parsed request before its
// handler: the version, Host (once, required on HTTP/1.1, valid), field
// names and values. It removes Host from the fields.
func (c *conn) check(r *http.Request, fast bool) error {
	h2Upgrade := r.Method == "PRI" && len(r.Header) == 0 && r.URL.Path == "*" && r.Proto == "HTTP/2.0"
	if r.ProtoMajor != 1 && !(r.ProtoMajor == 2 && r.ProtoMinor == 0 && r.Method == "PRI" && r.RequestURI == "*") {
		return statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	hosts, haveHost := r.Header["Host"]
	if r.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && !h2Upgrade && r.Method != "CONNECT" {
		return statusError{http.StatusBadRequest, "missing required Host header"}
	}
	if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return statusError{http.StatusBadRequest, "malformed Host header"}
	}
	for k, vv := range r.Header {
		if fast {
			break // its names are tokens and its values valid already
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return statusError{http.StatusBadRequest, "invalid header name"}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return statusError{http.StatusBadRequest, "invalid header value"}
			}
		}
	}
	delete(r.Header, "Host")
	if h2Upgrade {
		r.Close = true
	}
	return nil
}

// serveRequest runs the handler for r and finishes its response; false:
// the connection ends after it.
func (c *conn) serveRequest(st *reqState, r *http.Request, cancel context.CancelFunc) bool {
	r.RemoteAddr = c.remote
	r.TLS = c.tls
	w := &st.w
	*w = response{c: c, req: r, handlerHeader: make(http.Header), contentLength: -1, cancel: cancel}
	w.wants10KeepAlive = r.ProtoMinor == 0 && !r.Close
	w.wantsClose = r.Close
	switch {
	case len(r.TransferEncoding) > 0:
		w.body = &body{c: c, w: w, req: r, chunked: true, cr: newChunkedReader(c.br)}
		r.Body = w.body
	case r.ContentLength > 0:
		w.body = &body{c: c, w: w, req: r, remaining: r.ContentLength}
		r.Body = w.body
	default:
		r.Body = http.NoBody
		r.ContentLength = 0
	}
	if expect := r.Header["Expect"]; len(expect) > 0 {
		if hasToken(expect[0], "100-continue") { // Go's test
			if r.ProtoAtLeast(1, 1) && w.body != nil {
				w.body.expectContinue = true
				w.canWriteContinue = true
			}
		} else if expect[0] != "" {
			w.handlerHeader.Set("Connection", "close")
			w.WriteHeader(http.StatusExpectationFailed)
			w.finish()
			cancel()
			return false
		}
	}
	if w.body == nil {
		c.cr.startBackgroundRead(cancel)
	}
	c.body = w.body
	c.serveHandler(w, r)
	if c.hijacked {
		cancel()
		return false
	}
	c.cr.abortPendingRead()
	w.finish()
	c.cr.abortPendingRead() // should the body's end have armed it
	c.body = nil            // closed by finish
	cancel()
	if w.requestBodyLimitHit || w.body != nil && w.body.didEarlyClose() {
		// As Go: the client, still sending the body, reads the answer
		// before the close resets the connection.
		c.writeHeld()
		c.closeWriteAndWait()
	}
	return !w.closeAfterReply && !w.broken
}

// serveHandler calls the handler; a panic other than ErrAbortHandler is
// logged, and either ends the connection without a complete response.
func (c *conn) serveHandler(w *response, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				const size = 64 << 10
				buf := make([]byte, size)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("h1: panic serving %v: %v\n%s", c.remote, p, buf)
			}
			// Nothing more is written: a response cut short is never
			// taken for a whole one (the connection closes).
			c.panicked = true
			w.cancel()
			panic(http.ErrAbortHandler) // to serve's recover: the connection closes
		}
	}()
	c.s.Handler.ServeHTTP(w, r)
}

// connReader reads the connection for the bufio.Reader and, while a
// handler runs with no request body left to read, reads one byte in the
// background so that the request's context is cancelled when the client
// goes (as Go's server does).
type connReader struct {
	c *conn

	mu      sync.Mutex
	hasByte bool
	byteBuf [1]byte
	inRead  bool
	aborted bool
	armed   bool        // a background read starts when timer fires
	timer   *time.Timer // the connection's, reused
	// stale: a read deadline serve set for a head or the idle wait is
	// still on the connection, though the head has been read. The next
	// read clears it (connReader.Read, fire); whoever sets a deadline of
	// its own (serve, the handler, Hijack) clears stale.
	stale  bool
	cancel context.CancelFunc
	cond   *sync.Cond
}

func (cr *connReader) lock() {
	cr.mu.Lock()
	if cr.cond == nil {
		cr.cond = sync.NewCond(&cr.mu)
	}
}

func (cr *connReader) unlock() { cr.mu.Unlock() }

func (cr *connReader) Read(p []byte) (int, error) {
	cr.lock()
	if cr.inRead {
		cr.unlock()
		panic("h1: concurrent reads of a connection")
	}
	if len(p) == 0 {
		cr.unlock()
		return 0, nil
	}
	if cr.hasByte {
		p[0] = cr.byteBuf[0]
		cr.hasByte = false
		cr.unlock()
		return 1, nil
	}
	if cr.stale {
		cr.stale = false
		cr.c.rwc.SetReadDeadline(time.Time{})
	}
	cr.inRead = true
	cr.unlock()
	n, err := cr.c.rwc.Read(p)
	cr.lock()
	cr.inRead = false
	cr.cond.Broadcast()
	cr.unlock()
	return n, err
}

// bgReadDelay is how long a handler runs before the byte read that
// watches for the client leaving starts: a handler answering sooner (a
// cache hit) costs no extra read, goroutine or deadline change, and a
// client that leaves is seen at most this much later.
const bgReadDelay = 2 * time.Millisecond

// bgReadParked is where the watching-read timer waits between requests.
const bgReadParked = time.Hour

// startBackgroundRead arms the byte read that watches for the client
// leaving; cancel is called if it does. Nothing is armed when the reader
// holds bytes of a next request already (a pipelined request).
func (cr *connReader) startBackgroundRead(cancel context.CancelFunc) {
	if cr.c.br.Buffered() > 0 {
		return
	}
	cr.lock()
	defer cr.unlock()
	if cr.inRead || cr.hasByte || cr.armed {
		return
	}
	cr.armed = true
	cr.cancel = cancel
	// The timer runs from this request's start and is moved far off at
	// its end (abortPendingRead): it fires only for a handler that has run
	// bgReadDelay. A fire costs a goroutine, and one that finds a handler
	// running starts the watching read: a read system call, a park, and
	// two deadline changes to end it. Keeping an earlier request's timer
	// instead made it fire at a random point of a later request under
	// load (issue 22: 0.6 fires and 0.23 watching reads per proxied
	// request at 32 connections; now 2 timer changes per request).
	if cr.timer == nil {
		cr.timer = time.AfterFunc(bgReadDelay, cr.fire)
	} else {
		cr.timer.Reset(bgReadDelay)
	}
}

// fire starts the armed background read.
func (cr *connReader) fire() {
	cr.lock()
	defer cr.unlock()
	if !cr.armed || cr.inRead || cr.hasByte {
		return
	}
	cr.armed = false
	cr.inRead = true
	cr.aborted = false
	cr.stale = false
	cr.c.rwc.SetReadDeadline(time.Time{})
	go cr.backgroundRead()
}

// stopTimer ends the arming timer for good (the connection ends).
func (cr *connReader) stopTimer() {
	cr.lock()
	defer cr.unlock()
	cr.armed = false
	if cr.timer != nil {
		cr.timer.Stop()
	}
}

func (cr *connReader) backgroundRead() {
	n, err := cr.c.rwc.Read(cr.byteBuf[:])
	cr.lock()
	if n == 1 {
		cr.hasByte = true
	}
	if ne, ok := err.(net.Error); ok && cr.aborted && ne.Timeout() {
		// Our own deadline, set by abortPendingRead: not an error.
	} else if err != nil && cr.cancel != nil {
		cr.cancel() // the client went
	}
	cr.aborted = false
	cr.inRead = false
	cr.cancel = nil
	cr.cond.Broadcast()
	cr.unlock()
}

// abortPendingRead stops the background read, if one runs, and waits for
// it.
func (cr *connReader) abortPendingRead() {
	cr.lock()
	defer cr.unlock()
	if cr.armed {
		cr.armed = false // fire, should it run, finds nothing armed
		cr.cancel = nil
		// Else it fires between requests, for nothing. Moved far off
		// rather than stopped: a stopped timer leaves the heap and its
		// next Reset adds it back, which wakes the network poller (or
		// another P's thread) when it is the earliest timer; moving a
		// timer in the heap does not (BenchmarkProxyPathH1, GOMAXPROCS=2:
		// Stop 43 µs of CPU per request, this 39, the kept timer 40).
		cr.timer.Reset(bgReadParked)
	}
	if !cr.inRead {
		return
	}
	cr.aborted = true
	cr.c.rwc.SetReadDeadline(aLongTimeAgo)
	for cr.inRead {
		cr.cond.Wait()
	}
	cr.c.rwc.SetReadDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)

// setDeadline sets the read deadline of a head or of the idle wait.
func (cr *connReader) setDeadline(t time.Time) {
	cr.lock()
	cr.stale = false
	cr.unlock()
	cr.c.rwc.SetReadDeadline(t)
}

// markStale: the head is read; its deadline no longer applies (see stale).
func (cr *connReader) markStale() {
	if cr.c.s.ReadHeaderTimeout <= 0 && cr.c.s.IdleTimeout <= 0 {
		return // serve set none
	}
	cr.lock()
	cr.stale = true
	cr.unlock()
}

// clearStale clears a stale deadline now.
func (cr *connReader) clearStale() {
	cr.lock()
	defer cr.unlock()
	if cr.stale {
		cr.stale = false
		cr.c.rwc.SetReadDeadline(time.Time{})
	}
}

// deadlineTaken: the handler set the connection's deadlines itself
// (Hijack, http.ResponseController): a stale one is gone.
func (cr *connReader) deadlineTaken() {
	cr.lock()
	cr.stale = false
	cr.unlock()
}
