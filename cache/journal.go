package cache

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sync"
)

// purgeJournal makes a purge of the disk tier durable before the purge
// returns: it lists, fsync'd, the files the purge took out of the index,
// which the tier's writer unlinks later. A crash in between leaves files
// that the next start would index again (a purged object, served); the
// next start unlinks every file the journal lists before it indexes. Fleet
// purges are also replayed from the store at start; this covers a single
// node, and the purges a fleet node made while the store was away.
//
// The journal is one file, <dir>/purged, a file name a line. It is emptied
// at start once its files are gone, and rewritten without the files
// already unlinked when it passes journalCompactAt bytes.
type purgeJournal struct {
	mu   sync.Mutex
	dir  string
	f    *os.File
	size int64
}

const (
	journalName      = "purged"
	journalCompactAt = 1 << 20
)

var objectName = regexp.MustCompile(`^[0-9a-f]{64}-[0-9a-z]+\.obj$`)

// openJournal unlinks the files the journal lists (a previous run purged
// them) and starts it empty.
func openJournal(dir string) (*purgeJournal, error) {
	path := filepath.Join(dir, journalName)
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	dirs := map[string]bool{}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		name := string(line)
		if !objectName.MatchString(name) {
			continue // a line cut by a crash, or junk
		}
		sub := filepath.Join(dir, "objects", name[:2])
		if err := os.Remove(filepath.Join(sub, name)); err == nil {
			dirs[sub] = true
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return &purgeJournal{dir: dir, f: f}, nil
}

// add records names and returns once they are on disk.
func (j *purgeJournal) add(names []string) error {
	if len(names) == 0 {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("disk tier closed")
	}
	var buf bytes.Buffer
	for _, n := range names {
		buf.WriteString(n)
		buf.WriteByte('\n')
	}
	n, err := j.f.Write(buf.Bytes())
	j.size += int64(n)
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		return err
	}
	if j.size > journalCompactAt {
		return j.compact()
	}
	return nil
}

// compact rewrites the journal with the files not unlinked yet; j.mu is
// held.
func (j *purgeJournal) compact() error {
	path := filepath.Join(j.dir, journalName)
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(j.dir, "tmp"), "j-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	var size int64
	gone := map[string]bool{} // directories of unlinked files: synced before they leave the journal
	for line := range bytes.SplitSeq(old, []byte{'\n'}) {
		name := string(line)
		if !objectName.MatchString(name) {
			continue
		}
		sub := filepath.Join(j.dir, "objects", name[:2])
		if _, err := os.Stat(filepath.Join(sub, name)); err == nil {
			w.WriteString(name + "\n")
			size += int64(len(name)) + 1
		} else {
			gone[sub] = true
		}
	}
	for d := range gone {
		if err := syncDir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			tmp.Close()
			return err
		}
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		tmp.Close()
		return err
	}
	j.f.Close()
	j.f, j.size = tmp, size
	return nil
}

func (j *purgeJournal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// syncDir makes the entries of a directory (a rename, an unlink) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
