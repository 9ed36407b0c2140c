package renew

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
)

// TestExpiringRelativeToRenewalWindow: a 6-day certificate (Pebble's) was
// announced as certificate.expiring as soon as it was issued, since its
// whole life is under notify.expiry_warning (7d). The warning is relative
// to the certificate's own renewal window: a 6-day certificate, renewed
// with 3 days left, is announced with 20h left; a 90-day one still 7 days
// before its expiry.
func TestExpiringRelativeToRenewalWindow(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	certs := cert.NewCerts(st)
	var mu sync.Mutex
	var announced []string
	r := NewRenewer(certs, nil, func() *property.Table { return nil }, st, RenewerConfig{
		Policy: cert.Policy{RenewBefore: 25 * 24 * time.Hour}, ExpiryWarning: 7 * 24 * time.Hour,
		Announce: func(_ context.Context, typ string, c *cert.Certificate, _ string) {
			mu.Lock()
			defer mu.Unlock()
			announced = append(announced, typ+" "+c.Name)
		}})
	issued := time.Now()
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name      string
		life      time.Duration
		quiet, at time.Duration // since issue: no notice at quiet, one at at
	}{
		{"short", 6 * day, time.Minute, 6*day - 19*time.Hour},
		{"long", 90 * day, 82 * day, 83*day + time.Hour},
	} {
		v := caIssued(t, tc.name+".example", issued, issued.Add(tc.life))
		rec := &cert.Certificate{Name: tc.name, Type: cert.TypeServer, AutoRenew: cert.AutoRenewNone, Status: cert.StatusActive, CommonName: tc.name + ".example"}
		if err := certs.Create(ctx, rec, v); err != nil {
			t.Fatal(err)
		}
		c, err := certs.Get(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		r.notices(ctx, c, issued.Add(tc.quiet))
		mu.Lock()
		if len(announced) != 0 {
			t.Errorf("%s: %v after %s of a %s certificate", tc.name, announced, tc.quiet, tc.life)
		}
		mu.Unlock()
		r.notices(ctx, c, issued.Add(tc.at))
		mu.Lock()
		if len(announced) != 1 || announced[0] != "certificate.expiring "+tc.name {
			t.Errorf("%s: %v after %s of a %s certificate, want certificate.expiring", tc.name, announced, tc.at, tc.life)
		}
		announced = nil
		mu.Unlock()
	}
}
