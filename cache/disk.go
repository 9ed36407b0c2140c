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
	"sync"
	"sync/atomic"

	"github.com/maypok86/otter/v2"
	"go.uber.org/zap"
)

// The disk tier keeps one file per object under <dir>/objects/<xx>/, named
// <sha256(key)>-<sequence>.obj, written to <dir>/tmp first, fsync'd and
// renamed, so a crash leaves either the whole file or none. A file is
//
//	magic "EDGECO01" | head length u32 | body length u64 | crc32c(head) u32 | crc32c(body) u32 | pad u32
//	head (JSON of the object) | body
//
// At start the index is rebuilt from the heads alone: a file whose size is
// not header+head+body, whose head does not check, or that lost to a newer
// file of the same key is removed. A body is checked when it is read.
// The index is an otter cache weighed in KiB of file size, so eviction is
// the library's W-TinyLFU, not a hand-written list; an entry that leaves it
// has its file removed by the tier's writer goroutine.
type diskTier struct {
	c     *Cache
	dir   string
	index *otter.Cache[string, *diskEntry]
	seq   atomic.Uint64
	opSeq atomic.Uint64
	tombs sync.Map // key → seq of the latest remove not yet applied by the writer
	// lastErr is the error of the last write, "" after a success.
	lastErr atomic.Value
	ops     chan diskOp
	done    chan struct{}
	once    sync.Once
}

var _ tier = (*diskTier)(nil)

type diskEntry struct {
	path   string
	size   int64
	tags   []string
	stored int64
}

type diskOp struct {
	seq    uint64 // order of the request, to skip a put a later remove cancelled
	put    *object
	remove string // a key, removed again in order after the puts queued before
	trash  string
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
	d := &diskTier{c: c, dir: dir, ops: make(chan diskOp, 1024), done: make(chan struct{})}
	idx, err := otter.New(&otter.Options[string, *diskEntry]{
		MaximumWeight: uint64(max(size/1024, 1)),
		Weigher: func(_ string, e *diskEntry) uint32 {
			return uint32(min((e.size+1023)/1024, math.MaxUint32))
		},
		OnDeletion: func(e otter.DeletionEvent[string, *diskEntry]) {
			c.stats.removedSize(tierDisk, e.Key, e.Value.size, e.Cause == otter.CauseOverflow)
			d.trash(e.Value.path)
		},
		Executor: c.goExec,
	})
	if err != nil {
		return nil, err
	}
	d.index = idx
	d.rebuild()
	c.wg.Add(1)
	go d.writer()
	return d, nil
}

// trash queues a file for removal by the writer; after close it is removed
// here.
func (d *diskTier) trash(path string) {
	select {
	case d.ops <- diskOp{trash: path}:
	case <-d.done:
		os.Remove(path)
	}
}

func (d *diskTier) close() {
	d.once.Do(func() { close(d.done) })
}

// writer does the tier's writes and removals in order, until close.
func (d *diskTier) writer() {
	defer d.c.wg.Done()
	for {
		select {
		case op := <-d.ops:
			d.do(op)
		case <-d.done:
			for {
				select {
				case op := <-d.ops:
					if op.trash != "" {
						os.Remove(op.trash)
					}
				default:
					return
				}
			}
		}
	}
}

func (d *diskTier) do(op diskOp) {
	if op.trash != "" {
		if err := os.Remove(op.trash); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.c.problem("disk tier: cannot remove a file", zap.Error(err))
		}
		return
	}
	if op.remove != "" {
		d.index.Invalidate(op.remove)
		d.tombs.CompareAndDelete(op.remove, op.seq)
		return
	}
	o := op.put
	if s, ok := d.tombs.Load(o.Key); ok && s.(uint64) > op.seq {
		return // removed after it was queued
	}
	path, size, err := d.write(o)
	if err != nil {
		d.c.problem("disk tier: cannot write an object (disk full or read-only?)", zap.Error(err))
		d.lastErr.Store(err.Error())
		return
	}
	d.lastErr.Store("")
	d.index.Set(o.Key, &diskEntry{path: path, size: size, tags: o.Tags, stored: o.ResponseTime})
	d.c.stats.addedSize(tierDisk, o.Key, size)
}

// write puts o in a new file and returns its path and size.
func (d *diskTier) write(o *object) (string, int64, error) {
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
	sum := sha256.Sum256([]byte(o.Key))
	name := hex.EncodeToString(sum[:]) + "-" + strconv.FormatUint(d.seq.Add(1), 36) + strconv.FormatInt(o.ResponseTime, 36) + ".obj"
	final := filepath.Join(d.dir, "objects", name[:2], name)
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
	if err != nil {
		return "", 0, err
	}
	return final, int64(diskHeadLen + len(head) + len(o.body)), nil
}

// put queues o for writing; a full queue drops it (the disk tier is a
// copy of what memory holds, not the only one).
func (d *diskTier) put(o *object) {
	select {
	case d.ops <- diskOp{put: o, seq: d.opSeq.Add(1)}:
	default:
		d.c.problem("disk tier: write queue full, object not written")
	}
}

// remove drops key now, and again after the writes queued before it.
func (d *diskTier) remove(key string) {
	seq := d.opSeq.Add(1)
	d.tombs.Store(key, seq)
	d.index.Invalidate(key)
	select {
	case d.ops <- diskOp{remove: key, seq: seq}:
	case <-d.done:
	}
}

func (d *diskTier) each(fn func(key string, tags []string, stored int64) bool) {
	for k, e := range d.index.All() {
		if !fn(k, e.tags, e.stored) {
			return
		}
	}
}

func (d *diskTier) name() string { return "disk" }

// get reads key's file, checking both checksums; a bad file is dropped.
func (d *diskTier) get(key string) *object {
	if _, removing := d.tombs.Load(key); removing {
		return nil
	}
	e, ok := d.index.GetIfPresent(key)
	if !ok {
		return nil
	}
	o, err := readObject(e.path, true)
	if errors.Is(err, fs.ErrNotExist) {
		// The writer replaced the entry between the index lookup and the
		// open, and the old file went to the trash: the new entry stands.
		return nil
	}
	if err != nil || o.Key != key {
		d.c.problem("disk tier: dropping a corrupt object", zap.String("file", e.path), zap.Error(err))
		d.index.Invalidate(key)
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
	best := map[string]*diskEntry{}
	for _, path := range files {
		o, err := readObject(path, false)
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
		e := &diskEntry{path: path, size: st.Size(), tags: o.Tags, stored: o.ResponseTime}
		if old := best[o.Key]; old != nil {
			if old.stored >= e.stored {
				os.Remove(path)
				continue
			}
			os.Remove(old.path)
		}
		best[o.Key] = e
	}
	for k, e := range best {
		d.index.Set(k, e)
		d.c.stats.addedSize(tierDisk, k, e.size)
	}
}
