package store

import (
	"context"
	"errors"
	"sync"
)

// Locker hands out named locks. Lock waits until the lock is free or ctx
// ends; TryLock does not wait. A lock held by a process that dies is
// released: in memory by the process's end for Bolt, by its lease for etcd.
type Locker interface {
	Lock(ctx context.Context, name string) error
	TryLock(ctx context.Context, name string) (bool, error)
	Unlock(ctx context.Context, name string) error
}

// localLocks are in-process locks: enough for bbolt, whose file one
// process holds at a time.
type localLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed on unlock
}

func newLocalLocks() *localLocks { return &localLocks{held: map[string]chan struct{}{}} }

func (l *localLocks) Lock(ctx context.Context, name string) error {
	for {
		l.mu.Lock()
		ch, busy := l.held[name]
		if !busy {
			l.held[name] = make(chan struct{})
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *localLocks) TryLock(_ context.Context, name string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[name]; busy {
		return false, nil
	}
	l.held[name] = make(chan struct{})
	return true, nil
}

func (l *localLocks) Unlock(_ context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.held[name]; ok {
		close(ch)
		delete(l.held, name)
	}
	return nil
}

// Lost returns a channel closed when the named lock is released; an
// in-process lock is not lost otherwise. For a lock not held it returns
// a closed channel.
func (l *localLocks) Lost(name string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.held[name]; ok {
		return ch
	}
	return closedChan
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Fencer is a Locker that tells a holder when its lock is gone. Both
// backends implement it.
type Fencer interface {
	// Lost returns a channel closed when the named lock, held by this
	// process, is lost or released; closed already if it is not held.
	Lost(name string) <-chan struct{}
}

var (
	_ Fencer = (*Bolt)(nil)
	_ Fencer = (*Etcd)(nil)
)

// ErrLockLost is the cause of a HeldContext's cancellation when its lock
// was lost.
var ErrLockLost = errors.New("store: lock lost (lease expired)")

// HeldContext returns a context for work done under the named lock, which
// l holds: it is cancelled, with cause ErrLockLost, when the lock is lost,
// and when ctx ends. A Locker that is not a Fencer cannot lose locks. Call
// cancel when the work ends, before Unlock; it waits for the watcher.
func HeldContext(ctx context.Context, l Locker, name string) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancelCause(ctx)
	f, ok := l.(Fencer)
	if !ok {
		return hctx, func() { cancel(context.Canceled) }
	}
	lost := f.Lost(name)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-lost:
			cancel(ErrLockLost)
		case <-hctx.Done():
		}
	}()
	return hctx, func() { cancel(context.Canceled); <-done }
}
