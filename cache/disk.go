package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// The disk tier keeps one file per object under <dir>/objects/<xx>/, named
// <sha256(key)>-<sequence>.obj, written to <dir>/tmp first, fsync'd,
// renamed, and its directory fsync'd, so a crash leaves either the whole
// file or none. A file is
//
//	magic "EDGECO01" | head length u32 | body length u64 | crc32c(head) u32 | crc32c(body) u32 | pad u32
//	head (JSON of the object) | body
//
// At start the files a purge journaled are unlinked (journal.go), then the
// index is rebuilt from the heads alone: a file whose size is not
// header+head+body, whose head does not check, or that lost to a newer file
// of the same key is removed. A body is checked when it is read.
//
// The index is an otter cache weighed in KiB of file size, so eviction is
// the library's W-TinyLFU, not a hand-written list; an entry that leaves it
// has its file removed by the tier's writer goroutine. It is keyed by the
// SHA-256 of the key and holds at most indexedKey bytes of the key (the
// whole key is in the file's head), so that long URLs cost the index no
// more than short ones.
//
// Nothing here makes a request goroutine wait for the disk but a read of
// the object it asked for (collapsed with concurrent reads of the same
// key): a put is queued (dropped when the queue is full), a remove takes
// the entry out of the index and queues the file for the writer.
type diskTier struct {
	c       *Cache
	dir     string
	index   *otter.Cache[diskID, *diskEntry]
	seq     atomic.Uint64 // file names
	reads   singleflight.Group
	journal *purgeJournal
	// lastErr is the error of the last write, "" after a success.
	lastErr atomic.Value

	mu    sync.Mutex // orders puts and removes; held to index a written file
	opSeq uint64
	tombs map[diskID]uint64 // key → seq of its last remove, while puts of the key are queued
	// pending counts the queued puts of each key: a remove leaves a
	// tombstone only for a key with one, so tombstones are bounded by the
	// queue whatever removes clients cause.
	pending map[diskID]int
	ops     chan diskOp // puts

	trashMu     sync.Mutex
	trashed     []string // files to unlink
	trashClosed bool     // the writer is gone: unlink on the spot
	wake        chan struct{}

	done chan struct{}
	once sync.Once

	// The hand-over of the directory to another process (handover.go).
	suspended atomic.Bool
	pause     chan chan struct{} // asks the writer to stop; it closes the channel it gets when it has
	resume    chan struct{}
}

var _ tier = (*diskTier)(nil)

// diskID is the SHA-256 of a key; its hex names the object's file.
type diskID [sha256.Size]byte

func idOf(key string) diskID { return sha256.Sum256([]byte(key)) }

// indexedKey is how much of a key the index keeps; a longer key is read
// from the file's head when a purge must match it.
const indexedKey = 256

type diskEntry struct {
	key    string // the key, or its first indexedKey bytes when long
	long   bool
	suffix string // of the file name, after "<hex id>-"
	size   int64
	stored int64 // contentTime of the object
	tags   []string
}

// name is the entry's file name.
func (e *diskEntry) name(id diskID) string { return hex.EncodeToString(id[:]) + "-" + e.suffix }

func (d *diskTier) path(name string) string { return filepath.Join(d.dir, "objects", name[:2], name) }

func newEntry(key string, suffix string, size int64, tags []string, stored int64) *diskEntry {
	e := &diskEntry{key: key, suffix: suffix, size: size, tags: tags, stored: stored}
	if len(key) > indexedKey {
		e.key, e.long = strings.Clone(key[:indexedKey]), true
	}
	return e
}

type diskOp struct {
	seq   uint64 // order of the request, to skip a put a later remove cancelled
	fence uint64 // the last purge begun when it was queued
	put   *object
}

const (
	diskMagic   = "EDGECO01"
	diskHeadLen = 32
	maxHeadLen  = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func openDisk(c *Cache, dir string, size int64) (*diskTier, error) {
	for _, d := range []string{filepath.Join(dir, "objects"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	tmp, _ := filepath.Glob(filepath.Join(dir, "tmp", "*"))
	for _, f := range tmp {
		os.Remove(f) // writes cut short by a crash
	}
	d := &diskTier{c: c, dir: dir, ops: make(chan diskOp, 1024), done: make(chan struct{}),
		tombs: map[diskID]uint64{}, pending: map[diskID]int{}, wake: make(chan struct{}, 1),
		pause: make(chan chan struct{}), resume: make(chan struct{}, 1)}
	var err error
	if d.journal, err = openJournal(dir); err != nil {
		return nil, fmt.Errorf("purge journal: %w", err)
	}
	idx, err := otter.New(&otter.Options[diskID, *diskEntry]{
		MaximumWeight: uint64(max(size/1024, 1)),
		Weigher: func(_ diskID, e *diskEntry) uint32 {
			return uint32(min((e.size+1023)/1024, math.MaxUint32))
		},
		OnDeletion: func(e otter.DeletionEvent[diskID, *diskEntry]) {
			c.stats.removedSize(tierDisk, e.Value.key, e.Value.size, e.Cause == otter.CauseOverflow)
			d.trash(d.path(e.Value.name(e.Key)))
		},
		Executor: c.goExec,
	})
	if err != nil {
		d.journal.close()
		return nil, err
	}
	d.index = idx
	d.rebuild()
	c.wg.Add(1)
	go d.writer()
	return d, nil
}

// trash queues a file for the writer to unlink; it never waits.
func (d *diskTier) trash(path string) {
	d.trashMu.Lock()
	if d.trashClosed {
		d.trashMu.Unlock()
		if !d.suspended.Load() { // else: the directory is another process's now
			os.Remove(path)
		}
		return
	}
	d.trashed = append(d.trashed, path)
	d.trashMu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *diskTier) close() {
	d.once.Do(func() { close(d.done) })
}

// writer does the tier's writes and unlinks, until close.
func (d *diskTier) writer() {
	defer d.c.wg.Done()
	defer d.journal.close()
	for {
		select {
		case op := <-d.ops:
			d.do(op)
		case <-d.wake:
		case ack := <-d.pause:
			if !d.paused(ack) {
				return
			}
		case <-d.done:
			d.trashMu.Lock()
			d.trashClosed = true // later deletions unlink on their own goroutine
			d.trashMu.Unlock()
			d.emptyTrash()
			return
		}
		d.emptyTrash()
		d.forgetTombs()
	}
}

// emptyTrash unlinks the files queued for it.
func (d *diskTier) emptyTrash() {
	d.trashMu.Lock()
	files := d.trashed
	d.trashed = nil
	d.trashMu.Unlock()
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.c.problem("disk tier: cannot remove a file", zap.Error(err))
		}
	}
}

// forgetTombs drops the removes' tombstones once no put queued before them
// is left.
func (d *diskTier) forgetTombs() {
	d.mu.Lock()
	if len(d.ops) == 0 && len(d.tombs) > 0 {
		clear(d.tombs)
	}
	d.mu.Unlock()
}

// dequeued ends the queued put of id: the key's tombstone goes with its
// last one.
func (d *diskTier) dequeued(id diskID) {
	d.mu.Lock()
	if d.pending[id]--; d.pending[id] <= 0 {
		delete(d.pending, id)
		delete(d.tombs, id)
	}
	d.mu.Unlock()
}

func (d *diskTier) do(op diskOp) {
	o := op.put
	id := idOf(o.Key)
	defer d.dequeued(id)
	d.mu.Lock()
	cancelled := d.tombs[id] > op.seq
	d.mu.Unlock()
	if cancelled {
		return // removed after it was queued
	}
	name, size, err := d.write(id, o)
	if err != nil {
		d.c.problem("disk tier: cannot write an object (disk full or read-only?)", zap.Error(err))
		d.lastErr.Store(err.Error())
		return
	}
	d.lastErr.Store("")
	// Indexed only if no remove or purge came after the put was queued;
	// under the fence's read lock, so a purge that begins later finds it.
	f := &d.c.fence
	f.mu.RLock()
	d.mu.Lock()
	keep := d.tombs[id] <= op.seq && !f.covers(o, op.fence)
	if keep {
		d.index.Set(id, newEntry(o.Key, name[2*sha256.Size+1:], size, o.Tags, contentTime(o)))
	}
	d.mu.Unlock()
	f.mu.RUnlock()
	if !keep {
		os.Remove(d.path(name))
		return
	}
	d.c.stats.addedSize(tierDisk, o.Key, size)
}

// write puts o in a new file and returns its name and size.
func (d *diskTier) write(id diskID, o *object) (string, int64, error) {
	head, err := json.Marshal(o)
	if err != nil {
		return "", 0, err
	}
	if len(head) > maxHeadLen {
		return "", 0, fmt.Errorf("head of %d bytes", len(head))
	}
	var hdr [diskHeadLen]byte
	copy(hdr[:8], diskMagic)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(head)))
	binary.LittleEndian.PutUint64(hdr[12:], uint64(len(o.body)))
	binary.LittleEndian.PutUint32(hdr[20:], crc32.Checksum(head, crcTable))
	binary.LittleEndian.PutUint32(hdr[24:], crc32.Checksum(o.body, crcTable))
	name := hex.EncodeToString(id[:]) + "-" + strconv.FormatUint(d.seq.Add(1), 36) + strconv.FormatInt(o.ResponseTime, 36) + ".obj"
	final := d.path(name)
	tmp, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), "w-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(hdr[:])
	if err == nil {
		_, err = tmp.Write(head)
	}
	if err == nil {
		_, err = tmp.Write(o.body)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(final), 0o700)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err == nil {
		err = syncDir(filepath.Dir(final))
	}
	if err != nil {
		return "", 0, err
	}
	return name, int64(diskHeadLen + len(head) + len(o.body)), nil
}

// put queues o for writing; a full queue drops it (the disk tier is a
// copy of what memory holds, not the only one). The caller holds the
// fence's read lock.
func (d *diskTier) put(o *object) {
	if d.suspended.Load() {
		return // handed over to another process
	}
	d.mu.Lock()
	select {
	case d.ops <- diskOp{put: o, seq: d.opSeq + 1, fence: d.c.fence.started}:
		d.opSeq++
		d.pending[idOf(o.Key)]++
	default:
		d.c.problem("disk tier: write queue full, object not written")
	}
	d.mu.Unlock()
}

// remove drops key from the index (its file goes to the writer's trash)
// and cancels the puts of key still queued.
func (d *diskTier) remove(key string) { d.removeOlder(key, math.MaxInt64) }

// removeOlder is remove for an object fetched before bn; it returns the
// name of the file it dropped, "" if none.
func (d *diskTier) removeOlder(key string, bn int64) string {
	id := idOf(key)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opSeq++
	if d.pending[id] > 0 {
		d.tombs[id] = d.opSeq // cancels the puts queued before it
	}
	e, ok := d.index.GetEntryQuietly(id)
	if !ok || e.Value.stored >= bn {
		return ""
	}
	d.index.Invalidate(id)
	return e.Value.name(id)
}

// each gives every indexed key; a long key is read from its file's head.
func (d *diskTier) each(fn func(key string, tags []string, stored int64) bool) {
	for id, e := range d.index.All() {
		key := e.key
		if e.long {
			o, err := readObject(d.path(e.name(id)), false)
			if err != nil {
				continue // replaced or removed meanwhile
			}
			key = o.Key
		}
		if !fn(key, e.tags, e.stored) {
			return
		}
	}
}

func (d *diskTier) name() string { return "disk" }

// get reads key's file, checking both checksums; a bad file is dropped.
func (d *diskTier) get(key string) *object {
	o, _ := d.getShared(key, 0)
	return o
}

// getShared is get with concurrent reads of one key sharing one read: it
// returns the fence snapshot of the read that was made, since for this
// caller's own, for the fence check of the caller (a read shared with one
// that started earlier is as old as that one).
func (d *diskTier) getShared(key string, since uint64) (*object, uint64) {
	type read struct {
		o     *object
		since uint64
	}
	v, _, _ := d.reads.Do(key, func() (any, error) { return read{d.read(key), since}, nil })
	r := v.(read)
	return r.o, min(since, r.since)
}

func (d *diskTier) read(key string) *object {
	if d.suspended.Load() {
		return nil // handed over to another process
	}
	id := idOf(key)
	e, ok := d.index.GetIfPresent(id)
	if !ok {
		return nil
	}
	path := d.path(e.name(id))
	o, err := readObject(path, true)
	if errors.Is(err, fs.ErrNotExist) {
		// The writer replaced the entry between the index lookup and the
		// open, and the old file went to the trash: the new entry stands.
		return nil
	}
	if err != nil || o.Key != key {
		d.c.problem("disk tier: dropping a corrupt object", zap.String("file", path), zap.Error(err))
		d.index.Invalidate(id)
		return nil
	}
	return o.seal()
}

// readObject reads a file's head and, with body, its body.
func readObject(path string, body bool) (*object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hdr [diskHeadLen]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if string(hdr[:8]) != diskMagic {
		return nil, errors.New("not an object file")
	}
	hl := binary.LittleEndian.Uint32(hdr[8:])
	bl := binary.LittleEndian.Uint64(hdr[12:])
	if hl > maxHeadLen {
		return nil, errors.New("head too long")
	}
	if st, err := f.Stat(); err != nil || st.Size() != int64(diskHeadLen)+int64(hl)+int64(bl) {
		return nil, errors.New("truncated or padded file")
	}
	head := make([]byte, hl)
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, err
	}
	if crc32.Checksum(head, crcTable) != binary.LittleEndian.Uint32(hdr[20:]) {
		return nil, errors.New("head checksum mismatch")
	}
	o := &object{}
	if err := json.Unmarshal(head, o); err != nil {
		return nil, err
	}
	if body {
		o.body = make([]byte, bl)
		if _, err := io.ReadFull(f, o.body); err != nil {
			return nil, err
		}
		if crc32.Checksum(o.body, crcTable) != binary.LittleEndian.Uint32(hdr[24:]) {
			return nil, errors.New("body checksum mismatch")
		}
	}
	return o, nil
}

// rebuild indexes the files found at start from their heads.
func (d *diskTier) rebuild() {
	files, _ := filepath.Glob(filepath.Join(d.dir, "objects", "*", "*.obj"))
	type found struct {
		path string
		e    *diskEntry
	}
	best := map[diskID]found{}
	for _, path := range files {
		base := filepath.Base(path)
		o, err := readObject(path, false)
		if err == nil && !objectName.MatchString(base) {
			err = errors.New("not an object file name")
		}
		if err != nil {
			d.c.problem("disk tier: removing a corrupt or truncated file at start", zap.String("file", path), zap.Error(err))
			os.Remove(path)
			continue
		}
		if !currentKey(o.Key) {
			os.Remove(path) // stored under an older key format: never served under the new one
			continue
		}
		st, err := os.Stat(path)
		if err != nil {
			continue
		}
		id := idOf(o.Key)
		if hex.EncodeToString(id[:]) != base[:2*sha256.Size] || filepath.Base(filepath.Dir(path)) != base[:2] {
			d.c.problem("disk tier: removing a file not named after its key at start", zap.String("file", path))
			os.Remove(path)
			continue
		}
		e := newEntry(o.Key, base[2*sha256.Size+1:], st.Size(), o.Tags, contentTime(o))
		if old, ok := best[id]; ok {
			if old.e.stored >= e.stored {
				os.Remove(path)
				continue
			}
			os.Remove(old.path)
		}
		best[id] = found{path, e}
	}
	for id, f := range best {
		d.index.Set(id, f.e)
		d.c.stats.addedSize(tierDisk, f.e.key, f.e.size)
	}
}
