package cache

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// fill mode, decided when the response head arrives.
const (
	modeStream = iota + 1 // follow the body in the buffer
	modeObject            // serve obj (revalidated, or stale on error)
)

// passWindow bounds the unread bytes a fill that will not be stored keeps
// for its readers; the upstream waits while its readers catch up. With
// trimStep, what such a fill holds for a reader that does not read is at
// most passWindow+trimStep (plus the last write).
const (
	passWindow = 256 << 10
	trimStep   = 64 << 10
)

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
	// interim carries the origin's 1xx responses to the client that
	// started the fill (see waitHead).
	interim chan interimResponse

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
	over    bool  // past the object bound or the fill budget: not stored
	storing bool
	res     int64 // bytes of the fill budget reserved (Cache.reserve)
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
		avail := f.off + int64(len(f.buf))
		if !f.end && f.declared >= 0 && avail >= f.declared {
			// The last byte of a declared body waits for the fill's
			// verdict: a response the proxy finds followed by stray bytes
			// (or otherwise fails once its body is in) must reach no
			// reader whole, and a reader that has every byte has it whole.
			avail = f.declared - 1
		}
		if *pos < avail {
			b = f.buf[*pos-f.off : avail-f.off]
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
	case n == int64(len(f.buf)) && cap(f.buf) <= 2*passWindow:
		// Every reader is done with its view (a view is written out
		// before its reader advances): the array is reused, so a body
		// streamed through makes no garbage per write.
		f.buf, f.off = f.buf[:0], low
	case n == int64(len(f.buf)):
		f.buf, f.off = nil, low
	case n >= trimStep:
		f.buf, f.off = append([]byte(nil), f.buf[n:]...), low
	}
	if !f.storing && f.res > int64(cap(f.buf)) {
		// No longer stored: the reservation shrinks with what is kept.
		f.c.release(f.res - int64(cap(f.buf)))
		f.res = int64(cap(f.buf))
	}
}

// grow makes room for n more bytes of a body being stored, within the
// object bound and the fill budget, and reports whether there was. The
// buffer grows with the bytes that arrive (doubling, capped at the
// declared length), never from the Content-Length alone. f.mu is held.
func (f *fill) grow(n int) bool {
	need := int64(len(f.buf)) + int64(n) // f.off is 0 while storing
	limit := f.c.maxSize(f)
	if need > limit {
		return false
	}
	if need <= int64(cap(f.buf)) {
		return true
	}
	size := max(2*int64(cap(f.buf)), need, 32<<10)
	if f.declared >= need {
		size = min(size, f.declared)
	}
	size = min(size, limit)
	if size > f.res {
		if !f.c.reserve(size - f.res) {
			return false
		}
		f.res = size
	}
	nb := make([]byte, len(f.buf), size)
	copy(nb, f.buf) // readers keep views of the old array: it is never written again
	f.buf = nb
	return true
}

// stillStoring tells whether the body is still kept for storing.
func (f *fill) stillStoring() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.storing
}

// releaseAll gives the fill's reservation back, once the fill has ended.
func (f *fill) releaseAll() {
	f.mu.Lock()
	f.c.release(f.res)
	f.res = 0
	f.mu.Unlock()
}

// reserve takes n bytes of the budget of fills in flight; false when it has
// not that much left.
func (c *Cache) reserve(n int64) bool {
	for {
		cur := c.fillBytes.Load()
		if cur+n > c.fillBudget {
			return false
		}
		if c.fillBytes.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (c *Cache) release(n int64) {
	if n > 0 {
		c.fillBytes.Add(-n)
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
	if f.storing && !f.grow(len(p)) {
		// Past the object bound or the fill budget: streamed through, not
		// stored; readers that joined follow it, new ones go to the origin.
		f.over, f.storing = true, false
		f.c.unregister(f)
	}
	f.buf = append(f.buf, p...)
	if f.over {
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

// stalled ends a fill whose origin sent nothing of the body for
// timeouts.body_idle: the upstream's read is cancelled, the body counts as
// cut short (its readers abort), and the key is free for the next request.
func (f *fill) stalled() {
	f.c.problem("origin body stalled past timeouts.body_idle; the fill was ended", zap.String("property", f.job.prop))
	// The key is free at once, not when the upstream has noticed the
	// cancellation: a request arriving in between starts a new fill
	// instead of following one that can only be cut.
	f.c.unregister(f)
	f.cancel()
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
	// idle cancels the fill when the origin sends nothing of a body being
	// stored for timeouts.body_idle; nil when the body is not stored.
	idle *time.Timer
}

func (w *fillWriter) Header() http.Header { return w.h }

func (w *fillWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code < 200 {
		// An informational response (103 Early Hints) is offered to the
		// client that started the fill, never stored; one nobody takes in
		// time is dropped.
		if code != http.StatusContinue && code != http.StatusSwitchingProtocols {
			select {
			case w.f.interim <- interimResponse{code: code, header: w.h.Clone()}:
			default:
			}
		}
		return
	}
	w.wrote, w.status = true, code
	w.sink = !w.f.c.onHead(w.f, w.reqT, code, w.h)
	if d := w.f.job.bodyIdle; !w.sink && d > 0 && w.f.stillStoring() {
		// Only a body being stored: one streamed through (server-sent
		// events, a long poll) may be quiet as long as its client waits.
		w.idle = time.AfterFunc(d, w.f.stalled)
	}
}

// stopIdle disarms the body-idle deadline.
func (w *fillWriter) stopIdle() {
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
}

func (w *fillWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.sink || w.err != nil {
		return len(p), w.err
	}
	if err := w.f.write(w.ctx, p); err != nil {
		w.stopIdle()
		w.err = err
		return 0, err
	}
	if w.idle != nil {
		if w.f.stillStoring() {
			w.idle.Reset(w.f.job.bodyIdle)
		} else {
			w.stopIdle()
		}
	}
	return len(p), nil
}

func (w *fillWriter) Flush() {}
