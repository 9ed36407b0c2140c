package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// Purges reach a fleet through the store: each is a record under
// purgePrefix in the meta bucket, keyed by its time, which every node
// watches (etcd) and replays at start, before it serves from its disk tier.
// Applying a purge affects only objects stored before its time, so a replay
// is harmless. Records older than purgeRetention are pruned by the node that
// writes a newer one: a node down for longer than that should start with an
// empty disk tier (see the README).
const (
	purgePrefix    = "purge/"
	purgeRetention = 7 * 24 * time.Hour
)

// storeTimeout bounds each store call the node makes for its own
// bookkeeping (purges, last good property versions).
const storeTimeout = 5 * time.Second

// purger purges this node's cache and, in a fleet, records the purge for
// the others.
type purger struct {
	cache *cache.Cache
	fleet *store.Etcd // nil: one node
	// served reports whether this node serves a property of that name;
	// nil: every name.
	served func(name string) bool
	node   string
	log    *zap.Logger
	now    func() time.Time
}

var _ admin.Cache = (*purger)(nil)

func (p *purger) Stats() cache.Stats { return p.cache.Stats() }

// Purge applies req here, then records it for the fleet.
func (p *purger) Purge(ctx context.Context, req cache.Purge) (cache.PurgeResult, error) {
	if err := req.Validate(); err != nil {
		return cache.PurgeResult{}, err
	}
	req.Time = p.now()
	req.ID = fmt.Sprintf("%s%020d-%s", purgePrefix, req.Time.UnixNano(), p.node)
	if req.Property != "" && p.served != nil && !p.served(req.Property) {
		return p.notServed(ctx, req)
	}
	res, err := p.cache.Purge(req)
	// A purge applied here but not made durable on this node's disk tier
	// (the journal could not be written) still goes to the fleet, whose
	// record this node also replays at its next start.
	if errors.Is(err, cache.ErrBadPurge) || p.fleet == nil {
		return res, err
	}
	if rerr := p.record(ctx, req); rerr != nil {
		return res, fmt.Errorf("%w: purged %d objects on this node, but the store did not take the purge (%v); purging again is safe", admin.ErrFleet, res.Purged, rerr)
	}
	return res, err
}

// notServed answers a purge naming a property this node does not serve:
// on a single node the name is wrong (a typo purged nothing and said
// "purged 0"); in a fleet another node may serve it, so the purge is
// recorded for them and the answer says it is not served here.
func (p *purger) notServed(ctx context.Context, req cache.Purge) (cache.PurgeResult, error) {
	if p.fleet == nil {
		return cache.PurgeResult{}, fmt.Errorf("%w: this node serves no property %q (edge property list names them)", admin.ErrNoProperty, req.Property)
	}
	if err := p.record(ctx, req); err != nil {
		return cache.PurgeResult{}, fmt.Errorf("%w: property %q is not served here, and the store did not take the purge for the fleet (%v); purging again is safe", admin.ErrFleet, req.Property, err)
	}
	return cache.PurgeResult{}, fmt.Errorf("%w: property %q is not served here; the purge is recorded for the nodes of the fleet that serve it", admin.ErrNotServedHere, req.Property)
}

// record writes req for the fleet and prunes records past retention,
// the oldest first.
func (p *purger) record(ctx context.Context, req cache.Purge) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	cutoff := fmt.Sprintf("%s%020d", purgePrefix, req.Time.Add(-purgeRetention).UnixNano())
	return p.fleet.Update(ctx, func(tx store.Tx) error {
		var old []string
		if err := tx.ForEach(store.Meta, purgePrefix, func(k string, _ []byte) error {
			if k < cutoff {
				old = append(old, k)
			}
			return nil
		}); err != nil {
			return err
		}
		// At most what one etcd transaction takes besides the new record:
		// a burst of purges a week ago is pruned over the next few.
		if n := p.fleet.MaxTxnWrites() - 1; len(old) > n {
			old = old[:n]
		}
		for _, k := range old {
			if err := tx.Delete(store.Meta, k); err != nil {
				return err
			}
		}
		return tx.Put(store.Meta, req.ID, b)
	})
}

// replay applies every recorded purge, each at its own time: at start,
// before the node serves, and after a watch gap.
func (p *purger) replay(ctx context.Context) error {
	if p.fleet == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var purges []cache.Purge
	err := p.fleet.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.Meta, purgePrefix, func(_ string, v []byte) error {
			var c cache.Purge
			if json.Unmarshal(v, &c) == nil {
				purges = append(purges, c)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, c := range purges {
		p.apply(c, false)
	}
	return nil
}

// apply runs a purge made by any node. A live one (just seen through the
// watch) covers everything stored here until now, so that a clock behind
// the purging node's spares nothing it should not.
func (p *purger) apply(c cache.Purge, live bool) {
	if live {
		if now := p.now(); now.After(c.Time) {
			c.Time = now
		}
	}
	res, err := p.cache.Purge(c)
	if err != nil {
		p.log.Warn("a recorded purge does not apply", zap.String("purge", c.ID), zap.Error(err))
		return
	}
	p.log.Debug("applied a recorded purge", zap.String("purge", c.ID), zap.Bool("live", live), zap.Int("purged", res.Purged))
}

// watch applies the purges other nodes make, until ctx ends.
func (p *purger) watch(ctx context.Context) {
	if p.fleet == nil {
		return
	}
	p.fleet.Watch(ctx, store.Meta, func(key string) {
		if !strings.HasPrefix(key, purgePrefix) || strings.HasSuffix(key, "-"+p.node) {
			return // not a purge, or this node's own, applied already
		}
		gctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		var c cache.Purge
		err := p.fleet.View(gctx, func(tx store.Tx) error {
			v, err := tx.Get(store.Meta, key)
			if err != nil {
				return err
			}
			return json.Unmarshal(v, &c)
		})
		switch {
		case errors.Is(err, store.ErrNotFound): // pruned
		case err != nil:
			p.log.Warn("reading a purge made by another node", zap.String("purge", key), zap.Error(err))
		default:
			p.apply(c, true)
		}
	}, func() {
		if err := p.replay(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("replaying purges after a watch gap", zap.Error(err))
		}
	})
}
