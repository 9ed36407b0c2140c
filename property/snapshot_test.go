package property

import (
	"crypto/sha256"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var testID = SnapshotID{Build: "test-build", Dir: "props"}

// aged makes t's versions look read long after their files' last change
// (ctime cannot be set back, and the 1 s rule refuses versions read right
// after a change).
func aged(t *Table) *Table {
	for _, p := range t.byFile {
		if p.stat.readAt != 0 {
			p.stat.readAt = max(p.stat.mtime, p.stat.ctime) + int64(2*statSafety)
		}
	}
	return t
}

func writeSnapProps(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		body := fmt.Sprintf("hostnames: [p%d.example, www.p%d.example]\norigins: [{url: http://127.0.0.1:%d/x}]\ncache: {enabled: true, query: [a, b]}\nheaders: {request: {set: {X-A: b}}}\n", i, i, 1000+i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%03d.yaml", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshotOf writes the snapshot of table to a temp file and reads it back.
func snapshotOf(t *testing.T, table *Table, id SnapshotID) (*Snapshot, string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "properties.snapshot")
	n, err := WriteSnapshot(path, id, table)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadSnapshot(path, id)
	if err != nil {
		t.Fatal(err)
	}
	return s, path, n
}

// loadWith loads dir as a start does with snap, counting the parses.
func loadWith(t *testing.T, dir string, snap *Snapshot) (*Table, int, int64) {
	t.Helper()
	files, err := ListDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	before := parses.Load()
	loaded, taken := LoadListSnapshot(files, snap)
	return Build(loaded, nil, Options{}), taken, parses.Load() - before
}

// sameTable fails unless a and b serve the same properties and reject the
// same files with the same errors; the stats a version was read with may
// differ.
func sameTable(t *testing.T, a, b *Table) {
	t.Helper()
	strip := func(tab *Table) []Property {
		var out []Property
		for _, p := range tab.Properties() {
			cp := *p
			cp.stat = fileStat{}
			out = append(out, cp)
		}
		return out
	}
	if pa, pb := strip(a), strip(b); !reflect.DeepEqual(pa, pb) {
		t.Errorf("properties differ:\n%+v\n%+v", pa, pb)
	}
	rej := func(tab *Table) string {
		var b strings.Builder
		for _, r := range tab.Rejected() {
			fmt.Fprintf(&b, "%s %v %v\n", r.File, r.Errors, r.Serving != nil)
		}
		return b.String()
	}
	if ra, rb := rej(a), rej(b); ra != rb {
		t.Errorf("rejections differ:\n%s\n%s", ra, rb)
	}
	for _, h := range []string{"p1.example", "www.p2.example", "full.example", "cached.example"} {
		if (a.Lookup(h) == nil) != (b.Lookup(h) == nil) {
			t.Errorf("lookup of %s differs", h)
		}
	}
}

// TestSnapshotUnchangedFilesNotParsed: a start with a snapshot of the
// files as they are takes every one from it, parses none, and builds the
// table a cold load builds.
func TestSnapshotUnchangedFilesNotParsed(t *testing.T) {
	dir := t.TempDir()
	writeSnapProps(t, dir, 200)
	cold, err := LoadDir(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, _, n := snapshotOf(t, aged(cold), testID)
	if n != 200 || snap.Len() != 200 {
		t.Fatalf("snapshot of %d properties (%d read back), want 200", n, snap.Len())
	}
	warm, taken, parsed := loadWith(t, dir, snap)
	if taken != 200 || parsed != 0 {
		t.Errorf("%d taken from the snapshot, %d parsed; want 200 and 0", taken, parsed)
	}
	cold2, _, parsed := loadWith(t, dir, nil)
	if parsed != 200 {
		t.Errorf("a load without snapshot parsed %d files, want 200", parsed)
	}
	sameTable(t, cold2, warm)
	// A reload after a start from the snapshot reads nothing unchanged.
	if p := warm.ByName("p007"); p == nil || !p.stat.same(p.stat) {
		t.Error("a version from the snapshot is not trusted by reload")
	}
}

// TestSnapshotFixturesEqualColdLoad: over the good and the bad fixtures
// (file origins, CA files, rejected files), a load with the snapshot
// builds exactly the table of a cold load; files whose checks read other
// files, and rejected files, are not in the snapshot.
func TestSnapshotFixturesEqualColdLoad(t *testing.T) {
	for _, d := range []string{"testdata/good", "testdata/bad"} {
		t.Run(filepath.Base(d), func(t *testing.T) {
			cold, err := LoadDir(d, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			snap, _, n := snapshotOf(t, aged(cold), testID)
			for _, p := range cold.Properties() {
				_, in := snap.entries[p.File]
				external := false
				for _, o := range p.Origins {
					external = external || o.CAFile != "" || o.Dir != ""
				}
				if in == external {
					t.Errorf("%s: in snapshot %v, reads other files %v", p.File, in, external)
				}
			}
			for _, r := range cold.Rejected() {
				if _, in := snap.entries[r.File]; in {
					t.Errorf("rejected %s is in the snapshot", r.File)
				}
			}
			warm, taken, _ := loadWith(t, d, snap)
			if taken != n {
				t.Errorf("%d of %d snapshot entries taken", taken, n)
			}
			sameTable(t, cold, warm)
		})
	}
}

// TestSnapshotSameSizeRewriteParsedAgain: a file rewritten with bytes of
// the same size and its modification time put back is parsed again, not
// taken from the snapshot (its ctime moved).
func TestSnapshotSameSizeRewriteParsedAgain(t *testing.T) {
	dir := t.TempDir()
	writeSnapProps(t, dir, 3)
	cold, _ := LoadDir(dir, nil, Options{})
	snap, _, _ := snapshotOf(t, aged(cold), testID)
	f := filepath.Join(dir, "p001.yaml")
	st, _ := os.Stat(f)
	data, _ := os.ReadFile(f)
	data = []byte(strings.Replace(string(data), ":1001/", ":1009/", 1))
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	warm, taken, parsed := loadWith(t, dir, snap)
	if taken != 2 || parsed != 1 {
		t.Errorf("%d taken, %d parsed; want 2 and 1", taken, parsed)
	}
	if got := warm.ByName("p001").Origins[0].URL.Port(); got != "1009" {
		t.Errorf("rewritten file serves port %s, want 1009", got)
	}
}

// TestSnapshotVersionReadRightAfterChangeNotTrusted: a version read less
// than a second after its file's last change is not written to the
// snapshot, and an entry that claims such a read is not taken (a same-size
// rewrite within the file time's tick would keep the stat).
func TestSnapshotVersionReadRightAfterChangeNotTrusted(t *testing.T) {
	dir := t.TempDir()
	written := time.Now()
	writeSnapProps(t, dir, 3)
	cold, _ := LoadDir(dir, nil, Options{}) // read right after the write
	// Within the second, the writer's check again is too soon as well
	// (a very slow machine may pass it: that check is not this test's).
	if _, _, n := snapshotOf(t, cold, testID); n != 0 && time.Since(written) < statSafety {
		t.Errorf("%d versions read right after their change written", n)
	}
	f := filepath.Join(dir, "p000.yaml")
	p := cold.ByFile(f)
	var e enc
	e.property(p)
	st := p.stat
	st.readAt = max(st.mtime, st.ctime) + int64(statSafety/2)
	snap := &Snapshot{entries: map[string]snapEntry{f: {stat: st, data: e.b}}}
	if got := snap.fromSnapshot(f, time.Now()); got != nil {
		t.Error("an entry read half a second after its change was taken")
	}
	st.readAt = max(st.mtime, st.ctime) + int64(2*statSafety)
	snap.entries[f] = snapEntry{stat: st, data: e.b}
	if got := snap.fromSnapshot(f, time.Now()); got == nil {
		t.Error("an entry read long after its change was not taken")
	}
}

// TestSnapshotRechecksVersionReadRightAfterChange: a version read less
// than a second after its file's change is written once the file, read
// again more than a second after that change, still has its stat and
// bytes; a file changed since is not.
func TestSnapshotRechecksVersionReadRightAfterChange(t *testing.T) {
	dir := t.TempDir()
	writeSnapProps(t, dir, 3)
	cold, _ := LoadDir(dir, nil, Options{})       // read right after the write
	time.Sleep(statSafety + 100*time.Millisecond) // the files age past the rule
	if err := os.WriteFile(filepath.Join(dir, "p001.yaml"), []byte("hostnames: [x.example]\norigins: [{url: http://127.0.0.1:9}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, _, n := snapshotOf(t, cold, testID)
	if n != 2 {
		t.Errorf("%d versions written, want the 2 unchanged", n)
	}
	if _, in := snap.entries[filepath.Join(dir, "p001.yaml")]; in {
		t.Error("the file changed since its read is in the snapshot")
	}
	warm, taken, parsed := loadWith(t, dir, snap)
	if taken != 2 || parsed != 1 {
		t.Errorf("%d taken, %d parsed; want 2 and 1", taken, parsed)
	}
	if warm.Lookup("x.example") == nil || warm.Lookup("p1.example") != nil {
		t.Error("the changed file serves its old version")
	}
}

// TestSnapshotDeletedAndNewFiles: a file deleted since the snapshot is
// gone, a new one is parsed.
func TestSnapshotDeletedAndNewFiles(t *testing.T) {
	dir := t.TempDir()
	writeSnapProps(t, dir, 4)
	cold, _ := LoadDir(dir, nil, Options{})
	snap, _, _ := snapshotOf(t, aged(cold), testID)
	if err := os.Remove(filepath.Join(dir, "p002.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new.yaml"), []byte("hostnames: [new.example]\norigins: [{url: http://127.0.0.1:9}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	warm, taken, parsed := loadWith(t, dir, snap)
	if taken != 3 || parsed != 1 {
		t.Errorf("%d taken, %d parsed; want 3 and 1", taken, parsed)
	}
	if warm.ByName("p002") != nil || warm.Lookup("p2.example") != nil {
		t.Error("a deleted file still serves")
	}
	if warm.Lookup("new.example") == nil {
		t.Error("a new file does not serve")
	}
	cold2, _ := LoadDir(dir, nil, Options{})
	sameTable(t, cold2, warm)
}

// TestSnapshotCorruptIgnored: a snapshot cut short anywhere, or with any
// byte changed, is refused whole; a load then parses every file and builds
// the cold table.
func TestSnapshotCorruptIgnored(t *testing.T) {
	dir := t.TempDir()
	writeSnapProps(t, dir, 5)
	cold, _ := LoadDir(dir, nil, Options{})
	_, path, _ := snapshotOf(t, aged(cold), testID)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	try := func(what string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := ReadSnapshot(path, testID)
		if err == nil || s != nil {
			t.Fatalf("%s: snapshot accepted", what)
		}
	}
	for n := range len(good) {
		try(fmt.Sprintf("cut to %d bytes", n), good[:n])
	}
	for i := range good {
		b := slices.Clone(good)
		b[i] ^= 0x10
		try(fmt.Sprintf("byte %d flipped", i), b)
	}
	try("trailing byte", append(slices.Clone(good), 0))
	warm, taken, parsed := loadWith(t, dir, nil)
	if taken != 0 || parsed != 5 {
		t.Errorf("%d taken, %d parsed", taken, parsed)
	}
	sameTable(t, cold, warm)
}

// TestSnapshotMalformedWithGoodChecksumNeverPanics: bytes changed behind a
// recomputed checksum (a writer bug, not corruption) make ReadSnapshot
// fail or entries that decode or fall back to parsing, never a panic.
func TestSnapshotMalformedWithGoodChecksumNeverPanics(t *testing.T) {
	dir := t.TempDir()
	writeSnapProps(t, dir, 2)
	cold, _ := LoadDir(dir, nil, Options{})
	_, path, _ := snapshotOf(t, aged(cold), testID)
	good, _ := os.ReadFile(path)
	body := good[:len(good)-sha256.Size]
	for i := len(snapshotMagic); i < len(body); i++ {
		for _, v := range []byte{0, 0x7f, 0x80, 0xff} {
			b := slices.Clone(body)
			b[i] = v
			sum := sha256.Sum256(b)
			if err := os.WriteFile(path, append(b, sum[:]...), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := ReadSnapshot(path, testID)
			if err != nil {
				continue
			}
			files, _ := ListDir(dir)
			for _, f := range files {
				s.fromSnapshot(f, time.Now())
			}
		}
	}
}

// TestSnapshotOtherBuildIgnored: a snapshot written by another build of
// the binary, or for another properties_dir, is refused; with no build
// known none is written or read.
func TestSnapshotOtherBuildIgnored(t *testing.T) {
	dir := t.TempDir()
	writeSnapProps(t, dir, 2)
	cold, _ := LoadDir(dir, nil, Options{})
	_, path, _ := snapshotOf(t, aged(cold), testID)
	for _, id := range []SnapshotID{{Build: "other-build", Dir: testID.Dir}, {Build: testID.Build, Dir: "elsewhere"}, {Dir: testID.Dir}} {
		if s, err := ReadSnapshot(path, id); err == nil || s != nil {
			t.Errorf("snapshot of %+v read for %+v", testID, id)
		}
	}
	if _, err := WriteSnapshot(path, SnapshotID{Dir: "props"}, cold); err == nil {
		t.Error("snapshot written with no build")
	}
	if BuildID() == "" {
		t.Error("no build ID for the test binary")
	}
}

// TestSnapshotCoversEveryField pins the fields of Property and of the types
// it holds: one added must be encoded in enc.property and decoded in
// dec.property (then add it here).
func TestSnapshotCoversEveryField(t *testing.T) {
	want := map[string]string{
		"Property":    "Name File Hostnames Origins OriginHost TLS Timeouts HealthCheck Headers Cache HTTP3 digest stat hostLines certLine nameLine",
		"Origin":      "URL Weight CAFile Dir",
		"URL":         "Scheme Opaque User Host Path Fragment RawQuery RawPath RawFragment ForceQuery OmitHost",
		"TLS":         "Certificate RenewAutomation RedirectHTTP HSTS",
		"Timeouts":    "Connect ResponseHeader Idle BodyIdle",
		"HealthCheck": "Path Interval Timeout",
		"Headers":     "Request Response AllowOverrides",
		"HeaderRules": "Set Remove",
		"Header":      "Name Value",
		"Cache":       "Enabled DefaultTTL NoDeceptionArmor MaxObjectSize Query QueryParams StaleWhileRevalidate StaleIfError SharedSchemes HonourClientDirectives",
	}
	for _, typ := range []reflect.Type{reflect.TypeOf(Property{}), reflect.TypeOf(Origin{}), reflect.TypeOf(url.URL{}),
		reflect.TypeOf(TLS{}), reflect.TypeOf(Timeouts{}), reflect.TypeOf(HealthCheck{}), reflect.TypeOf(Headers{}),
		reflect.TypeOf(HeaderRules{}), reflect.TypeOf(Header{}), reflect.TypeOf(Cache{})} {
		var names []string
		for i := range typ.NumField() {
			names = append(names, typ.Field(i).Name)
		}
		if got := strings.Join(names, " "); got != want[typ.Name()] {
			t.Errorf("%s has fields %s; the snapshot encodes %s", typ.Name(), got, want[typ.Name()])
		}
	}
}

// BenchmarkSnapshotDecode and BenchmarkParseFull compare taking a property
// from a snapshot with parsing its file.
func BenchmarkSnapshotDecode(b *testing.B) {
	p, errs := Parse("full.yaml", mustRead(b, "testdata/good/full.yaml"))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	var e enc
	e.property(p)
	b.ReportAllocs()
	for b.Loop() {
		d := dec{b: e.b}
		d.property("full.yaml")
	}
}

func BenchmarkParseFull(b *testing.B) {
	data := mustRead(b, "testdata/good/full.yaml")
	b.ReportAllocs()
	for b.Loop() {
		Parse("full.yaml", data)
	}
}

func mustRead(b *testing.B, f string) []byte {
	data, err := os.ReadFile(f)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
