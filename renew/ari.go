package renew

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/edge-cdn/edge/acme"
	"github.com/edge-cdn/edge/cert"
	"go.uber.org/zap"
)

// ARI checks run off the renewal loop, in a few workers owned by the
// Renewer (started and waited for by Run): a CA whose renewalInfo endpoint
// hangs then delays ARI answers only, never the start of a due renewal.
const (
	// DefaultARIWorkers is how many ARI requests run at once.
	DefaultARIWorkers = 2
	// ariTimeout bounds one ARI request.
	ariTimeout = 30 * time.Second
	// ariRetry is when to ask again after a failed ARI request that gave
	// no Retry-After.
	ariRetry = time.Hour
)

// ariQueue holds the certificates waiting for an ARI check, each once, in
// the order they came due. It holds at most one entry per certificate.
type ariQueue struct {
	mu      sync.Mutex
	queue   []string
	pending map[string]bool // queued or being checked
	signal  chan struct{}
}

func newARIQueue() *ariQueue {
	return &ariQueue{pending: map[string]bool{}, signal: make(chan struct{}, 1)}
}

// add queues id unless it is already waiting or being checked.
func (q *ariQueue) add(id string) {
	q.mu.Lock()
	if !q.pending[id] {
		q.pending[id] = true
		q.queue = append(q.queue, id)
	}
	q.mu.Unlock()
	q.poke()
}

func (q *ariQueue) poke() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// take returns the next id to check.
func (q *ariQueue) take() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return "", false
	}
	id := q.queue[0]
	q.queue[0] = ""
	q.queue = q.queue[1:]
	if len(q.queue) > 0 {
		q.poke() // wake another worker
	}
	return id, true
}

// done marks id's check finished.
func (q *ariQueue) done(id string) {
	q.mu.Lock()
	delete(q.pending, id)
	q.mu.Unlock()
}

func (q *ariQueue) isPending(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending[id]
}

// ariWorker checks queued certificates until ctx ends.
func (r *Renewer) ariWorker(ctx context.Context) {
	for {
		id, ok := r.ari.take()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-r.ari.signal:
			}
			continue
		}
		r.checkARI(ctx, id)
		r.ari.done(id)
		if ctx.Err() != nil {
			return
		}
		r.Changed(ctx, id) // reschedule: the window may make it due
	}
}

func (r *Renewer) checkARI(ctx context.Context, id string) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("ARI check panicked", zap.String("certificate", id), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
		}
	}()
	c, err := r.certs.Get(ctx, id)
	if err != nil {
		return
	}
	r.refreshARI(ctx, c, r.cfg.Now())
}

// needsARI reports whether c's ARI answer is due and not already asked for.
func (r *Renewer) needsARI(c *cert.Certificate, now time.Time) bool {
	return r.cfg.ARI && r.acme != nil && c.Source == cert.SourceACME &&
		(c.Renewal.ARINextCheckAt == nil || !now.Before(*c.Renewal.ARINextCheckAt)) && !r.ari.isPending(c.ID)
}

// refreshARI asks the CA for the renewal window of a CA-issued certificate
// when the last answer's Retry-After has passed (at least twice a day). It
// runs in an ARI worker.
func (r *Renewer) refreshARI(ctx context.Context, c *cert.Certificate, now time.Time) {
	if r.acme == nil || c.Source != cert.SourceACME || (c.Renewal.ARINextCheckAt != nil && now.Before(*c.Renewal.ARINextCheckAt)) {
		return
	}
	_, v, err := r.certs.Current(ctx, c.ID)
	if err != nil {
		return
	}
	leaf, err := parseLeaf(v.CertPEM)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, ariTimeout)
	w, retry, err := r.acme.RenewalInfo(cctx, leaf)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: ask again at the next start
	}
	now = r.cfg.Now() // the request may have taken a while
	nextCheck := now.Add(12 * time.Hour)
	if err == nil && !retry.IsZero() && retry.Before(nextCheck) && retry.After(now) {
		nextCheck = retry
	}
	if err != nil {
		r.log.Debug("ARI unavailable", zap.String("certificate", c.Name), zap.Error(err))
		nextCheck = now.Add(ariRetry)
		var ra *acme.RetryAfterError
		if errors.As(err, &ra) && ra.After > ariRetry {
			nextCheck = now.Add(ra.After)
		}
	}
	_, uerr := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
		c.Renewal.ARINextCheckAt = &nextCheck
		if err == nil && !w.End.IsZero() {
			if c.Renewal.ARIWindow == nil || !c.Renewal.ARIWindow.Start.Equal(w.Start) || !c.Renewal.ARIWindow.End.Equal(w.End) {
				at := w.Start
				if span := w.End.Sub(w.Start); span > 0 {
					at = w.Start.Add(mrand.N(span))
				}
				c.Renewal.ARIWindow, c.Renewal.ARISelectedAt = &w, &at
			}
		}
		return nil
	})
	if uerr != nil && ctx.Err() == nil {
		r.log.Warn("storing the ARI answer", zap.String("certificate", c.Name), zap.Error(uerr))
	}
}
