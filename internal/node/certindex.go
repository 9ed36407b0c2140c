package node

import (
	"context"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// certificatesByName lists the stored certificates' summaries once for a
// property reload, which then reads nothing per certificate (the types the
// properties need, the bootstrap, tls.renew_automation). nil when the
// store does not answer: each step then reads what it needs itself. At
// start the handshake index's own pass gives them instead (start).
func (n *node) certificatesByName(ctx context.Context) map[string]cert.Summary {
	known := map[string]cert.Summary{}
	if err := n.certs.EachRecord(ctx, func(s cert.Summary) { known[s.Name] = s }); err != nil {
		n.log.Warn("listing certificates for the properties", zap.Error(err))
		return nil
	}
	return known
}

// changedCertificates returns the certificate names of the properties that
// a reload from prev to t added, changed or removed: the only ones whose
// wanted names (the renewal's) can have changed. Unchanged properties keep
// their *Property across a reload (property.Build), so this is pointer
// comparisons, not a reading of the certificates.
func changedCertificates(prev, t *property.Table) map[string]bool {
	names := map[string]bool{}
	add := func(p *property.Property) {
		if p != nil && p.TLS.Certificate != "" {
			names[p.TLS.Certificate] = true
		}
	}
	for _, p := range t.Properties() {
		if old := prev.ByName(p.Name); old != p {
			add(p)
			add(old)
		}
	}
	for _, p := range prev.Properties() {
		if t.ByName(p.Name) != p {
			add(p)
		}
	}
	return names
}
