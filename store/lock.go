package store

import (
	"context"
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
