package property

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// A snapshot is the compiled property table of a properties_dir, written
// next to the node's data after a load, so that the next start of the same
// binary takes every file whose stat is unchanged from it instead of
// reading and parsing it again (YAML parsing was 1.7 s of a start with
// 100,000 files).
//
// The file holds a header (format version, the binary's build, the
// properties_dir), one entry per file (its path, the stat its version was
// read with, the property encoded), and the SHA-256 of all that: a
// truncated, corrupt or foreign file is refused whole (ReadSnapshot).
// An entry stands for its file only when the file's stat now is the one it
// was read with and that read came well after the file's last change
// (fileStat.same, the rule reload uses). Only properties that depend on
// nothing but their file's bytes are written: a rejected file, or one
// whose origins name a CA file or a directory (their checks read other
// files), is read and parsed at every start.

const (
	snapshotMagic   = "EDGEPSNP"
	snapshotVersion = 1
)

// SnapshotID is what a snapshot must have been written for to be trusted:
// the binary's build (a different parser may read the same bytes
// differently) and the properties_dir.
type SnapshotID struct {
	Build string // BuildID(); "" refuses every snapshot
	Dir   string
}

// Snapshot is a snapshot file read by ReadSnapshot: the encoded properties
// by file, decoded when a load takes them.
type Snapshot struct {
	entries map[string]snapEntry
}

type snapEntry struct {
	stat fileStat
	data []byte // the encoded property
}

// Len is the number of files the snapshot holds.
func (s *Snapshot) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// BuildID identifies the running binary: the Go build ID from the
// executable (it changes with any change of the code or the toolchain);
// where that cannot be read, the VCS revision of a clean build; else the
// executable's size and modification time. "" when none is known.
var BuildID = sync.OnceValue(buildID)

func buildID() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if id := goBuildID(exe); id != "" {
		return "go:" + id
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev string
		modified := true
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value != "false"
			}
		}
		if rev != "" && !modified {
			return "vcs:" + rev + ":" + runtime.Version()
		}
	}
	st, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	return "exe:" + exe + ":" + strconv.FormatInt(st.Size(), 10) + ":" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
}

// goBuildID reads the Go build ID note of an ELF executable; "" when it
// has none.
func goBuildID(exe string) string {
	f, err := elf.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil || s.Size > 4096 {
		return ""
	}
	b, err := s.Data()
	if err != nil || len(b) < 16 {
		return ""
	}
	order := f.ByteOrder
	nameSize, descSize := order.Uint32(b), order.Uint32(b[4:])
	if nameSize != 4 || string(b[12:16]) != "Go\x00\x00" || uint64(descSize) > uint64(len(b)-16) {
		return ""
	}
	return string(b[16 : 16+descSize])
}

// WriteSnapshot writes the snapshot of t to path atomically (a temporary
// file in the same directory, synced, renamed over path, the directory
// synced). It returns the number of properties written.
func WriteSnapshot(path string, id SnapshotID, t *Table) (int, error) {
	if id.Build == "" {
		return 0, errors.New("the binary's build is unknown: no snapshot")
	}
	data, n := encodeSnapshot(id, t)
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// snapshotStat returns the stat p may be written with, and false when it
// may not be written: p must depend on nothing but its file's bytes, and
// have been read well after the file's last change. A version read too
// soon after (a file written just before the start) is checked again now:
// when the file's stat is still the one it was read with and its bytes
// still those of p, read well after the change, that read stands.
func snapshotStat(p *Property) (fileStat, bool) {
	for _, o := range p.Origins {
		if o.CAFile != "" || o.Dir != "" || o.URL == nil || o.URL.User != nil {
			return fileStat{}, false
		}
	}
	s := p.stat
	if s.readAt == 0 {
		return fileStat{}, false
	}
	if s.readAt-max(s.mtime, s.ctime) > int64(statSafety) {
		return s, true
	}
	if time.Now().UnixNano()-max(s.mtime, s.ctime) <= int64(statSafety) {
		return fileStat{}, false // still too soon
	}
	data, now, err := readFile(p.File, time.Now())
	if err != nil || !now.sameFile(s) || now.readAt-max(now.mtime, now.ctime) <= int64(statSafety) || digestOf(data) != p.digest {
		return fileStat{}, false
	}
	return now, true
}

func encodeSnapshot(id SnapshotID, t *Table) ([]byte, int) {
	rejected := make(map[string]bool, len(t.rejected))
	for _, r := range t.rejected {
		rejected[r.File] = true
	}
	e := enc{b: make([]byte, 0, 64+len(t.list)*256)}
	e.b = append(e.b, snapshotMagic...)
	e.uint(snapshotVersion)
	e.str(id.Build)
	e.str(id.Dir)
	at := len(e.b)
	e.b = append(e.b, make([]byte, 8)...) // the count, fixed-size: written once known
	var prop enc
	n := 0
	for _, p := range t.list {
		if rejected[p.File] || t.byFile[p.File] != p {
			continue
		}
		st, ok := snapshotStat(p)
		if !ok {
			continue
		}
		n++
		e.str(p.File)
		e.uint(uint64(st.size))
		e.int(st.mtime)
		e.int(st.ctime)
		e.uint(st.ino)
		e.int(st.readAt)
		prop.b = prop.b[:0]
		prop.property(p)
		e.bytes(prop.b)
	}
	binary.LittleEndian.PutUint64(e.b[at:], uint64(n))
	sum := sha256.Sum256(e.b)
	return append(e.b, sum[:]...), n
}

// ReadSnapshot reads the snapshot at path written for id. It fails when
// there is none (an error for which errors.Is(err, fs.ErrNotExist)), or
// when the file is not a whole snapshot written by this build for this
// directory: then no entry of it may be used.
func ReadSnapshot(path string, id SnapshotID) (*Snapshot, error) {
	if id.Build == "" {
		return nil, errors.New("the binary's build is unknown")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < len(snapshotMagic)+sha256.Size || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errors.New("not a property snapshot")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, errors.New("checksum mismatch: truncated or corrupt")
	}
	d := dec{b: body[len(snapshotMagic):]}
	if v := d.uint(); d.err == nil && v != snapshotVersion {
		return nil, fmt.Errorf("format version %d, this binary reads %d", v, snapshotVersion)
	}
	if b := d.str(); d.err == nil && b != id.Build {
		return nil, errors.New("written by another build of edge")
	}
	if dir := d.str(); d.err == nil && dir != id.Dir {
		return nil, fmt.Errorf("written for properties_dir %s", dir)
	}
	n := d.count()
	s := &Snapshot{entries: make(map[string]snapEntry, n)}
	for range n {
		file := d.str()
		var st fileStat
		st.size = int64(d.uint())
		st.mtime = d.int()
		st.ctime = d.int()
		st.ino = d.uint()
		st.readAt = d.int()
		p := d.bytes()
		if d.err != nil {
			break
		}
		s.entries[file] = snapEntry{stat: st, data: p}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("malformed: %w", d.err)
	}
	return s, nil
}

// fromSnapshot returns the property of path from s when the file's stat
// now shows it unchanged since its version was read (see loadFile).
func (s *Snapshot) fromSnapshot(path string, readAt time.Time) *Property {
	e, ok := s.entries[path]
	if !ok {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil || !e.stat.same(statOf(st, readAt)) {
		return nil
	}
	d := dec{b: e.data}
	p := d.property(path)
	if d.err != nil || len(d.b) != 0 {
		return nil // read and parsed instead
	}
	p.stat = e.stat
	return p
}

// enc appends the snapshot's encoding: unsigned and signed varints,
// length-prefixed strings, and lists as their length plus one (0 is a nil
// list, so that a decoded property is deeply equal to the parsed one).
type enc struct{ b []byte }

func (e *enc) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.b = append(e.b, b...)
}

func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) strs(l []string) {
	if l == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(l)) + 1)
	for _, s := range l {
		e.str(s)
	}
}

func (e *enc) ints(l []int) {
	if l == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(l)) + 1)
	for _, v := range l {
		e.int(int64(v))
	}
}

func (e *enc) rules(r HeaderRules) {
	if r.Set == nil {
		e.uint(0)
	} else {
		e.uint(uint64(len(r.Set)) + 1)
		for _, h := range r.Set {
			e.str(h.Name)
			e.str(h.Value)
		}
	}
	e.strs(r.Remove)
}

// property encodes every field of p but File (the entry's path) and stat
// (the entry's). TestSnapshotCoversEveryField fails when a field is added
// to Property or to a type it holds: add it here and in dec.property.
func (e *enc) property(p *Property) {
	e.str(p.Name)
	e.strs(p.Hostnames)
	if p.Origins == nil {
		e.uint(0)
	} else {
		e.uint(uint64(len(p.Origins)) + 1)
		for _, o := range p.Origins {
			u := o.URL
			e.str(u.Scheme)
			e.str(u.Opaque)
			e.str(u.Host)
			e.str(u.Path)
			e.str(u.RawPath)
			e.bool(u.OmitHost)
			e.bool(u.ForceQuery)
			e.str(u.RawQuery)
			e.str(u.Fragment)
			e.str(u.RawFragment)
			e.int(int64(o.Weight))
			e.str(o.CAFile)
			e.str(o.Dir)
		}
	}
	e.str(p.OriginHost)
	e.str(p.TLS.Certificate)
	e.bool(p.TLS.RenewAutomation)
	e.bool(p.TLS.RedirectHTTP)
	e.str(p.TLS.HSTS)
	e.int(int64(p.Timeouts.Connect))
	e.int(int64(p.Timeouts.ResponseHeader))
	e.int(int64(p.Timeouts.Idle))
	e.int(int64(p.Timeouts.BodyIdle))
	e.bool(p.HealthCheck != nil)
	if h := p.HealthCheck; h != nil {
		e.str(h.Path)
		e.int(int64(h.Interval))
		e.int(int64(h.Timeout))
	}
	e.rules(p.Headers.Request)
	e.rules(p.Headers.Response)
	e.strs(p.Headers.AllowOverrides)
	c := &p.Cache
	e.bool(c.Enabled)
	e.int(int64(c.DefaultTTL))
	e.bool(c.NoDeceptionArmor)
	e.int(c.MaxObjectSize)
	e.str(string(c.Query))
	e.strs(c.QueryParams)
	e.int(int64(c.StaleWhileRevalidate))
	e.int(int64(c.StaleIfError))
	e.bool(c.SharedSchemes)
	e.bool(c.HonourClientDirectives)
	e.bool(p.HTTP3)
	e.str(p.digest)
	e.ints(p.hostLines)
	e.int(int64(p.certLine))
	e.int(int64(p.nameLine))
}

// dec reads what enc wrote; the first problem sticks in err and every
// later read returns zero values, so bad input never panics.
type dec struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *dec) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.uint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *dec) str() string { return string(d.bytes()) }

func (d *dec) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail(errShort)
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// count reads the snapshot's entry count (8 bytes), bounded by what is
// left: an entry takes 8 bytes at least.
func (d *dec) count() int {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail(errShort)
		return 0
	}
	n := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	if n > uint64(len(d.b)/8) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

// list reads a list length written as length plus one; -1 is nil.
func (d *dec) list() int {
	n := d.uint()
	if d.err != nil || n == 0 {
		return -1
	}
	if n-1 > uint64(len(d.b)) { // every item takes a byte at least
		d.fail(errShort)
		return -1
	}
	return int(n - 1)
}

func (d *dec) strs() []string {
	n := d.list()
	if n < 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (d *dec) ints() []int {
	n := d.list()
	if n < 0 {
		return nil
	}
	l := make([]int, n)
	for i := range l {
		l[i] = int(d.int())
	}
	return l
}

func (d *dec) rules() HeaderRules {
	var r HeaderRules
	if n := d.list(); n >= 0 {
		r.Set = make([]Header, n)
		for i := range r.Set {
			r.Set[i] = Header{Name: d.str(), Value: d.str()}
		}
	}
	r.Remove = d.strs()
	return r
}

func (d *dec) property(file string) *Property {
	p := &Property{File: file}
	p.Name = d.str()
	p.Hostnames = d.strs()
	if n := d.list(); n >= 0 {
		p.Origins = make([]Origin, n)
		for i := range p.Origins {
			u := &url.URL{Scheme: d.str(), Opaque: d.str(), Host: d.str(), Path: d.str(), RawPath: d.str()}
			u.OmitHost = d.bool()
			u.ForceQuery = d.bool()
			u.RawQuery = d.str()
			u.Fragment = d.str()
			u.RawFragment = d.str()
			p.Origins[i] = Origin{URL: u, Weight: int(d.int()), CAFile: d.str(), Dir: d.str()}
		}
	}
	p.OriginHost = d.str()
	p.TLS.Certificate = d.str()
	p.TLS.RenewAutomation = d.bool()
	p.TLS.RedirectHTTP = d.bool()
	p.TLS.HSTS = d.str()
	p.Timeouts.Connect = time.Duration(d.int())
	p.Timeouts.ResponseHeader = time.Duration(d.int())
	p.Timeouts.Idle = time.Duration(d.int())
	p.Timeouts.BodyIdle = time.Duration(d.int())
	if d.bool() {
		p.HealthCheck = &HealthCheck{Path: d.str(), Interval: time.Duration(d.int()), Timeout: time.Duration(d.int())}
	}
	p.Headers.Request = d.rules()
	p.Headers.Response = d.rules()
	p.Headers.AllowOverrides = d.strs()
	c := &p.Cache
	c.Enabled = d.bool()
	c.DefaultTTL = time.Duration(d.int())
	c.NoDeceptionArmor = d.bool()
	c.MaxObjectSize = d.int()
	c.Query = QueryMode(d.str())
	c.QueryParams = d.strs()
	c.StaleWhileRevalidate = time.Duration(d.int())
	c.StaleIfError = time.Duration(d.int())
	c.SharedSchemes = d.bool()
	c.HonourClientDirectives = d.bool()
	p.HTTP3 = d.bool()
	p.digest = d.str()
	p.hostLines = d.ints()
	p.certLine = int(d.int())
	p.nameLine = int(d.int())
	return p
}
