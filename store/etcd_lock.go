package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// heldLock is a lock this process holds in etcd, and the session (lease)
// it is bound to: when the session ends, the lock is gone.
type heldLock struct {
	m *concurrency.Mutex
	l *lease
}

func (e *Etcd) lockKey(name string) string { return e.prefix + "locks/" + name }

// Lock waits for the named lock, fleet-wide: until it is free, ctx ends,
// or (when ctx has no deadline) LockTimeout passes. Each request of the
// wait is bounded by OpTimeout.
func (e *Etcd) Lock(ctx context.Context, name string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.lockTimeout)
		defer cancel()
	}
	if err := e.local.Lock(ctx, name); err != nil {
		return err
	}
	for {
		ok, err := e.acquire(ctx, name)
		if err != nil || ok {
			return err
		}
		if err := e.waitRelease(ctx, name); err != nil {
			return err
		}
	}
}

// TryLock takes the named lock if no node holds it.
func (e *Etcd) TryLock(ctx context.Context, name string) (bool, error) {
	if ok, _ := e.local.TryLock(ctx, name); !ok {
		return false, nil
	}
	ok, err := e.acquire(ctx, name)
	if !ok {
		_ = e.local.Unlock(ctx, name)
	}
	return ok, err
}

// acquire tries once to take the etcd side of a lock whose in-process
// side is held. On an error it releases the in-process side; when another
// node holds the lock it returns false and keeps it, for Lock to wait.
// It is TryLock, not concurrency.Mutex.Lock, because the latter cleans up
// a failed wait with an unbounded request.
func (e *Etcd) acquire(ctx context.Context, name string) (bool, error) {
	l, err := e.sessionFor(ctx)
	if err == nil {
		m := concurrency.NewMutex(l.s, e.lockKey(name))
		octx, cancel := e.op(ctx)
		err = m.TryLock(octx)
		cancel()
		switch {
		case err == nil:
			e.mu.Lock()
			e.held[name] = heldLock{m, l}
			e.mu.Unlock()
			return true, nil
		case errors.Is(err, concurrency.ErrLocked):
			return false, nil
		}
	}
	_ = e.local.Unlock(ctx, name)
	return false, err
}

// waitRelease returns when the holder of the named lock may have let go:
// a key under the lock was deleted (unlock or lease expiry). It releases
// the in-process side of the lock if it fails.
func (e *Etcd) waitRelease(ctx context.Context, name string) error {
	pfx := e.lockKey(name) + "/"
	octx, cancel := e.op(ctx)
	resp, err := e.cli.Get(octx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err == nil && resp.Count > 0 {
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := e.cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithFilterPut())
		select {
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil { // no leader, or the watch failed: do not spin
				pause(ctx, 200*time.Millisecond)
			}
		case <-ctx.Done():
		}
		wcancel()
		err = ctx.Err()
	}
	if err != nil {
		_ = e.local.Unlock(ctx, name)
		return fmt.Errorf("store etcd: waiting for lock %s: %w", name, err)
	}
	return nil
}

// Unlock releases the named lock, within OpTimeout. If etcd does not
// answer, the lock goes with the lease.
func (e *Etcd) Unlock(ctx context.Context, name string) error {
	e.mu.Lock()
	h, ok := e.held[name]
	delete(e.held, name)
	e.mu.Unlock()
	var err error
	if ok {
		octx, cancel := e.op(ctx)
		err = h.m.Unlock(octx)
		cancel()
	}
	_ = e.local.Unlock(ctx, name)
	return err
}

// Lost returns a channel closed when the named lock, held by this
// process, may be lost: LockTTL has passed since the sending of the last
// lease refresh etcd answered, so etcd may have expired the lease (it
// counts from the refresh's arrival, later). For a lock not held it
// returns a closed channel. This assumes the clocks of node and etcd run
// at the same rate; writes that must not overlap another holder's also
// use Tx.Require.
func (e *Etcd) Lost(name string) <-chan struct{} {
	e.mu.Lock()
	h, ok := e.held[name]
	e.mu.Unlock()
	if !ok {
		return closedChan
	}
	return h.l.lost
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
