package property

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxFileSize bounds one property file; a larger one is refused unread.
const maxFileSize = 1 << 20

// LoadDir parses every *.yaml file of dir and builds a Table (see Build).
// It fails only when dir itself cannot be read: then the caller keeps the
// table it has.
func LoadDir(dir string, prev *Table, opts Options) (*Table, error) {
	files, err := LoadFiles(dir, prev)
	if err != nil {
		return nil, err
	}
	return Build(files, prev, opts), nil
}

// LoadFiles reads and parses every *.yaml file of dir, for Build; a file
// unchanged since prev was loaded keeps its *Property. It fails only when
// dir itself cannot be read.
func LoadFiles(dir string, prev *Table) ([]Loaded, error) {
	files, err := ListDir(dir)
	if err != nil {
		return nil, err
	}
	return loadFiles(files, prev, nil), nil
}

// LoadList is LoadFiles for the files ListDir returned.
func LoadList(files []string, prev *Table) []Loaded { return loadFiles(files, prev, nil) }

// LoadListSnapshot is LoadList at a start: a file whose stat is the one
// snap holds for it (see Snapshot) is taken from snap, neither read nor
// parsed. It also returns how many were. snap may be nil.
func LoadListSnapshot(files []string, snap *Snapshot) ([]Loaded, int) {
	loaded := loadFiles(files, nil, snap)
	n := 0
	if snap != nil {
		for _, l := range loaded {
			if l.Property != nil && l.fromSnapshot {
				n++
			}
		}
	}
	return loaded, n
}

// loadFiles reads and parses files on every CPU, in their order: reading
// and parsing took 4.7 s of a start with 100,000 files on one core.
func loadFiles(files []string, prev *Table, snap *Snapshot) []Loaded {
	loaded := make([]Loaded, len(files))
	workers := min(runtime.GOMAXPROCS(0), len(files)/64+1) // a small dir stays on one
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				loaded[i] = loadFile(files[i], prev, snap)
			}
		})
	}
	wg.Wait()
	return loaded
}

// ListDir returns the property files of dir, sorted: names ending in .yaml
// that do not start with a dot (editors' swap and backup files are skipped).
func ListDir(dir string) ([]string, error) {
	// Unsorted (os.ReadDir sorts its entries, then the paths were sorted
	// again: a tenth of a second each with 100,000 files).
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("properties_dir: %w", err)
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("properties_dir: %w", err)
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		n := e.Name()
		if !IsPropertyFile(n) || e.IsDir() {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	sort.Strings(out)
	return out, nil
}

// IsPropertyFile reports whether a file name is one LoadDir reads.
func IsPropertyFile(name string) bool {
	name = filepath.Base(name)
	return strings.HasSuffix(name, ".yaml") && !strings.HasPrefix(name, ".")
}

// LoadFile reads and parses one property file.
func LoadFile(path string) Loaded { return loadFile(path, nil, nil) }

// loadFile reads a property file; when its bytes are those of the version
// prev serves, that version is reused without parsing again (a reload of
// 10,000 files where one changed parses one). When the file's stat is the
// one it had when that version was read, and that read came well after
// the file's last change, it is not even read (see fileStat.same): a
// reload of 100,000 files where one changed reads one. A start takes
// such a file's version from snap instead.
func loadFile(path string, prev *Table, snap *Snapshot) Loaded {
	readAt := time.Now()
	if snap != nil {
		if p := snap.fromSnapshot(path, readAt); p != nil {
			return Loaded{File: path, Property: p, fromSnapshot: true}
		}
	}
	var old *Property
	if prev != nil {
		old = prev.byFile[path]
	}
	if old != nil {
		if st, err := os.Stat(path); err == nil && old.stat.same(statOf(st, readAt)) {
			return Loaded{File: path, Property: old}
		}
	}
	data, fs, err := readFile(path, readAt)
	if err != nil {
		return Loaded{File: path, Errors: []error{err}}
	}
	if old != nil && old.digest == digestOf(data) {
		if !old.stat.sameFile(fs) {
			// The same bytes, touched: a copy that knows the new stat, so
			// that the next reload need not read the file.
			cp := *old
			cp.stat = fs
			return Loaded{File: path, Property: &cp}
		}
		return Loaded{File: path, Property: old} // read too soon after its change to trust: read again next time
	}
	parses.Add(1)
	p, errs := Parse(path, data)
	if p != nil {
		p.stat = fs
	}
	return Loaded{File: path, Property: p, Errors: errs}
}

// parses counts the files loadFile parsed, for the tests.
var parses atomic.Int64

// readFile reads a property file and its stat with one open, one stat and
// one read (os.Stat then os.ReadFile made six system calls of a file: a
// start reads 100,000).
func readFile(path string, readAt time.Time) ([]byte, fileStat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileStat{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fileStat{}, err
	}
	if st.Size() > maxFileSize {
		return nil, fileStat{}, fmt.Errorf("%s is %d bytes; a property file may be at most %d", path, st.Size(), maxFileSize)
	}
	// A file that shrank since the stat reads short; one that grew is cut
	// at its stat's size. Either way its next stat differs, and the next
	// reload reads it again.
	data := make([]byte, st.Size())
	n, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fileStat{}, err
	}
	return data[:n], statOf(st, readAt), nil
}

// fileStat is what a file's stat said when its version was read: a reload
// that finds the same size, modification and change times and inode
// reuses the version without reading the file.
type fileStat struct {
	size, mtime, ctime int64 // times in Unix nanoseconds; ctime 0 where unknown
	ino                uint64
	readAt             int64 // when the stat was taken
}

// statSafety is how long after its last change a file must have been
// read for its stat to stand for its bytes: file times tick coarsely (a
// few milliseconds on Linux), so a file rewritten with the same size just
// after a read could keep the times the read saw.
const statSafety = time.Second

// same reports whether now, a stat taken now, shows the file unchanged
// since f was taken, so that its bytes need not be read.
func (f fileStat) same(now fileStat) bool {
	return f.readAt != 0 && f.sameFile(now) && f.readAt-max(f.mtime, f.ctime) > int64(statSafety)
}

// sameFile reports whether two stats agree, when each was taken aside.
func (f fileStat) sameFile(o fileStat) bool {
	return f.size == o.size && f.mtime == o.mtime && f.ctime == o.ctime && f.ino == o.ino
}
