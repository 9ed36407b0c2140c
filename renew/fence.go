package renew

import (
	"context"
	"errors"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// fenced is one attempt after its lock was taken: its writes happen only
// while the record still carries the attempt's mark (cert.RequireAttempt).
type fenced struct {
	*Renewer
	fence cert.Fence
	log   *zap.Logger
}

// lost reports whether the attempt's lock was lost (hctx, from
// store.HeldContext, ended with store.ErrLockLost while ctx goes on); the
// attempt is then abandoned: another node may hold the lock and renew.
func (a *fenced) lost(ctx, hctx context.Context, c *cert.Certificate) bool {
	if ctx.Err() != nil || !errors.Is(context.Cause(hctx), store.ErrLockLost) {
		return false
	}
	a.abandon(ctx, c, "the renewal lock was lost (its lease expired) during the order: another node may renew it")
	return true
}

// abandon gives the certificate up to whoever holds its lock now, without
// a retry from here, and reschedules it from the record as stored.
func (a *fenced) abandon(ctx context.Context, c *cert.Certificate, why string) {
	a.log.Warn("renewal attempt abandoned", zap.String("why", why))
	a.cfg.OnRenewal("abandoned")
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
	defer cancel()
	a.Changed(cctx, c.ID)
}
