package node

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// exeRss is the resident KiB of this process's mappings of its own
// executable, by permissions ("r-xp": code, "r--p": read-only data,
// "rw-p": the data segment).
func exeRss(t *testing.T) map[string]int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	ino := strconv.FormatUint(st.Ino, 10)
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rss := map[string]int{}
	perms := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			perms = ""
			if fields[4] == ino {
				perms = fields[1]
			}
		case perms != "" && len(fields) == 3 && fields[0] == "Rss:":
			kb, _ := strconv.Atoi(fields[1])
			rss[perms] += kb
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rss
}

// TestReleaseBinaryPagesLowersResidentCode: the executable's code and
// read-only data leave the resident set; what runs next comes back.
func TestReleaseBinaryPagesLowersResidentCode(t *testing.T) {
	// All of it resident first (MADV_POPULATE_READ, Linux 5.14), as after
	// a start, whatever this process ran or released before.
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	spans, err := readOnlyFileSpans(smaps, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	smaps.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range spans {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s[0], s[1]-s[0], unix.MADV_POPULATE_READ); e != 0 {
			t.Skipf("MADV_POPULATE_READ: %v", e)
		}
	}
	before := exeRss(t)
	start := time.Now()
	if err := releaseBinaryPages(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	after := exeRss(t)
	t.Logf("resident KiB before %v, after %v; the release took %v", before, after, took)
	for _, p := range []string{"r-xp", "r--p"} {
		if before[p] < 1024 || after[p] > before[p]/2 {
			t.Errorf("%s: %d KiB resident after the release, %d before", p, after[p], before[p])
		}
	}
}

// canary is in the executable's data segment (initialised, no pointers):
// a writable, file-backed mapping whose pages this process changed.
var canary = [4]uint64{1, 2, 3, 4}

// TestReleaseBinaryPagesKeepsWrittenData: the data segment is left
// alone. Dropping its pages would bring back the file's contents: here
// the canary's first value, for the runtime its state.
func TestReleaseBinaryPagesKeepsWrittenData(t *testing.T) {
	canary[0] = 42
	dataBefore := exeRss(t)["rw-p"]
	if err := releaseBinaryPages(); err != nil {
		t.Fatal(err)
	}
	if canary[0] != 42 {
		t.Fatalf("canary is %d after the release: the data segment was dropped", canary[0])
	}
	if after := exeRss(t)["rw-p"]; after < dataBefore {
		t.Errorf("data segment: %d KiB resident after the release, %d before", after, dataBefore)
	}
	// The process still runs what it had not run since.
	if s := fmt.Sprintf("%x", canary); s != "[2a 2 3 4]" {
		t.Errorf("canary prints as %s", s)
	}
}

// TestReadOnlyPrivate: only readable, unwritable, private mappings qualify.
func TestReadOnlyPrivate(t *testing.T) {
	for perms, want := range map[string]bool{
		"r-xp": true, "r--p": true,
		"rw-p": false, "rwxp": false, "r--s": false, "r-xs": false, "---p": false, "": false, "r-x": false,
	} {
		if got := readOnlyPrivate(perms); got != want {
			t.Errorf("readOnlyPrivate(%q) = %v, want %v", perms, got, want)
		}
	}
}

// TestReadOnlyFileSpansSkipsPrivateCopies: of a file's read-only private
// mappings, one holding private copies of its pages (what a debugger's
// breakpoint or a uprobe leaves in the code) is not released; a clean
// one is, and releasing it keeps what it reads.
func TestReadOnlyFileSpansSkipsPrivateCopies(t *testing.T) {
	const size = 64 << 10
	path := filepath.Join(t.TempDir(), "f")
	content := make([]byte, size)
	for i := range content {
		content[i] = 'a'
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	clean, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(clean)
	patched, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(patched)
	_ = clean[0]
	patched[0] = 'B' // a private copy, as a breakpoint's
	if err := unix.Mprotect(patched, unix.PROT_READ); err != nil {
		t.Fatal(err)
	}
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer smaps.Close()
	spans, err := readOnlyFileSpans(smaps, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	if err != nil {
		t.Fatal(err)
	}
	cleanAt := uintptr(unsafe.Pointer(&clean[0]))
	patchedAt := uintptr(unsafe.Pointer(&patched[0]))
	var sawClean bool
	for _, s := range spans {
		switch s[0] {
		case cleanAt:
			sawClean = true
		case patchedAt:
			t.Errorf("the mapping with a private copy would be released")
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s[0], s[1]-s[0], unix.MADV_DONTNEED); e != 0 {
			t.Fatal(e)
		}
	}
	if !sawClean {
		t.Errorf("the clean mapping at %#x is not among %#x", cleanAt, spans)
	}
	if clean[0] != 'a' || patched[0] != 'B' {
		t.Errorf("after the release: clean reads %q, patched %q", clean[0], patched[0])
	}
}
