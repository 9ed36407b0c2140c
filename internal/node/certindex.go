package node

import (
	"context"
	"errors"

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

// changedProperties returns the properties of t that are new or changed
// since prev (a different *Property: property.Build keeps the unchanged
// ones).
func changedProperties(prev, t *property.Table) []*property.Property {
	var out []*property.Property
	for _, p := range t.Properties() {
		if prev.ByName(p.Name) != p {
			out = append(out, p)
		}
	}
	return out
}

// tableOf is a table of properties already validated together.
func tableOf(props []*property.Property) *property.Table {
	files := make([]property.Loaded, len(props))
	for i, p := range props {
		files[i] = property.Loaded{File: p.File, Property: p}
	}
	return property.Build(files, nil, property.Options{})
}

// changedFileCertificates returns the certificate names of the files that
// changed since prev was loaded.
func changedFileCertificates(files []property.Loaded, prev *property.Table) map[string]bool {
	names := map[string]bool{}
	for _, f := range files {
		if p := f.Property; p != nil && p != prev.ByFile(f.File) && p.TLS.Certificate != "" {
			names[p.TLS.Certificate] = true
		}
	}
	return names
}

// certificatesOf reads the summaries of the named certificates one by one,
// when they are few (a reload of a few files among 100,000 listed every
// certificate record): the summaries of those in the store, and true; false
// when they are many or the store fails, for certificatesByName instead.
func (n *node) certificatesOf(ctx context.Context, names map[string]bool) (map[string]cert.Summary, bool) {
	if len(names) > maxCertificateReads {
		return nil, false
	}
	known := make(map[string]cert.Summary, len(names))
	for name := range names {
		c, err := n.certs.Get(ctx, name)
		if errors.Is(err, cert.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false
		}
		known[name] = cert.Summary{ID: c.ID, Name: c.Name, Type: c.Type, AutoRenew: c.AutoRenew, Version: c.Version, NotAfter: c.NotAfter}
	}
	return known, true
}
