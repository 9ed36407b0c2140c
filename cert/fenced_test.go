package cert_test

import (
	"context"
	"errors"
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
