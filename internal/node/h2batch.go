package node

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	http2 "github.com/edge-cdn/edge/internal/h2srv"
)

// HTTP/2 connections are served by golang.org/x/net/http2's server (the
// code net/http bundles as its own) on a batchConn, which net/http's
// copy offers no way to do. Go's server writes each frame it is handed
// and flushes whenever its queue runs empty, in a new goroutine: a small
// answer's HEADERS and DATA come from the handler one after the other,
// so each went out in a TLS record and a write system call of its own —
// two per request, a third of an HTTP/2 cache hit's CPU (notes/h2hit.md).
// With the connection's writes handed to one writer goroutine, what the
// server flushes while that writer is busy or not yet scheduled goes out
// together.

// serveH2Batched makes srv serve HTTP/2 with x/net/http2 on batchConns.
// Call it once srv's TLSConfig, HTTP2 config, ConnState and handler are
// set: x/net reads them from srv for every connection.
//
// x/net marks its server API deprecated in favour of http.Server's own
// HTTP/2, which cannot be handed a connection; from Go 1.27 on, x/net's
// ServeConn passes the connection to net/http's server, so this keeps
// working with the code net/http ships.
//
// With inline, requests without a body are offered to the handler's
// ServeInline (http2.InlineHandler) first, if it has one.
func serveH2Batched(srv *http.Server, inline bool) error {
	//lint:ignore SA1019 see above
	h2 := &http2.Server{}
	//lint:ignore SA1019 see above
	if err := http2.ConfigureServer(srv, h2); err != nil {
		return err
	}
	srv.TLSNextProto["h2"] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		// net/http hands its per-connection context (ConnContext's) to
		// HTTP/2 servers this way, as x/net's own hook does.
		var ctx context.Context
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			ctx = bc.BaseContext()
		}
		// Requests without a body may be answered on the connection's
		// goroutine (a small hit from memory: see http2.InlineHandler).
		var ih http2.InlineHandler
		if inline {
			ih, _ = hs.Handler.(http2.InlineHandler)
		}
		bc := newBatchConn(c)
		defer bc.Close() // drains what was written before net/http closes c
		//lint:ignore SA1019 see serveH2Batched
		h2.ServeConn(bc, &http2.ServeConnOpts{Context: ctx, Handler: h, BaseConfig: hs, Inline: ih})
	}
	return nil
}

// batchConn hands a TLS connection's writes to a writer goroutine, which
// writes all that has been handed to it since its last write as one TLS
// record (up to the record size) and one system call. Write returns at
// once unless batchLimit bytes are waiting (besides those being
// written), as a full socket buffer would; an error of the writer is
// returned by the Writes after it. Close writes what is waiting (for at
// most drainTimeout) and then closes the connection. Reads, deadlines
// and the TLS state are the connection's own.
type batchConn struct {
	*tls.Conn
	mu      sync.Mutex
	room    *sync.Cond // the writer took what was waiting, or stopped
	pending *[]byte    // nil when nothing waits; the writer owns the one it writes
	err     error      // the writer's; it stopped
	closing bool
	kick    chan struct{} // cap 1: pending has bytes, or closing
	roomFn  func()        // NotifyRoom's, until the writer takes pending or stops
	done    chan struct{} // the writer stopped
	once    sync.Once
	cerr    error
}

const (
	// batchLimit bounds the bytes waiting for the writer: a Write that
	// finds this many waits for room, as a write to a full socket would.
	batchLimit = 64 << 10
	// drainTimeout bounds Close's wait for a peer that does not read.
	drainTimeout = time.Second
)

func newBatchConn(c *tls.Conn) *batchConn {
	b := &batchConn{Conn: c, kick: make(chan struct{}, 1), done: make(chan struct{})}
	b.room = sync.NewCond(&b.mu)
	go b.writeLoop()
	return b
}

// WritePair writes a, then b, as two Writes would, in one call (an
// HTTP/2 DATA frame's header and payload: internal/h2srv).
func (b *batchConn) WritePair(a, p []byte) error {
	_, err := b.write(a, p)
	return err
}

func (b *batchConn) Write(p []byte) (int, error) { return b.write(p, nil) }

// write appends p, then q, to what waits for the writer.
func (b *batchConn) write(p, q []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && !b.closing && b.pending != nil && len(*b.pending) >= batchLimit {
		b.room.Wait()
	}
	if b.err != nil || b.closing {
		err := b.err
		b.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return 0, err
	}
	wake := b.pending == nil
	if wake {
		b.pending = batchBufs.Get().(*[]byte)
	}
	*b.pending = append(*b.pending, p...)
	*b.pending = append(*b.pending, q...)
	b.mu.Unlock()
	if wake {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// WriteRoom is how many bytes Writes may hand over in all without one of
// them blocking: Write blocks only when batchLimit bytes wait as it
// starts. The HTTP/2 server (internal/h2srv) writes frames on its serve
// goroutine while they fit, and on a goroutine of their own when not.
// Only the writer goroutine changes it otherwise, and only upwards.
func (b *batchConn) WriteRoom() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil || b.closing {
		return 0
	}
	if b.pending == nil {
		return batchLimit
	}
	return batchLimit - len(*b.pending)
}

// NotifyRoom calls f once the writer has taken what waits (a Write then
// hands over all of its bytes without blocking) or stopped, on the
// writer's goroutine; at once, on the caller's, if nothing waits. Only
// the HTTP/2 serve goroutine calls it, for one frame at a time.
func (b *batchConn) NotifyRoom(f func()) {
	b.mu.Lock()
	if b.pending != nil && b.err == nil && !b.closing {
		b.roomFn = f
		f = nil
	}
	b.mu.Unlock()
	if f != nil {
		f()
	}
}

// takeRoomFn returns NotifyRoom's function, if one waits; b.mu is held.
func (b *batchConn) takeRoomFn() func() {
	f := b.roomFn
	b.roomFn = nil
	return f
}

// writeLoop is the writer goroutine: Close stops it and waits for it.
func (b *batchConn) writeLoop() {
	defer close(b.done)
	for range b.kick {
		for {
			b.mu.Lock()
			buf, closing := b.pending, b.closing
			b.pending = nil
			b.room.Broadcast()
			roomFn := b.takeRoomFn()
			b.mu.Unlock()
			if roomFn != nil {
				roomFn()
			}
			if buf == nil {
				if closing {
					return
				}
				break
			}
			_, err := corkedWrite(b.Conn, *buf) // a batch of many records: corked
			putBatchBuf(buf)
			if err != nil {
				b.mu.Lock()
				b.err = err
				b.room.Broadcast()
				roomFn := b.takeRoomFn()
				b.mu.Unlock()
				if roomFn != nil {
					roomFn()
				}
				return
			}
		}
	}
}

// Close writes what is waiting, then closes the connection; a peer that
// does not read for drainTimeout gets its connection closed under the
// write, which ends it.
func (b *batchConn) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closing = true
		b.room.Broadcast()
		roomFn := b.takeRoomFn()
		b.mu.Unlock()
		if roomFn != nil {
			roomFn()
		}
		select {
		case b.kick <- struct{}{}:
		default:
		}
		t := time.NewTimer(drainTimeout)
		select {
		case <-b.done:
		case <-t.C:
			b.Conn.NetConn().Close() // breaks the writer's write
			<-b.done
		}
		t.Stop()
		b.cerr = b.Conn.Close()
	})
	return b.cerr
}

// batchBufs holds the buffers of the bytes waiting for a writer: an idle
// connection keeps none.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putBatchBuf(b *[]byte) {
	if cap(*b) > 2*batchLimit {
		return // one burst's; not worth keeping
	}
	*b = (*b)[:0]
	batchBufs.Put(b)
}

// baseConn is the connection net/http accepted, for hooks that see the
// connection an HTTP/2 server was given.
func baseConn(c net.Conn) net.Conn {
	if b, ok := c.(*batchConn); ok {
		return b.Conn
	}
	return c
}
