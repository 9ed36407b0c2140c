package cert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/store"
)

// A fenced write lands while the record is as read, and not after anyone
// else wrote it: then nothing is written.
func TestFencedWrites(t *testing.T) {
	ctx := context.Background()
	certs := cert.NewCerts(fixture.Bolt(t))
	rec := &cert.Certificate{Name: "f", Type: cert.TypeServer, CommonName: "f.example"}
	if err := certs.Create(ctx, rec, fixture.SelfSigned(t, "f.example")); err != nil {
		t.Fatal(err)
	}
	rev, err := certs.Revision(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certs.UpdateIf(ctx, rec.ID, rev, func(c *cert.Certificate) error { c.StatusDetail = "mine"; return nil }); err != nil {
		t.Fatalf("UpdateIf on the state read: %v", err)
	}
	// The record changed (by that very write): the old revision is stale.
	if _, err := certs.AddVersionIf(ctx, rec.ID, rev, fixture.SelfSigned(t, "f.example"), nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("AddVersionIf on a stale revision: %v, want ErrConflict", err)
	}
	if _, err := certs.UpdateIf(ctx, rec.ID, rev, func(*cert.Certificate) error { return nil }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateIf on a stale revision: %v, want ErrConflict", err)
	}
	if vs, _ := certs.Versions(ctx, rec.ID); len(vs) != 1 {
		t.Errorf("%d versions after a refused fenced write, want 1", len(vs))
	}
	rev, _ = certs.Revision(ctx, rec.ID)
	if c, err := certs.AddVersionIf(ctx, rec.ID, rev, fixture.SelfSigned(t, "f.example"), nil); err != nil || c.Version != 2 {
		t.Fatalf("AddVersionIf on a fresh revision: %v", err)
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
