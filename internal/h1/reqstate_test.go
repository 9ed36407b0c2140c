package h1

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestReqCtxAsWithCancel: a request's context answers as
// context.WithCancel(context.Background()) does, and what is derived from
// it ends with it, when cancel returns.
func TestReqCtxAsWithCancel(t *testing.T) {
	ref, refCancel := context.WithCancel(context.Background())
	c := new(reqCtx)
	if c.Err() != nil || ref.Err() != nil {
		t.Fatal("done before cancel")
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("a deadline")
	}
	if c.Value("k") != nil {
		t.Fatal("a value")
	}
	done := c.Done()
	select {
	case <-done:
		t.Fatal("Done closed before cancel")
	default:
	}
	child, childCancel := context.WithCancel(c)
	defer childCancel()
	timed, timedCancel := context.WithTimeout(c, time.Hour)
	defer timedCancel()
	stoppedCalled := make(chan struct{}, 1)
	stop := context.AfterFunc(c, func() { stoppedCalled <- struct{}{} })
	if !stop() {
		t.Fatal("stop of a pending AfterFunc: false")
	}
	if stop() {
		t.Fatal("second stop: true")
	}
	called := make(chan struct{})
	context.AfterFunc(c, func() { close(called) })
	// A derived context cancelled and stopped before: unregistered.
	gone, goneCancel := context.WithCancel(c)
	goneCancel()
	if n := len(c.afters); n != 3 {
		t.Fatalf("%d registrations, want 3 (child, timed, AfterFunc)", n)
	}

	c.cancel()
	refCancel()
	if c.Err() != ref.Err() || context.Cause(c) != context.Cause(ref) {
		t.Fatalf("Err %v, Cause %v; want %v, %v", c.Err(), context.Cause(c), ref.Err(), context.Cause(ref))
	}
	select {
	case <-done:
	default:
		t.Fatal("Done not closed by cancel")
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done after cancel not closed")
	}
	// Derived contexts end when cancel returns, as under WithCancel's.
	if child.Err() != context.Canceled || timed.Err() != context.Canceled || gone.Err() != context.Canceled {
		t.Fatalf("derived: %v, %v, %v", child.Err(), timed.Err(), gone.Err())
	}
	<-called
	select {
	case <-stoppedCalled:
		t.Fatal("a stopped AfterFunc was called")
	default:
	}
	if len(c.afters) != 0 {
		t.Fatal("registrations kept after cancel")
	}
	c.cancel() // twice: nothing

	// After the end: AfterFunc runs f at once (on its own goroutine), and
	// a derived context starts done.
	late := make(chan struct{})
	if context.AfterFunc(c, func() { close(late) })() {
		t.Fatal("stop after the end: true")
	}
	<-late
	if d, cancel := context.WithCancel(c); d.Err() != context.Canceled {
		t.Fatal("context derived after the end not done")
	} else {
		cancel()
	}
	// Done before any Done call was made, after cancel: closed.
	c2 := new(reqCtx)
	c2.cancel()
	select {
	case <-c2.Done():
	default:
		t.Fatal("Done of a cancelled context not closed")
	}
}

// TestReqCtxDerivedNoGoroutine: contexts derived from a request's context
// are told of its end through its AfterFunc method, not by a goroutine
// each (as context does for a parent it does not know).
func TestReqCtxDerivedNoGoroutine(t *testing.T) {
	c := new(reqCtx)
	before := runtime.NumGoroutine()
	var cancels []context.CancelFunc
	for range 100 {
		_, cancel := context.WithCancel(c)
		cancels = append(cancels, cancel)
	}
	if n := runtime.NumGoroutine() - before; n >= 50 {
		t.Fatalf("%d goroutines for 100 derived contexts", n)
	}
	for _, cancel := range cancels {
		cancel()
	}
	if len(c.afters) != 0 {
		t.Fatalf("%d registrations left after every derived context was cancelled", len(c.afters))
	}
	c.cancel()
}
