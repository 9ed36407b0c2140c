package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPurgeJournalCompactsAndReplays: past its size the journal keeps only
// the files not unlinked yet; at the next open it unlinks those and starts
// empty; junk and cut lines are ignored.
func TestPurgeJournalCompactsAndReplays(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"objects", "tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	name := func(i int) string {
		s := sha256.Sum256([]byte(fmt.Sprint(i)))
		return hex.EncodeToString(s[:]) + "-" + fmt.Sprint(i) + ".obj"
	}
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	live := []string{name(1), name(2)}
	for _, n := range live {
		os.MkdirAll(filepath.Join(dir, "objects", n[:2]), 0o700)
		os.WriteFile(filepath.Join(dir, "objects", n[:2], n), []byte("x"), 0o600)
	}
	if err := j.add(live); err != nil {
		t.Fatal(err)
	}
	var gone []string // already unlinked
	for i := 10; len(gone)*70 <= journalCompactAt; i++ {
		gone = append(gone, name(i))
	}
	if err := j.add(gone); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, journalName))
	if got := strings.Fields(string(b)); len(got) != 2 || got[0] != live[0] || got[1] != live[1] {
		t.Fatalf("after compaction the journal lists %d names, want the 2 live ones", len(got))
	}
	if err := j.add([]string{name(3)}); err != nil { // appends after a compaction
		t.Fatal(err)
	}
	j.close()
	f, _ := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("../../etc/passwd\n" + name(4)[:20]) // junk, and a line cut by a crash
	f.Close()

	j, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	for _, n := range live {
		if _, err := os.Stat(filepath.Join(dir, "objects", n[:2], n)); !os.IsNotExist(err) {
			t.Errorf("%s survived the reopen", n)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, journalName)); len(b) != 0 {
		t.Errorf("journal not emptied at open: %q", b)
	}
}
