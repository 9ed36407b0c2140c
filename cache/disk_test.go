package cache

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func diskEnv(t *testing.T, dir string, origin string) *env {
	return newEnv(t, Config{DiskSize: 64 << 20, Dir: dir}, fixed(origin, "Cache-Control", "max-age=3600", "Surrogate-Key", "k1"))
}

// waitDisk waits until the disk tier indexes n objects.
func waitDisk(t *testing.T, c *Cache, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c.Stats().Disk.Objects == n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("disk tier holds %d objects, want %d", c.Stats().Disk.Objects, n)
}

func objectFiles(t *testing.T, dir string) []string {
	files, err := filepath.Glob(filepath.Join(dir, "objects", "*", "*.obj"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestDiskSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := diskEnv(t, dir, "persisted")
	e.get("/d1")
	e.get("/d2")
	e.settle()
	waitDisk(t, e.c, 2)
	e.c.Close()

	e2 := diskEnv(t, dir, "from origin")
	waitDisk(t, e2.c, 2)
	for _, p := range []string{"/d1", "/d2"} {
		if resp, body := e2.get(p); body != "persisted" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "Edge; hit") {
			t.Fatalf("%s after restart: %q, %q", p, body, resp.Header.Get("Cache-Status"))
		}
	}
	e2.wantHits(0)
	// A purge after the restart reaches the disk objects too.
	if n, _ := e2.c.Purge(Purge{Tags: []string{"k1"}}); n.Purged != 2 {
		t.Errorf("purged %d, want 2", n.Purged)
	}
	waitFiles(t, dir, 0)
}

func waitFiles(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(objectFiles(t, dir)) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d object files, want %d", len(objectFiles(t, dir)), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDiskTornAndCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	e := diskEnv(t, dir, "whole")
	e.get("/torn")
	e.get("/corrupt")
	e.get("/fine")
	e.settle()
	waitDisk(t, e.c, 3)
	e.c.Close()
	files := objectFiles(t, dir)
	byKey := map[string]string{}
	for _, f := range files {
		o, err := readObject(f, false)
		if err != nil {
			t.Fatal(err)
		}
		byKey[o.Key[strings.LastIndexByte(o.Key, 0)+1:]] = f
	}
	// A crash mid-write leaves a temporary file and a file cut short.
	os.WriteFile(filepath.Join(dir, "tmp", "w-123"), []byte("partial"), 0o600)
	b, _ := os.ReadFile(byKey["/torn"])
	os.WriteFile(byKey["/torn"], b[:len(b)-2], 0o600)
	// A flipped bit in a body is found when it is read.
	b, _ = os.ReadFile(byKey["/corrupt"])
	b[len(b)-1] ^= 0xff
	os.WriteFile(byKey["/corrupt"], b, 0o600)
	// And junk in the directory.
	os.WriteFile(filepath.Join(dir, "objects", "00", "junk.obj"), []byte("EDGECO01 not really"), 0o600)

	e2 := diskEnv(t, dir, "origin")
	waitDisk(t, e2.c, 2) // the torn one was dropped at start
	if _, err := os.Stat(filepath.Join(dir, "tmp", "w-123")); !os.IsNotExist(err) {
		t.Error("temporary file survived the start")
	}
	if _, body := e2.get("/torn"); body != "origin" {
		t.Errorf("torn: got %q", body)
	}
	if _, body := e2.get("/corrupt"); body != "origin" {
		t.Errorf("corrupt: got %q, want it fetched again", body)
	}
	if _, body := e2.get("/fine"); body != "whole" {
		t.Errorf("fine: got %q", body)
	}
	e2.wantHits(2)
}

func TestDiskIsBoundedByBytes(t *testing.T) {
	dir := t.TempDir()
	body := strings.Repeat("x", 40<<10) // within the object bound of 1 MiB of memory (64 KiB)
	e := newEnv(t, Config{MemorySize: 1 << 20, DiskSize: 2 << 20, Dir: dir}, fixed(body, "Cache-Control", "max-age=3600"))
	for i := range 60 {
		e.get("/o" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	e.settle()
	time.Sleep(100 * time.Millisecond)
	e.c.Close()
	var total int64
	for _, f := range objectFiles(t, dir) {
		st, _ := os.Stat(f)
		total += st.Size()
	}
	if total > 2<<20+200<<10 {
		t.Errorf("disk holds %d bytes, bound 2 MiB", total)
	}
	if total == 0 {
		t.Error("nothing on disk")
	}
}

func TestDiskUnwritableStillServes(t *testing.T) {
	// A file where the tier's tmp directory should be fails every write,
	// even for root, as a full or read-only disk would.
	dir := t.TempDir()
	e := diskEnv(t, dir, "served")
	os.RemoveAll(filepath.Join(dir, "tmp"))
	os.WriteFile(filepath.Join(dir, "tmp"), []byte("not a directory"), 0o600)
	for range 2 {
		if _, body := e.get("/ro"); body != "served" {
			t.Fatalf("got %q", body)
		}
		e.settle()
	}
	e.wantHits(1) // the memory tier still holds it
	deadline := time.Now().Add(5 * time.Second)
	for e.c.Stats().DiskError == "" && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if e.c.Stats().DiskError == "" {
		t.Error("Stats does not report the failing disk tier")
	}
}

func TestDiskVariantsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	origin := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Vary", "Accept-Encoding")
		fmt.Fprint(w, "enc:"+r.Header.Get("Accept-Encoding"))
	}
	e := newEnv(t, Config{DiskSize: 1 << 20, Dir: dir}, origin)
	e.get("/v", "Accept-Encoding", "gzip")
	e.settle()
	e.get("/v", "Accept-Encoding", "br")
	e.settle()
	waitDisk(t, e.c, 3) // the marker and two variants
	e.c.Close()
	e2 := newEnv(t, Config{DiskSize: 1 << 20, Dir: dir}, origin)
	for _, enc := range []string{"gzip", "br"} {
		if _, body := e2.get("/v", "Accept-Encoding", enc); body != "enc:"+enc {
			t.Errorf("%s: got %q", enc, body)
		}
	}
	e2.wantHits(0)
}

// TestDiskOldKeyFormatDroppedAtStart: an object stored under the key
// format before the scheme joined the key (property \x00 host \x00 path)
// is removed at start, never indexed or served under the new format.
func TestDiskOldKeyFormatDroppedAtStart(t *testing.T) {
	dir := t.TempDir()
	e := diskEnv(t, dir, "current")
	e.get("/d1")
	e.settle()
	waitDisk(t, e.c, 1)
	key := "site\x00http\x00site.test\x00/d1"
	o := e.c.disk.get(key)
	if o == nil {
		t.Fatalf("no disk object at %q", key)
	}
	old := &object{Key: "site\x00site.test\x00/d2", Status: o.Status, Header: o.Header, RequestTime: o.RequestTime,
		ResponseTime: o.ResponseTime, Date: o.Date, Lifetime: o.Lifetime, body: o.body}
	if _, _, err := e.c.disk.write(idOf(old.Key), old); err != nil {
		t.Fatal(err)
	}
	e.c.Close()
	if n := len(objectFiles(t, dir)); n != 2 {
		t.Fatalf("%d object files before the restart, want 2", n)
	}

	e2 := diskEnv(t, dir, "from origin")
	waitDisk(t, e2.c, 1)
	if n := len(objectFiles(t, dir)); n != 1 {
		t.Errorf("%d object files after the restart, want 1 (the old-format one removed)", n)
	}
	if _, body := e2.get("/d1"); body != "current" {
		t.Errorf("current-format object after restart: %q", body)
	}
	e2.wantHits(0)
}

// TestPurgeSurvivesCrashBeforeUnlink: a purge returns once its removals
// from the disk tier are recorded; a crash before the writer unlinks the
// file (simulated by putting the file back after closing) does not bring
// the purged object back at the next start.
func TestPurgeSurvivesCrashBeforeUnlink(t *testing.T) {
	dir := t.TempDir()
	e := diskEnv(t, dir, "old")
	e.get("/c")
	e.get("/kept")
	e.settle()
	waitDisk(t, e.c, 2)
	saved := map[string]string{}
	for i, f := range objectFiles(t, dir) {
		keep := filepath.Join(dir, fmt.Sprintf("saved-%d", i))
		if err := os.Link(f, keep); err != nil {
			t.Fatal(err)
		}
		saved[f] = keep
	}
	if res, err := e.c.Purge(Purge{URLs: []string{"http://site.test/c"}}); err != nil || res.Purged != 1 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	e.c.Close()
	for f, keep := range saved { // the unlink never reached the disk
		if _, err := os.Stat(f); os.IsNotExist(err) {
			if err := os.Link(keep, f); err != nil {
				t.Fatal(err)
			}
		}
		os.Remove(keep)
	}
	if n := len(objectFiles(t, dir)); n != 2 {
		t.Fatalf("%d files before the restart, want both", n)
	}

	e2 := diskEnv(t, dir, "new")
	if _, body := e2.get("/c"); body != "new" {
		t.Errorf("purged object after a crash and restart: got %q, want it fetched again", body)
	}
	if _, body := e2.get("/kept"); body != "old" {
		t.Errorf("the object not purged: got %q", body)
	}
	e2.wantHits(1)
}

// TestDiskRemoveNeverWaitsForWriter: with the writer stuck (here behind
// the fence's lock, as it would be behind a slow fsync) and its queue full,
// removing an object and trashing a file return at once.
func TestDiskRemoveNeverWaitsForWriter(t *testing.T) {
	c, err := New(Config{DiskSize: 1 << 30, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.fence.mu.Lock()
	for i := range cap(c.disk.ops) + 10 {
		c.disk.put(&object{Key: fmt.Sprintf("site\x00site.test\x00/%d", i), body: []byte("x")})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 {
			c.remove(fmt.Sprintf("site\x00site.test\x00/%d", i))
			c.disk.trash(filepath.Join(c.disk.dir, "nothing-here"))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("remove blocked behind the disk writer")
	}
	c.fence.mu.Unlock()
	<-done
}

// TestDiskIndexIsCompact: the disk index holds a bounded part of each key
// (the whole key is in the file's head), so long URLs cost it no more than
// short ones; it logs the heap per indexed object.
func TestDiskIndexIsCompact(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	long := strings.Repeat("a", 8<<10)
	e := newEnv(t, Config{DiskSize: 1 << 30, Dir: dir}, fixed("x", "Cache-Control", "max-age=3600"))
	for i := range n {
		e.get(fmt.Sprintf("/%d?%s", i, long))
	}
	e.settle()
	waitDisk(t, e.c, n)
	e.c.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := New(Config{DiskSize: 1 << 30, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("disk index: %d bytes of heap per object with 8 KiB keys", per)
	if got := c.Stats().Disk.Objects; got != n {
		t.Fatalf("indexed %d objects, want %d", got, n)
	}
	if per > 2<<10 {
		t.Errorf("disk index holds %d bytes per object with 8 KiB keys, want under 2 KiB", per)
	}
	// And a purge still finds them by their whole key.
	if res, _ := c.Purge(Purge{URLs: []string{fmt.Sprintf("http://site.test/7?%s", long)}}); res.Purged != 1 {
		t.Errorf("URL purge of a long key purged %d", res.Purged)
	}
	if res, _ := c.Purge(Purge{Prefixes: []string{"http://site.test/1"}}); res.Purged != 111 {
		t.Errorf("prefix purge of long keys purged %d, want 111", res.Purged)
	}
}

// TestDiskTombstonesBoundedByQueue: removes of keys with no write queued
// (what unsafe requests to fresh URLs cause) leave no tombstone behind.
func TestDiskTombstonesBoundedByQueue(t *testing.T) {
	e := newEnv(t, Config{DiskSize: 1 << 20, Dir: t.TempDir()}, func(w http.ResponseWriter, r *http.Request) {})
	for i := range 10000 {
		e.c.disk.remove(fmt.Sprintf("site\x00http\x00site.test\x00/gone/%d", i))
	}
	e.c.disk.mu.Lock()
	n := len(e.c.disk.tombs)
	e.c.disk.mu.Unlock()
	if n != 0 {
		t.Errorf("%d tombstones for removes with no write queued, want 0", n)
	}
}
