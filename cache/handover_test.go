package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSuspendDiskLeavesTheDirectoryAlone: while the disk tier is handed
// over (a binary upgrade's new process owns cache.dir), the cache writes,
// unlinks and journals nothing there and serves from memory; taken back,
// it unlinks what it dropped meanwhile and writes again.
func TestSuspendDiskLeavesTheDirectoryAlone(t *testing.T) {
	dir := t.TempDir()
	e := diskEnv(t, dir, "v1")
	e.get("/kept")
	e.get("/purged")
	e.settle()
	waitDisk(t, e.c, 2)
	before := objectFiles(t, dir)
	journal, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}

	if err := e.c.SuspendDisk(); err != nil {
		t.Fatal(err)
	}
	if _, body := e.get("/new"); body != "v1" {
		t.Fatalf("a miss while suspended: %q", body)
	}
	e.settle()
	if _, body := e.get("/new"); body != "v1" {
		t.Fatalf("from memory while suspended: %q", body)
	}
	if _, err := e.c.Purge(Purge{URLs: []string{"http://site.test/purged"}}); err == nil {
		t.Error("a purge while suspended says nothing of the journal it could not write")
	}
	e.settle()
	if got := objectFiles(t, dir); len(got) != len(before) {
		t.Fatalf("%d object files while suspended, want the %d there before: nothing written or unlinked", len(got), len(before))
	}
	if j, _ := os.ReadFile(filepath.Join(dir, journalName)); string(j) != string(journal) {
		t.Fatalf("the purge journal changed while suspended: %q", j)
	}
	if e.c.disk.read("site\x00http\x00site.test\x00/kept") != nil {
		t.Error("read a disk object while suspended")
	}

	if err := e.c.ResumeDisk(); err != nil {
		t.Fatal(err)
	}
	e.get("/after")
	e.settle()
	waitDisk(t, e.c, 2) // kept and after; purged unlinked
	purgedFile := func() bool {
		for _, f := range objectFiles(t, dir) {
			if o, err := readObject(f, false); err == nil && primaryOf(o.Key) == "site\x00http\x00site.test\x00/purged" {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(5 * time.Second); purgedFile(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the purged object's file is still there after the tier was taken back")
		}
	}
}
