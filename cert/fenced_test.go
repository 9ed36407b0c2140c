package cert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/store"
)

// A fenced write lands while the record carries the attempt's mark, also
// after writes that leave the mark alone (an ARI answer), and not once
// another attempt marked it: then nothing is written.
func TestFencedWrites(t *testing.T) {
	ctx := context.Background()
	certs := cert.NewCerts(fixture.Bolt(t))
	rec := &cert.Certificate{Name: "f", Type: cert.TypeServer, CommonName: "f.example"}
	if err := certs.Create(ctx, rec, fixture.SelfSigned(t, "f.example")); err != nil {
		t.Fatal(err)
	}
	mark := func(at time.Time) {
		t.Helper()
		if _, err := certs.Update(ctx, rec.ID, func(c *cert.Certificate) error {
			c.Renewal.State, c.Renewal.LastAttemptAt = cert.RenewalRenewing, &at
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	mine := time.Now()
	mark(mine)
	fence := cert.RequireAttempt(rec.ID, mine)
	if _, err := certs.UpdateIf(ctx, rec.ID, fence, func(c *cert.Certificate) error { c.StatusDetail = "mine"; return nil }); err != nil {
		t.Fatalf("UpdateIf under the attempt's mark: %v", err)
	}
	// A write that leaves the mark alone does not break the fence.
	if _, err := certs.Update(ctx, rec.ID, func(c *cert.Certificate) error { c.StatusDetail = "an ARI answer"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c, err := certs.AddVersionIf(ctx, rec.ID, fence, fixture.SelfSigned(t, "f.example"), nil); err != nil || c.Version != 2 {
		t.Fatalf("AddVersionIf after an unrelated write: %v", err)
	}
	// Another node's attempt marks the record: this one's writes are refused.
	mark(mine.Add(time.Second))
	if _, err := certs.AddVersionIf(ctx, rec.ID, fence, fixture.SelfSigned(t, "f.example"), nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("AddVersionIf under another attempt: %v, want ErrConflict", err)
	}
	if _, err := certs.UpdateIf(ctx, rec.ID, fence, func(*cert.Certificate) error { return nil }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateIf under another attempt: %v, want ErrConflict", err)
	}
	if vs, _ := certs.Versions(ctx, rec.ID); len(vs) != 2 {
		t.Errorf("%d versions after a refused fenced write, want 2", len(vs))
	}
}

// EachVersion reads in batches, each starting after the last: every
// version once, in key order, across batch boundaries.
func TestEachVersionBatches(t *testing.T) {
	ctx := context.Background()
	st := fixture.Bolt(t)
	v := fixture.SelfSigned(t, "b.example")
	const n = 4500 // over two batches of 2,000
	err := st.Update(ctx, func(tx store.Tx) error {
		for i := range n {
			v.Version = 1
			b, _ := json.Marshal(v)
			if err := tx.Put(store.CertificateVersions, fmt.Sprintf("crt_%06d/%010d", i, 1), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen, last := map[string]bool{}, ""
	got, err := cert.NewCerts(st).EachVersion(ctx, func(id string, _ *cert.Version) {
		if seen[id] || id <= last {
			t.Fatalf("%s again or out of order (after %s)", id, last)
		}
		seen[id], last = true, id
	})
	if err != nil || got != n || len(seen) != n {
		t.Fatalf("EachVersion: %d versions, %d distinct, %v; want %d", got, len(seen), err, n)
	}
}
