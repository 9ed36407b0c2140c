package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// lease is this node's etcd lease, to which its locks are bound. The
// session's own keep-alive keeps it; lost is closed by a second, timed
// refresh loop (keep) as soon as the lease may have expired on the server.
type lease struct {
	s    *concurrency.Session
	lost chan struct{}
}

// sessionFor returns this node's lease, making a new one when the last
// may have expired (etcd was unreachable longer than the lease). The
// grant is one bounded request made without e.mu held; callers that
// arrive meanwhile share it (singleflight) and may leave when their ctx
// ends.
func (e *Etcd) sessionFor(ctx context.Context) (*lease, error) {
	if l := e.liveSession(); l != nil {
		return l, nil
	}
	ch := e.grants.DoChan("session", func() (any, error) {
		if l := e.liveSession(); l != nil {
			return l, nil
		}
		// Not the first caller's ctx: a caller giving up must not fail the
		// others. The op timeout still bounds the grant.
		gctx, cancel := e.op(e.bg)
		defer cancel()
		sent := time.Now()
		g, err := e.cli.Grant(gctx, int64(e.ttl))
		if err != nil {
			return nil, fmt.Errorf("store etcd: lease: %w", err)
		}
		s, err := concurrency.NewSession(e.cli, concurrency.WithLease(g.ID), concurrency.WithTTL(e.ttl),
			concurrency.WithContext(e.bg))
		if err != nil {
			return nil, fmt.Errorf("store etcd: lease: %w", err)
		}
		l := &lease{s: s, lost: make(chan struct{})}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			s.Orphan()
			return nil, errors.New("store etcd: closed")
		}
		e.session = l
		e.keepers.Add(1)
		e.mu.Unlock()
		go e.keep(l, sent.Add(time.Duration(g.TTL)*time.Second))
		return l, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*lease), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// liveSession returns the current lease unless it may have expired; one
// that may have is orphaned (its keep-alive stops; etcd expires it).
func (e *Etcd) liveSession() *lease {
	e.mu.Lock()
	l := e.session
	if l == nil {
		e.mu.Unlock()
		return nil
	}
	select {
	case <-l.lost:
		e.session = nil
	default:
		e.mu.Unlock()
		return l
	}
	e.mu.Unlock()
	l.s.Orphan() // no request: cancels the keep-alive
	return nil
}

// keep refreshes the lease every LockTTL/3 with its own requests, whose
// sending time it knows, and closes l.lost once deadline passes: LockTTL
// after the sending of the last refresh etcd answered. etcd counts from
// the refresh's arrival, so lost closes before the server can expire the
// lease, not after (the client library's keep-alive notices only after).
// A tenth of LockTTL is taken off the deadline for the holder's own
// scheduling delays and clock drift. keep ends with the session (Close
// orphans it).
func (e *Etcd) keep(l *lease, deadline time.Time) {
	defer e.keepers.Done()
	defer close(l.lost)
	ttl := time.Duration(e.ttl) * time.Second
	margin := ttl / 10
	deadline = deadline.Add(-margin)
	for {
		t := time.NewTimer(min(ttl/3, time.Until(deadline)))
		select {
		case <-t.C:
		case <-l.s.Done():
			t.Stop()
			return
		}
		sent := time.Now()
		if !sent.Before(deadline) {
			return
		}
		ctx, cancel := context.WithDeadline(l.s.Ctx(), deadline)
		resp, err := e.cli.KeepAliveOnce(ctx, l.s.Lease())
		cancel()
		switch {
		case err == nil && resp.TTL > 0:
			deadline = sent.Add(time.Duration(resp.TTL)*time.Second - margin)
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			return
		}
	}
}
