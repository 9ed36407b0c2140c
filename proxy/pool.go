package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edge-cdn/edge/internal/rawsend"
)

// maxIdlePerOrigin bounds the idle connections an origin keeps; beyond it
// the longest idle one is closed. It is above the concurrency a node sees
// (nginx's keepalive in cmd/bench/ is the same): a cap below it closes
// connections a burst opened as soon as they come back, and the next
// burst dials them again (issue 22: 256 made 500 concurrent HTTP/2
// streams open 440–1016 origin connections per 10,000 requests). An idle
// connection holds no buffers (idleBuffers), about 1 KiB of heap.
const maxIdlePerOrigin = 1024

// The buffers of an origin connection, lent while it carries an exchange
// and taken back when it goes idle: a burst's connections then hold 8 KiB
// each only while in use. The read buffer is lent only once the answer is
// awaited by a read (takeReadBuffer): after sendRaw's wait, the answer is
// there already, so an exchange waiting on its origin holds none (500
// proxied HTTP/2 streams held 1.6 MB of them, most of it while waiting).
var (
	readBuffers  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writeBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// takeBuffers gives a connection its write buffer for an exchange; the
// read buffer comes with takeReadBuffer.
func (c *upConn) takeBuffers() {
	c.bw = writeBuffers.Get().(*bufio.Writer)
	c.bw.Reset(&c.wr)
}

// takeReadBuffer gives the connection its read buffer, before the first
// read of an exchange's answer; it has one already after such a read.
func (c *upConn) takeReadBuffer() {
	if c.br != nil {
		return
	}
	c.br = readBuffers.Get().(*bufio.Reader)
	c.br.Reset(&c.lim)
}

// buffered is how many bytes from the origin the read buffer holds.
func (c *upConn) buffered() int {
	if c.br == nil {
		return 0
	}
	return c.br.Buffered()
}

// returnBuffers takes an idle connection's buffers back; the caller saw
// them empty (nothing buffered from the origin, everything written).
func (c *upConn) returnBuffers() {
	if c.br != nil {
		c.br.Reset(nil)
		readBuffers.Put(c.br)
		c.br = nil
	}
	c.releaseWriteBuffer()
}

// releaseWriteBuffer takes the write buffer back before the exchange
// ends, once everything in it is written; takeBuffers gives one again.
func (c *upConn) releaseWriteBuffer() {
	if c.bw == nil {
		return
	}
	c.bw.Reset(nil)
	writeBuffers.Put(c.bw)
	c.bw = nil
}

// maxResponseHead bounds the bytes of an origin's response head (status
// line and header fields); http.ReadResponse itself has no limit.
const maxResponseHead = 1 << 20

// upConn is one HTTP/1.1 connection to an origin.
type upConn struct {
	nc     net.Conn        // the connection (a *tls.Conn for https)
	raw    syscall.RawConn // of the TCP socket, for the liveness peek; nil: none
	lim    io.LimitedReader
	br     *bufio.Reader // reads through lim; nil until takeReadBuffer
	bw     *bufio.Writer
	idleAt time.Time // when it went back to the pool
	// deadline: the read and write deadline an exchange left set on nc
	// (its response was whole in br: exchange.roundTrip); zero: none.
	deadline time.Time
	reused   bool // it served a request before this one

	peekBuf  [1]byte
	numBuf   [20]byte // formats lengths without allocating
	peekOK   bool
	peekData bool                  // the last peek found bytes to read
	isTLS    bool                  // nc is a *tls.Conn
	inq      int                   // bytes on the socket, by readInq
	peekFn   func(fd uintptr) bool // c.peek, bound once at dial
	inqFn    func(fd uintptr) bool // c.readInq, bound once at dial
	abortFn  func()                // c.abort, bound once at dial

	// wr is what bw writes to: nc, or, while sendWait flushes, a holder
	// of the bytes for the raw write (sendFn).
	wr       rawsend.Holder
	sendFn   func(fd uintptr) bool // c.sendWait, bound once at dial
	sendErr  error                 // the raw write's error (sendWait)
	sentSome bool                  // the raw write wrote some bytes
	waiting  bool                  // sendWait wrote the request and waits

	resp http.Response // the response of the exchange holding c (fastResponse)
	hdr  http.Header   // resp's header map, emptied by dropResponse and kept
	body lengthBody    // its body
}

// connPool keeps an origin's idle keep-alive connections, most recently
// used last (LIFO: a warm connection is preferred, the cold ones expire).
type connPool struct {
	dial    func(ctx context.Context) (net.Conn, error)
	idleTTL time.Duration

	mu     sync.Mutex
	idle   []*upConn
	closed bool

	opened   atomic.Uint64 // connections dialled
	requests atomic.Uint64 // requests sent
	onOpen   func()        // told about each connection opened; may be nil
}

// get returns an idle connection that is still good, or dials one. With
// rawNext (the request has no body: exchange.roundTrip sends it by
// sendRaw), a connection that sendRaw can use is not peeked at here:
// sendRaw peeks at it just before it writes.
func (p *connPool) get(ctx context.Context, rawNext bool) (*upConn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if p.reuse(c, now, rawNext) {
			return c, nil
		}
	}
	return p.dialConn(ctx)
}

// reuse readies an idle connection taken from the pool for a request, or
// closes it (gone stale, or the peer closed it or sent bytes) and says so.
// With rawNext, a connection sendRaw can use is peeked at by sendRaw.
func (p *connPool) reuse(c *upConn, now time.Time, rawNext bool) bool {
	if now.Sub(c.idleAt) < p.idleTTL && c.freshDeadline(now) && (rawNext && c.rawCapable() || c.alive()) {
		c.reused = true
		c.takeBuffers()
		return true
	}
	c.nc.Close()
	return false
}

// fillMinIdle is how long a pooled connection must have been idle before a
// cache fill (a request whose response may be stored and served to others)
// takes it; a fill finds none that old dials a new connection. Bytes an
// origin sends after a response ended (the rest of a response that lied
// about its length, or a smuggled one) arrive while the connection idles
// and the liveness peek finds them; bytes that come later than the request
// that reuses the connection would be read as its response. HAProxy, nginx
// and Varnish only watch idle connections for such bytes, as the peek
// does; waiting this long shuts the window for bytes sent within it.
var fillMinIdle = 2 * time.Second

// getSettled returns an idle connection that has been idle at least
// minIdle and is still good, or dials one (see fillMinIdle). rawNext is
// get's.
func (p *connPool) getSettled(ctx context.Context, minIdle time.Duration, rawNext bool) (*upConn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		// idle is in the order connections came back: the oldest first.
		k := 0
		for k < len(p.idle) && now.Sub(p.idle[k].idleAt) >= minIdle {
			k++
		}
		if k == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[k-1]
		copy(p.idle[k-1:], p.idle[k:])
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		p.mu.Unlock()
		if p.reuse(c, now, rawNext) {
			return c, nil
		}
	}
	return p.dialConn(ctx)
}

// strayBytes reports whether bytes followed a response that has just been
// read to its end: buffered, or waiting on the socket.
func (c *upConn) strayBytes() bool {
	if c.buffered() > 0 {
		return true
	}
	c.freshDeadline(time.Now()) // a passed one fails the peek: no bytes seen
	if c.raw == nil || c.isTLS {
		// Under TLS, bytes on the socket may be a close_notify alert or a
		// session ticket: only bytes already decrypted count.
		return false
	}
	c.peekData = false
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	return c.peekData
}

// pendingMin is how many bytes of a response must be waiting for pending
// to report them: more than any chunk framing (Go's chunked reader takes
// lines of up to 4 KiB), so that the next read returns body bytes.
const pendingMin = 8 << 10

// pending reports whether at least pendingMin bytes of the response being
// read have arrived (buffered or on the socket): the next read returns
// some of them without waiting on the origin. Under TLS it reports false
// (bytes on the socket may be a record not yet whole). One ioctl(SIOCINQ).
func (c *upConn) pending() bool {
	if c.raw == nil || c.isTLS {
		return false
	}
	c.inq = 0
	if err := c.raw.Read(c.inqFn); err != nil {
		return false
	}
	return c.buffered()+c.inq >= pendingMin
}

func (p *connPool) dialConn(ctx context.Context) (*upConn, error) {
	nc, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	p.opened.Add(1)
	if p.onOpen != nil {
		p.onOpen()
	}
	c := &upConn{nc: nc}
	c.wr.W = nc
	tcp := nc
	if tc, ok := nc.(*tls.Conn); ok {
		tcp = tc.NetConn()
		c.isTLS = true
	}
	if sc, ok := tcp.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.lim.R, c.lim.N = nc, 1<<62
	c.takeBuffers()
	c.peekFn, c.inqFn, c.abortFn, c.sendFn = c.peek, c.readInq, c.abort, c.sendWait
	return c, nil
}

// put returns a connection whose last exchange ended cleanly (its read
// buffer empty: exchange.reusable).
func (p *connPool) put(c *upConn) {
	if c.buffered() > 0 {
		c.nc.Close() // bytes nobody asked for: never reused (alive)
		return
	}
	c.returnBuffers()
	c.idleAt = time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.nc.Close()
		return
	}
	var drop *upConn
	if len(p.idle) >= maxIdlePerOrigin {
		drop = p.idle[0]
		copy(p.idle, p.idle[1:])
		p.idle = p.idle[:len(p.idle)-1]
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
	if drop != nil {
		drop.nc.Close()
	}
}

// expire closes the connections idle for longer than the idle timeout.
func (p *connPool) expire(now time.Time) {
	p.mu.Lock()
	var old []*upConn
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idleAt) >= p.idleTTL {
		i++
	}
	if i > 0 {
		old = append(old, p.idle[:i]...)
		n := copy(p.idle, p.idle[i:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
	}
	p.mu.Unlock()
	for _, c := range old {
		c.nc.Close()
	}
}

// close closes the idle connections; those in use are closed when their
// exchange ends.
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// freshDeadline clears the deadline an exchange left set once it is
// near or past (a passed one fails every read and peek at once, and the
// peeks then see nothing); a later one does not affect them. It reports
// true, for reuse's chain.
func (c *upConn) freshDeadline(now time.Time) bool {
	if !c.deadline.IsZero() && !now.Before(c.deadline.Add(-time.Second)) {
		_ = c.nc.SetDeadline(time.Time{})
		c.deadline = time.Time{}
	}
	return true
}

// bodyBuffered reports whether resp, just read from c, is c's own (the
// fast path's) with its body whole in c's buffer already.
func (c *upConn) bodyBuffered(resp *http.Response) bool {
	if resp != &c.resp {
		return false
	}
	return resp.Body == http.NoBody || c.body.n <= int64(c.buffered())
}

// alive reports whether an idle connection is still open and quiet: a
// peer that closed it, or that sent bytes nobody asked for (the rest of a
// response that lied about its length, a response splitting attempt),
// makes it unusable. One non-blocking recv(MSG_PEEK) on the socket. (Bytes
// already buffered when it went idle closed it: put.)
func (c *upConn) alive() bool {
	if c.raw == nil {
		return true
	}
	c.peekOK = false
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	return c.peekOK
}

// abort unblocks any I/O on the connection, for a client that left.
func (c *upConn) abort() { _ = c.nc.SetDeadline(aLongTimeAgo) }

var aLongTimeAgo = time.Unix(1, 0)

// rawCapable reports whether sendRaw can send on c: a plain TCP
// connection whose socket the runtime lets us reach.
func (c *upConn) rawCapable() bool { return rawSend && c.raw != nil && !c.isTLS }

// canSendRaw reports whether sendRaw may send this exchange's request:
// rawCapable, with nothing buffered from the origin.
func (c *upConn) canSendRaw() bool { return c.rawCapable() && c.buffered() == 0 }

// errIdleClosed: sendRaw found a reused connection closed by the origin
// (or holding bytes nobody asked for) before it wrote anything.
var errIdleClosed = errors.New("idle origin connection closed before the request was sent")

// sendRaw writes what bw holds to the origin and waits until the socket
// is readable, in one syscall.RawConn.Read: the runtime resets the
// socket's readiness on entry to it, then sendWait peeks at the socket
// (alive's check, for every connection), writes the request and asks to
// wait. Bytes that came before the reset are seen by the peek; any that
// come after it wake the wait; so no wake-up is lost. The read that
// follows (br.Peek) then finds the answer there, instead of failing with
// EAGAIN first and waiting after (issue 22: one read system call fewer
// per proxied request). A write that is partial or would block is
// finished by nc.Write, as any other, and the wait is the ordinary one of
// the read. The read deadline set on nc bounds the wait; a failed wait is
// left for the read to report.
//
// A reused connection that the peek finds closed, or holding bytes, is
// reported as errIdleClosed with nothing written: the request may go on
// another connection, whatever its method. On a new one, such bytes are
// left for the ordinary path (written by nc.Write, read as the answer).
func (c *upConn) sendRaw() (wrote bool, err error) {
	if err = c.wr.HoldFlush(c.bw); err != nil { // into c.wr.Held: no system call
		return false, err
	}
	c.sendErr, c.sentSome, c.waiting, c.peekOK = nil, false, false, false
	_ = c.raw.Read(c.sendFn)
	rest := c.wr.Held
	c.wr.Held = nil
	wrote = c.sentSome
	if !c.peekOK && c.reused {
		return false, errIdleClosed
	}
	if c.sendErr != nil {
		return wrote, &net.OpError{Op: "write", Net: "tcp", Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: c.sendErr}
	}
	if len(rest) > 0 {
		n, err := c.nc.Write(rest)
		return wrote || n > 0, err
	}
	return true, nil
}
