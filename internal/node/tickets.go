package node

import (
	"context"
	"time"

	edgetls "github.com/edge-cdn/edge/tls"
	"go.uber.org/zap"
)

// ticketSyncInterval is how often a node reads the fleet's session-ticket
// keys (and rotates them when a day old): a key another node made is in
// use here within this long; until then this node's tickets are still
// accepted everywhere, as the previous key is kept.
const ticketSyncInterval = 10 * time.Minute

// startTickets loads the session-ticket keys shared through the store
// (rotated daily) before the HTTPS port serves. A store that does not
// answer leaves Go's per-process keys in use until a later sync.
func (n *node) startTickets(ctx context.Context) {
	n.tickets = edgetls.NewTicketKeys(n.store, edgetls.TicketOptions{Logger: n.log.Named("tls")})
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.tickets.Sync(sctx); err != nil {
		n.log.Warn("session-ticket keys not loaded; using per-process keys until the next sync", zap.Error(err))
	}
}
