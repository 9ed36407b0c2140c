package renew

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
)

// BenchmarkRenewalPass measures one pass of the renewal loop over n stored
// certificates of which 10 are due: the work must follow the due ones,
// not n.
func BenchmarkRenewalPass(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("certs=%d/due=10", n), func(b *testing.B) {
			ctx := context.Background()
			st := fixture.Bolt(b)
			c := cert.NewCerts(st)
			now := time.Now()
			ids := bulkCertificates(b, st, n, now)
			r := NewRenewer(c, nil, func() *property.Table { return nil }, st, RenewerConfig{Policy: cert.Policy{RenewBefore: 25 * 24 * time.Hour}})
			start := time.Now()
			r.rescan(ctx)
			b.ReportMetric(float64(time.Since(start).Milliseconds()), "rescan-ms")
			if got := r.agenda.len(); got != n {
				b.Fatalf("agenda holds %d, want %d", got, n)
			}
			due := ids[:10]
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				for _, id := range due {
					r.agenda.set(id, now.Add(-time.Second))
				}
				b.StartTimer()
				r.runDue(ctx)
			}
		})
	}
}

// bulkCertificates writes n CA-issued certificates valid for 60 days (none
// due) in one transaction; the records are what the loop reads.
func bulkCertificates(b testing.TB, st store.Store, n int, now time.Time) []string {
	ids := make([]string, n)
	err := st.Update(context.Background(), func(tx store.Tx) error {
		for i := range n {
			rec := cert.Certificate{ID: fmt.Sprintf("crt_%08d", i), Name: fmt.Sprintf("c%d", i), Type: cert.TypeServer, AutoRenew: cert.AutoRenewACME,
				Status: cert.StatusActive, Source: cert.SourceACME, Version: 1, SubjectNames: []string{fmt.Sprintf("h%d.example", i)},
				CommonName: fmt.Sprintf("h%d.example", i), NotBefore: now.Add(-30 * 24 * time.Hour), NotAfter: now.Add(60 * 24 * time.Hour),
				Notices: cert.Notices{ExpiringVersion: 1}}
			ids[i] = rec.ID
			if err := cert.Put(tx, &rec, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return ids
}
