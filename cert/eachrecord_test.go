package cert

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/edge-cdn/edge/store"
)

// TestEachRecordInOrderAcrossBatches: EachRecord, decoding in batches on
// every CPU, gives every record once, in key order, with its facts; a
// corrupt record fails it, naming the record.
func TestEachRecordInOrderAcrossBatches(t *testing.T) {
	c := newCerts(t)
	ctx := context.Background()
	const n = 2*summaryBatch + 100
	if err := c.st.Update(ctx, func(tx store.Tx) error {
		for i := range n {
			rec := Certificate{ID: fmt.Sprintf("crt_%06d", i), Name: fmt.Sprintf("n%d", i), Type: TypeServer, AutoRenew: AutoRenewACME, Version: i}
			if err := putJSON(tx, store.Certificates, rec.ID, &rec); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	i := 0
	if err := c.EachRecord(ctx, func(s Summary) {
		if want := fmt.Sprintf("crt_%06d", i); s.ID != want || s.Name != fmt.Sprintf("n%d", i) || s.Version != i || s.Type != TypeServer || s.AutoRenew != AutoRenewACME {
			t.Fatalf("record %d: %+v, want id %s", i, s, want)
		}
		i++
	}); err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("%d records, want %d", i, n)
	}
	if err := c.st.Update(ctx, func(tx store.Tx) error { return tx.Put(store.Certificates, "crt_001500", []byte("{")) }); err != nil {
		t.Fatal(err)
	}
	err := c.EachRecord(ctx, func(Summary) {})
	if err == nil || !strings.Contains(err.Error(), "crt_001500") {
		t.Errorf("a corrupt record: %v, want an error naming it", err)
	}
}
