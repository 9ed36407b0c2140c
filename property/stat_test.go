package property

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileStatSame: a reload trusts a file's stat for its bytes only when
// size, times and inode match and the earlier read came well after the
// file's last change.
func TestFileStatSame(t *testing.T) {
	changed := time.Now().Add(-time.Hour).UnixNano()
	old := fileStat{size: 10, mtime: changed, ctime: changed, ino: 7, readAt: changed + int64(2*time.Second)}
	now := old
	now.readAt = time.Now().UnixNano()
	if !old.same(now) {
		t.Error("an unchanged file read long after its change is not trusted")
	}
	for name, f := range map[string]func(*fileStat){
		"size":  func(s *fileStat) { s.size++ },
		"mtime": func(s *fileStat) { s.mtime++ },
		"ctime": func(s *fileStat) { s.ctime++ },
		"inode": func(s *fileStat) { s.ino++ },
	} {
		n := now
		f(&n)
		if old.same(n) {
			t.Errorf("a different %s is trusted", name)
		}
	}
	racy := old
	racy.readAt = changed + int64(5*time.Millisecond)
	if racy.same(now) {
		t.Error("a read within the file's time tick of its change is trusted")
	}
	if (fileStat{}).same(fileStat{}) {
		t.Error("a version not read from a file is trusted")
	}
}

// TestSameSizeRewriteRightAfterLoadIsSeen: a file rewritten with bytes of
// the same size right after a load (its times may not have ticked) is read
// again by the next reload, not taken for the version loaded.
func TestSameSizeRewriteRightAfterLoadIsSeen(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.yaml")
	write := func(origin string) {
		if err := os.WriteFile(f, []byte("hostnames: [a.example]\norigins: [{url: "+origin+"}]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("http://127.0.0.1:1")
	t1, err := LoadDir(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	write("http://127.0.0.1:2")
	t2, err := LoadDir(dir, t1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := t2.ByName("a").Origins[0].URL.Port(); got != "2" {
		t.Errorf("after a same-size rewrite, origin port %s, want 2", got)
	}
}

// TestUnchangedFileNotReadAgain: a reload reuses the version of a file
// whose stat is unchanged since a read made well after its last change,
// without reading it: bytes changed behind an unchanged stat (forged
// here) are not seen.
func TestUnchangedFileNotReadAgain(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(f, []byte("hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t1, err := LoadDir(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := t1.ByName("a")
	p.stat.readAt += int64(2 * statSafety) // as if read long after its change
	// Same size, different bytes, and the stat restored: only a read
	// would see the change.
	st, _ := os.Stat(f)
	if err := os.WriteFile(f, []byte("hostnames: [a.example]\norigins: [{url: http://127.0.0.1:2}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	now, _ := os.Stat(f)
	p.stat.ctime = statOf(now, time.Now()).ctime // Chtimes moved ctime
	t2, err := LoadDir(dir, t1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if t2.ByName("a") != p {
		t.Error("a file with an unchanged stat was read and parsed again")
	}
}
