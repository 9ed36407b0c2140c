package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// TestCopyProgressCountsEveryKey: a migration reports its progress after
// each batch, rising to the total, which is what Copy returns.
func TestCopyProgressCountsEveryKey(t *testing.T) {
	ctx := context.Background()
	from, err := OpenBolt(filepath.Join(t.TempDir(), "from.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	to, err := OpenBolt(filepath.Join(t.TempDir(), "to.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	if err := from.Update(ctx, func(tx Tx) error {
		for i := range 250 {
			if err := tx.Put(Certificates, fmt.Sprintf("c%03d", i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var seen [][2]int
	n, err := CopyProgress(ctx, from, to, func(done, total int) { seen = append(seen, [2]int{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	if n < 250 || len(seen) != (n+99)/100 {
		t.Fatalf("copied %d keys, %d reports, want ≥250 keys and one report per batch of 100", n, len(seen))
	}
	for i, s := range seen {
		if s[1] != n || (i > 0 && s[0] <= seen[i-1][0]) {
			t.Errorf("report %d: %v, want rising done of total %d", i, s, n)
		}
	}
	if last := seen[len(seen)-1]; last[0] != n {
		t.Errorf("last report %v, want %d done", last, n)
	}
}
