package h1

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"time"
)

// reqState is what the front allocates for one request, in one
// allocation: its ResponseWriter, the Request's URL and context, and the
// values of a small head's fields (issue 22: five allocations per request
// became one; the Request is one of its own, as only WithContext sets its
// context). Nothing of it is reused: a new
// request gets a new reqState, so a handler (or a goroutine it started)
// that keeps any of it sees nothing of a later request.
type reqState struct {
	w    response
	u    url.URL
	ctx  reqCtx
	vals [smallFields]string
}

// smallFields: a head of at most this many fields keeps their values in
// the reqState (wrk sends 1–3; the array is 128 bytes).
const smallFields = 8

// reqCtx is a request's context, as context.WithCancel(context.Background())
// makes one (same Err, Done, Value and Deadline; context.Cause is its Err),
// but inside the reqState rather than two allocations of its own (the
// context and its cancel func). Contexts derived from it and
// context.AfterFunc on it are told of its end through its AfterFunc method
// (context's afterFuncer), without a goroutine per derived context: a
// derived context is cancelled when cancel returns, as under a
// context.WithCancel parent.
type reqCtx struct {
	mu     sync.Mutex
	done   chan struct{} // made by the first Done; closed by cancel
	err    error
	afters []*afterReg
}

type afterReg struct {
	f   func()
	off bool // called or stopped; guarded by reqCtx.mu
}

// closedChan is Done's answer once cancelled with no channel made.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

var _ context.Context = (*reqCtx)(nil)

func (c *reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *reqCtx) Value(any) any { return nil }

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *reqCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	return err
}

func (c *reqCtx) String() string { return "context.Background.WithCancel" }

// cancel ends the context (context.Canceled), once; the functions given
// to AfterFunc are called before it returns.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	afters := c.afters
	c.afters = nil
	for _, a := range afters {
		a.off = true
	}
	c.mu.Unlock()
	for _, a := range afters {
		a.f()
	}
}

// AfterFunc arranges for f to be called when the context ends (context's
// afterFuncer: context.AfterFunc and derived contexts use it). Should it
// have ended already, f runs at once on a goroutine of its own (the
// caller may hold a lock f takes). stop reports whether it stopped f from
// being called.
func (c *reqCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterReg{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.afters = append(c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.off {
			return false
		}
		a.off = true
		for i, b := range c.afters {
			if b == a {
				c.afters = slices.Delete(c.afters, i, i+1)
				break
			}
		}
		return true
	}
}
