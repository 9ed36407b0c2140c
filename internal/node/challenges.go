package node

import (
	"context"
	"time"

	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// rescanChallenges loads the challenges pending in the store into the ACME
// client's memory, so that ServeChallenge answers them without a store
// read per request and refuses other hosts without any.
func (n *node) rescanChallenges(ctx context.Context) {
	if n.acme == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.acme.Rescan(sctx); err != nil && ctx.Err() == nil {
		n.log.Warn("loading pending ACME challenges", zap.Error(err))
	}
}

// watchChallenges follows the challenge tokens and probes that other nodes
// of the fleet store (etcd only: with bbolt this node is the only writer,
// and its own writes update the client at once).
func (n *node) watchChallenges(ctx context.Context) {
	w, ok := n.store.(*store.Etcd)
	if !ok || n.acme == nil {
		return
	}
	w.Watch(ctx, store.ACME, func(key string) {
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := n.acme.Refresh(kctx, key); err != nil && ctx.Err() == nil {
			n.log.Warn("refreshing an ACME challenge stored by another node", zap.String("key", key), zap.Error(err))
		}
	}, func() { n.rescanChallenges(ctx) })
}

// servesHost reports whether a property of the current table serves host.
func (n *node) servesHost(host string) bool {
	t := n.table.Load()
	return t != nil && t.Lookup(host) != nil
}
