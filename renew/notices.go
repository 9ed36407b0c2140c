package renew

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/edge-cdn/edge/cert"
	"go.uber.org/zap"
)

// notices announces certificate.expiring and certificate.expired, once per
// version, and marks an expired certificate so.
func (r *Renewer) notices(ctx context.Context, c *cert.Certificate, now time.Time) {
	left := c.NotAfter.Sub(now)
	switch {
	case left <= 0 && c.Notices.ExpiredVersion != c.Version:
		stored, err := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
			c.Notices.ExpiredVersion = c.Version
			c.Status = cert.StatusExpired
			c.StatusDetail = "the certificate expired on " + c.NotAfter.Format(time.RFC3339)
			return nil
		})
		if err == nil {
			r.cfg.Announce(ctx, "certificate.expired", stored, stored.StatusDetail)
		}
	case left > 0 && left <= r.cfg.ExpiryWarning && c.Notices.ExpiringVersion != c.Version:
		stored, err := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
			c.Notices.ExpiringVersion = c.Version
			return nil
		})
		if err == nil {
			r.cfg.Announce(ctx, "certificate.expiring", stored, fmt.Sprintf("%s expires in %s, on %s",
				c.Name, cert.RoundDuration(left.Round(time.Hour)), c.NotAfter.Format(time.RFC3339)))
		}
	}
}

// refreshARI asks the CA for the renewal window of a CA-issued certificate
// when the last answer's Retry-After has passed (at least twice a day).
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
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, retry, err := r.acme.RenewalInfo(cctx, leaf)
	nextCheck := now.Add(12 * time.Hour)
	if err == nil && !retry.IsZero() && retry.Before(nextCheck) && retry.After(now) {
		nextCheck = retry
	}
	if err != nil {
		r.log.Debug("ARI unavailable", zap.String("certificate", c.Name), zap.Error(err))
		nextCheck = now.Add(time.Hour)
	}
	stored, uerr := r.certs.Update(ctx, c.ID, func(c *cert.Certificate) error {
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
	if uerr == nil {
		*c = *stored
	}
}
