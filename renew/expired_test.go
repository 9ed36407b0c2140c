package renew

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
)

// TestExpiredRetriesNotDaily runs the renewal loop for a day of fake time
// (testing/synctest) on an expired CA-issued certificate whose attempts all
// fail (ACME is off on this node): after 1m, 10m, 100m the retries stay
// 100 minutes apart instead of falling back to one a day.
func TestExpiredRetriesNotDaily(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st, err := store.OpenBolt(filepath.Join(t.TempDir(), "edge.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		certs := cert.NewCerts(st)
		now := time.Now()
		v := caIssued(t, "gone.example", now.Add(-90*24*time.Hour), now.Add(-time.Hour))
		rec := &cert.Certificate{Name: "gone", Type: cert.TypeServer, AutoRenew: cert.AutoRenewACME, Status: cert.StatusActive, CommonName: "gone.example"}
		if err := certs.Create(ctx, rec, v); err != nil {
			t.Fatal(err)
		}
		r := NewRenewer(certs, nil, func() *property.Table { return nil }, st, RenewerConfig{
			Policy: cert.Policy{RenewBefore: 25 * 24 * time.Hour}, CheckInterval: time.Hour})
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { r.Run(rctx) })
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		cancel()
		wg.Wait()
		c, err := certs.Get(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		// 1 + 1m + 10m + 100m, then every 100m: 16 attempts in 24h; with
		// a daily step after the fourth it was 5.
		if c.Renewal.Attempts < 14 {
			t.Errorf("%d attempts in a day for an expired certificate, want one every 100 minutes at most (>= 14)", c.Renewal.Attempts)
		}
		if c.Status != cert.StatusFailed && c.Status != cert.StatusExpired {
			t.Errorf("status %s, want failed or expired", c.Status)
		}
	})
}

// TestExpiredNotDueAtEveryTurn: an expired certificate whose expired
// notice is sent has nothing due until its next attempt; before, its
// never-sent expiring notice kept it due, and the loop turned every 10ms.
func TestExpiredNotDueAtEveryTurn(t *testing.T) {
	now := time.Now()
	next := now.Add(time.Hour)
	r := NewRenewer(cert.NewCerts(nil), nil, func() *property.Table { return nil }, nil, RenewerConfig{
		Policy: cert.Policy{RenewBefore: 25 * 24 * time.Hour}})
	c := &cert.Certificate{ID: "crt_x", Name: "x", Type: cert.TypeServer, AutoRenew: cert.AutoRenewACME, Source: cert.SourceACME,
		Version: 3, SubjectNames: []string{"x.example"}, CommonName: "x.example",
		NotBefore: now.Add(-90 * 24 * time.Hour), NotAfter: now.Add(-time.Hour),
		Notices: cert.Notices{ExpiredVersion: 3}, Renewal: cert.Renewal{NextAttemptAt: &next}}
	if at, ok := r.nextEvent(c, nil, now); !ok || !at.Equal(next) {
		t.Errorf("next event of an expired, announced certificate in backoff: %s (%v), want its next attempt %s", at, ok, next)
	}
}
