package node

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// holdConn is the TCP connection under an HTTPS connection's TLS. Once the
// HTTP/1.x front says its next flush is the connection's last (holdLast:
// the answer to a request the connection closes after), it keeps the TLS
// records of that flush until TLS writes its close_notify alert, and writes
// them together: the answer and the alert leave in one write and one
// segment instead of two (a new TLS connection per request pays this
// write on every request; see issue 22's tls-handshake row).
//
// Nothing is held longer than the close: crypto/tls's closeNotify (Close
// and CloseWrite) writes the alert, then sets a write deadline of now, and
// an expired write deadline writes what is held first, under the deadline
// the alert was written with (5 s). A hold is at most holdMax bytes; a
// larger flush is written as it comes (what was held first, in the same
// writev).
type holdConn struct {
	net.Conn
	holding atomic.Bool // fast path: false once the held bytes are written
	mu      sync.Mutex  // guards held; never held across I/O
	held    []byte
	raw     syscall.RawConn // set on the first cork, by the writing goroutine
	corks   int             // cork's depth, the writing goroutine's
}

// holdMax bounds the bytes a connection holds.
const holdMax = 16 << 10

// holdLast makes the writes that follow wait for the close_notify alert.
func (h *holdConn) holdLast() { h.holding.Store(true) }

// NetConn is the TCP connection (the drainer follows it).
func (h *holdConn) NetConn() net.Conn { return h.Conn }

func (h *holdConn) Write(p []byte) (int, error) {
	if !h.holding.Load() {
		return h.Conn.Write(p)
	}
	h.mu.Lock()
	if h.holding.Load() && len(h.held)+len(p) <= holdMax {
		if h.held == nil {
			// Room for the alert too (24 bytes): one allocation.
			h.held = make([]byte, 0, len(p)+64)
		}
		h.held = append(h.held, p...)
		h.mu.Unlock()
		return len(p), nil
	}
	held := h.take()
	h.mu.Unlock()
	if len(held) == 0 {
		return h.Conn.Write(p)
	}
	bufs := net.Buffers{held, p}
	n, err := bufs.WriteTo(h.Conn) // one writev
	n -= int64(len(held))
	if n < 0 {
		n = 0
	}
	return int(n), err
}

// take ends the hold and returns the held bytes; h.mu is held.
func (h *holdConn) take() []byte {
	held := h.held
	h.held = nil
	h.holding.Store(false)
	return held
}

// flush writes the held bytes, if any.
func (h *holdConn) flush() error {
	if !h.holding.Load() {
		return nil
	}
	h.mu.Lock()
	held := h.take()
	h.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	_, err := h.Conn.Write(held)
	return err
}

// expired: a deadline that makes writes fail at once.
func expired(t time.Time) bool { return !t.IsZero() && !t.After(time.Now()) }

func (h *holdConn) SetWriteDeadline(t time.Time) error {
	if h.holding.Load() && expired(t) {
		h.flush() // its error is the alert's write's: TLS ignores it too
	}
	return h.Conn.SetWriteDeadline(t)
}

func (h *holdConn) SetDeadline(t time.Time) error {
	if h.holding.Load() && expired(t) {
		h.flush()
	}
	return h.Conn.SetDeadline(t)
}

// Close closes the connection. What is still held is dropped: TLS's
// normal close wrote it with its alert; this Close without the alert is
// crypto/tls breaking a write under way.
func (h *holdConn) Close() error {
	if h.holding.Load() {
		h.mu.Lock()
		h.take()
		h.mu.Unlock()
	}
	return h.Conn.Close()
}
