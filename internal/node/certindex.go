package node

import (
	"context"

	"github.com/edge-cdn/edge/cert"
	"go.uber.org/zap"
)

// certificatesByName lists the stored certificates once for a property
// load or reload, which then reads nothing per certificate (the types the
// properties need, the bootstrap, the renewal schedule). nil when the store
// does not answer: each step then reads what it needs itself.
func (n *node) certificatesByName(ctx context.Context) map[string]*cert.Certificate {
	list, err := n.certs.List(ctx)
	if err != nil {
		n.log.Warn("listing certificates for the properties", zap.Error(err))
		return nil
	}
	known := make(map[string]*cert.Certificate, len(list))
	for _, c := range list {
		known[c.Name] = c
	}
	return known
}
