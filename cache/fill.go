package cache

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// fill mode, decided when the response head arrives.
const (
	modeStream = iota + 1 // follow the body in the buffer
	modeObject            // serve obj (revalidated, or stale on error)
)

// passWindow bounds the unread bytes a fill that will not be stored keeps
// for its readers; the upstream waits while its readers catch up.
const passWindow = 1 << 20

// fill is one origin exchange for a key that any number of clients follow.
// Its goroutine (run) writes the head and appends the body; readers wait on
// wake, which is closed and replaced at each change. A fill that will be
// stored keeps the whole body; one that will not (shared false) drops what
// its readers have read and makes the upstream wait when they lag.
type fill struct {
	c      *Cache
	key    string
	base   *object // the stale object being revalidated, or nil
	cancel context.CancelFunc
	head   chan struct{} // closed once mode is set

	// Set before head is closed, read-only after.
	mode    int
	obj     *object
	cstatus string // Cache-Status for modeObject
	status  int
	header  http.Header // client-facing head for modeStream
	shared  bool        // waiters may follow (the response is storable)
	// setCookie is a 304's Set-Cookie, for the initiator's answer only.
	setCookie []string
	declared  int64 // Content-Length, -1 if none

	mu      sync.Mutex
	buf     []byte
	off     int64 // stream offset of buf[0]
	end     bool  // body complete or failed
	failed  bool  // body cut short: readers abort
	over    bool  // past max_object_size: not stored
	storing bool
	job     *fillJob
	readers map[*int64]struct{} // offsets of live readers
	wake    chan struct{}
}

func (f *fill) signal() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// join registers a reader at offset 0; false when the fill no longer takes
// readers (its body is not kept from the start).
func (f *fill) join() (*int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off > 0 || f.over || (f.modeSet() && !f.shared) {
		return nil, false
	}
	pos := new(int64)
	f.readers[pos] = struct{}{}
	return pos, true
}

func (f *fill) modeSet() bool {
	select {
	case <-f.head:
		return true
	default:
		return false
	}
}

// leave drops a reader; a fill nobody follows and that will not be stored
// is cancelled.
func (f *fill) leave(pos *int64) {
	f.mu.Lock()
	delete(f.readers, pos)
	// Before the head is known the fill goes on: it may be stored.
	stop := len(f.readers) == 0 && f.modeSet() && !f.storing && !f.end
	f.signal()
	f.mu.Unlock()
	if stop {
		f.cancel()
	}
}

// read waits for bytes past *pos and returns them (a view valid until the
// next read), or done when the body ended; failed tells a cut body.
func (f *fill) read(ctx context.Context, pos *int64) (b []byte, done, failed bool) {
	for {
		f.mu.Lock()
		if *pos < f.off+int64(len(f.buf)) {
			b = f.buf[*pos-f.off:]
			f.mu.Unlock()
			return b, false, false
		}
		if f.end {
			failed = f.failed
			f.mu.Unlock()
			return nil, true, failed
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, true, true
		}
	}
}

// advance records that the reader at pos consumed n bytes.
func (f *fill) advance(pos *int64, n int) {
	f.mu.Lock()
	*pos += int64(n)
	if !f.storing {
		f.trim()
		f.signal()
	}
	f.mu.Unlock()
}

// trim drops the bytes every reader has read; f.mu is held.
func (f *fill) trim() {
	low := f.off + int64(len(f.buf))
	for p := range f.readers {
		low = min(low, *p)
	}
	// Readers hold views of buf: the kept bytes go to a new array, never
	// moved within the old one. Small trims wait for more to drop.
	n := low - f.off
	switch {
	case n <= 0:
	case n == int64(len(f.buf)):
		f.buf, f.off = nil, low
	case n >= 256<<10:
		f.buf, f.off = append([]byte(nil), f.buf[n:]...), low
	}
}

// write appends p, waiting while readers of an unstored body lag.
func (f *fill) write(ctx context.Context, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.storing && len(f.buf) > passWindow && len(f.readers) > 0 {
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			f.mu.Lock()
			return ctx.Err()
		}
		f.mu.Lock()
	}
	if !f.storing && len(f.readers) == 0 && f.modeSet() {
		return context.Canceled // nobody reads and nothing is stored
	}
	f.buf = append(f.buf, p...)
	if f.storing && f.c.maxSize(f) > 0 && f.off+int64(len(f.buf)) > f.c.maxSize(f) {
		f.over, f.storing = true, false
		f.c.unregister(f)
		f.trim()
	}
	f.signal()
	return nil
}

// finish decides whether the body is complete and returns it when the fill
// is to be stored; end then releases the readers.
func (f *fill) finish(failed bool) (body []byte, store bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = failed
	total := f.off + int64(len(f.buf))
	if f.declared >= 0 && total != f.declared {
		f.failed = true // a Content-Length that lies is never stored
	}
	if f.failed || !f.storing || f.off != 0 {
		return nil, false
	}
	return f.buf, true
}

// close marks the body ended (after it was stored, so that a client that
// read it all finds the object).
func (f *fill) close() {
	f.mu.Lock()
	f.end = true
	f.signal()
	f.mu.Unlock()
}

// setMode publishes the decision taken at the head.
func (f *fill) setMode() { close(f.head) }

// fillWriter is the ResponseWriter given to upstream for a fill.
type fillWriter struct {
	f      *fill
	ctx    context.Context
	h      http.Header
	reqT   time.Time
	wrote  bool
	status int
	sink   bool // discard the body (served stale on error, or 304)
	err    error
}

func (w *fillWriter) Header() http.Header { return w.h }

func (w *fillWriter) WriteHeader(code int) {
	if w.wrote || code < 200 {
		return // informational responses are not relayed through a fill
	}
	w.wrote, w.status = true, code
	w.sink = !w.f.c.onHead(w.f, w.reqT, code, w.h)
}

func (w *fillWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.sink || w.err != nil {
		return len(p), w.err
	}
	if err := w.f.write(w.ctx, p); err != nil {
		w.err = err
		return 0, err
	}
	return len(p), nil
}

func (w *fillWriter) Flush() {}
