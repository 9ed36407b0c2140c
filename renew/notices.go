package renew

import (
	"context"
	"fmt"
	"time"

	"github.com/edge-cdn/edge/cert"
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
	case left > 0 && left <= cert.ExpiryWarning(c, r.cfg.Policy, r.cfg.ExpiryWarning) && c.Notices.ExpiringVersion != c.Version:
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
