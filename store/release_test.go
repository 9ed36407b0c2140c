package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReleaseMappedKeepsData: after the store's mapped pages are
// released, every value reads back as written.
func TestReleaseMappedKeepsData(t *testing.T) {
	b, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	const n = 2000
	if err := b.Update(ctx, func(tx Tx) error {
		for i := range n {
			if err := tx.Put(Meta, fmt.Sprintf("k%05d", i), []byte(fmt.Sprintf("value %d %0512d", i, i))); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Every page read: resident.
	if err := b.View(ctx, func(tx Tx) error { return tx.ForEach(Meta, "k", func(string, []byte) error { return nil }) }); err != nil {
		t.Fatal(err)
	}
	before := mappedRSS(t, b.Path())
	if err := b.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	if after := mappedRSS(t, b.Path()); after >= before || before == 0 {
		t.Errorf("resident kB of the store's mapping: %d before the release, %d after", before, after)
	}
	got := 0
	if err := b.View(ctx, func(tx Tx) error {
		return tx.ForEach(Meta, "k", func(k string, v []byte) error {
			var i int
			fmt.Sscanf(k, "k%05d", &i)
			if string(v) != fmt.Sprintf("value %d %0512d", i, i) {
				return fmt.Errorf("%s: %.20q after the release", k, v)
			}
			got++
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Errorf("%d values read back, want %d", got, n)
	}
}

// mappedRSS is the resident kB of the mappings of path in this process
// (/proc/self/smaps); it skips the test where there is none.
func mappedRSS(t *testing.T, path string) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	abs, _ := filepath.Abs(path)
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if fields := strings.Fields(l); len(fields) >= 5 && strings.Contains(fields[0], "-") {
			in = len(fields) >= 6 && fields[5] == abs
			continue
		}
		var kb int
		if in && strings.HasPrefix(l, "Rss:") {
			fmt.Sscanf(strings.TrimPrefix(l, "Rss:"), "%d", &kb)
			total += kb
		}
	}
	return total
}
