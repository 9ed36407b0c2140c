package property

import (
	"fmt"
	"sort"
	"strings"

	"github.com/edge-cdn/edge/internal/yamlfield"
)

// Table is an immutable set of properties indexed for routing. Readers on the
// request and handshake paths share one *Table without locks; a reload builds
// a new one.
type Table struct {
	exact    map[string]*Property
	wild     map[string]*Property // "*.shop.example" is stored under "shop.example"
	byName   map[string]*Property
	byFile   map[string]*Property
	list     []*Property // sorted by name
	rejected []Rejection // sorted by file
	// certNames is CertificateNames, computed once: the renewal loop asks
	// for it on every certificate write.
	certNames map[string][]string
}

// Rejection is a property file that failed validation.
type Rejection struct {
	File   string
	Errors []error
	// Serving is the last good version of the file, still in the table; nil
	// when the file never loaded.
	Serving *Property
}

// Options carry what validation needs from outside the property files.
type Options struct {
	// MaxNamesPerCertificate is the CA's limit on names in one order (100 for
	// Let's Encrypt's classic profile, 25 for tlsserver and shortlived);
	// 0 means no limit.
	MaxNamesPerCertificate int
	// CertificateType returns the type ("server" or "ca") of the stored
	// certificate with that name, and false if there is none. Nil skips the
	// check.
	CertificateType func(name string) (string, bool)
	// Held maps hostnames to the file that serves them, for a Build with no
	// previous table that must decide duplicates as the node does: validate
	// fills it from the running node, or from the store's last good
	// versions. Ignored when Build has a previous table.
	Held map[string]string
}

// Lookup returns the property serving host, an already normalised name:
// the exact name first, then a wildcard for its first label. It does not
// allocate.
func (t *Table) Lookup(host string) *Property {
	if t == nil {
		return nil
	}
	if p, ok := t.exact[host]; ok {
		return p
	}
	if i := strings.IndexByte(host, '.'); i >= 0 {
		return t.wild[host[i+1:]]
	}
	return nil
}

// ByName returns the property with that name, or nil.
func (t *Table) ByName(name string) *Property {
	if t == nil {
		return nil
	}
	return t.byName[name]
}

// ByFile returns the property loaded from that file (its path as
// LoadDir gives it), or nil.
func (t *Table) ByFile(file string) *Property {
	if t == nil {
		return nil
	}
	return t.byFile[file]
}

// Properties returns the serving properties sorted by name. The slice is
// shared: do not modify it.
func (t *Table) Properties() []*Property {
	if t == nil {
		return nil
	}
	return t.list
}

// Rejected returns the files that failed validation, sorted by file.
func (t *Table) Rejected() []Rejection {
	if t == nil {
		return nil
	}
	return t.rejected
}

// Problems returns every error of every rejected file, in file order.
func (t *Table) Problems() []error {
	var out []error
	for _, r := range t.Rejected() {
		out = append(out, r.Errors...)
	}
	return out
}

// CertificateNames returns, for each certificate name used by a property,
// the hostnames of the properties that use it with renew automation (the
// names its renewals must cover), sorted. A certificate used only without
// automation maps to an empty list. The map is shared: do not modify it.
func (t *Table) CertificateNames() map[string][]string {
	if t == nil {
		return nil
	}
	return t.certNames
}

func certificateNames(props []*Property) map[string][]string {
	out := make(map[string][]string)
	for _, p := range props {
		c := p.TLS.Certificate
		if c == "" {
			continue
		}
		if p.TLS.RenewAutomation {
			out[c] = append(out[c], p.Hostnames...)
		} else if _, ok := out[c]; !ok {
			out[c] = nil
		}
	}
	for _, hs := range out {
		sort.Strings(hs)
	}
	return out
}

// Loaded is one parsed file handed to Build.
type Loaded struct {
	File     string
	Property *Property // nil when Errors is set
	Errors   []error

	fromSnapshot bool // taken from a Snapshot, not parsed
}

// Build merges parsed files into a Table. prev, the table in service (nil
// at first start), decides three things: a file that fails keeps its
// version from prev; a hostname that a file of prev serves, and that the
// file still claims, stays with it, so another file claiming it is the one
// refused however the files are named (opts.Held stands in for prev when
// it is nil); and unchanged files are merged before changed ones, in file
// name order, so that any other collision rejects the file that changed,
// or at a first start the later file by name.
func Build(files []Loaded, prev *Table, opts Options) *Table {
	// Sized for the files: growing four maps of 100,000 entries doubled
	// their work.
	t := &Table{
		exact:  make(map[string]*Property, len(files)),
		wild:   make(map[string]*Property),
		byName: make(map[string]*Property, len(files)),
		byFile: make(map[string]*Property, len(files)),
	}
	b := builder{t: t, opts: opts, certNames: make(map[string]int), held: heldHostnames(files, prev, opts.Held)}
	type candidate struct {
		l        Loaded
		fallback *Property
	}
	var unchanged, changed []candidate
	sort.Slice(files, func(i, j int) bool { return files[i].File < files[j].File })
	for _, f := range files {
		var old *Property
		if prev != nil {
			old = prev.byFile[f.File]
		}
		c := candidate{l: f, fallback: old}
		switch {
		case f.Property == nil:
			t.reject(f.File, f.Errors, nil)
			if old != nil {
				unchanged = append(unchanged, candidate{l: Loaded{File: f.File, Property: old}})
			}
		case old != nil && old.digest == f.Property.digest:
			unchanged = append(unchanged, c)
		default:
			changed = append(changed, c)
		}
	}
	for _, c := range append(unchanged, changed...) {
		errs := b.add(c.l.Property)
		if len(errs) == 0 {
			continue
		}
		var serving *Property
		if c.fallback != nil && c.fallback != c.l.Property && len(b.add(c.fallback)) == 0 {
			serving = c.fallback
		}
		t.reject(c.l.File, errs, serving)
	}
	t.list = make([]*Property, 0, len(t.byName))
	for _, p := range t.byName {
		t.list = append(t.list, p)
	}
	sort.Slice(t.list, func(i, j int) bool { return t.list[i].Name < t.list[j].Name })
	t.certNames = certificateNames(t.list)
	sort.SliceStable(t.rejected, func(i, j int) bool { return t.rejected[i].File < t.rejected[j].File })
	// A file rejected for its own errors may still serve its last good version.
	for i := range t.rejected {
		if t.rejected[i].Serving == nil {
			t.rejected[i].Serving = t.byFile[t.rejected[i].File]
		}
	}
	return t
}

func (t *Table) reject(file string, errs []error, serving *Property) {
	for i, r := range t.rejected {
		if r.File == file {
			t.rejected[i].Errors = append(t.rejected[i].Errors, errs...)
			return
		}
	}
	t.rejected = append(t.rejected, Rejection{File: file, Errors: errs, Serving: serving})
}

type builder struct {
	t         *Table
	opts      Options
	certNames map[string]int // names on each certificate with renew automation
	// held maps a hostname to the file that serves it and still claims it:
	// another file may not take it.
	held map[string]string
}

// heldHostnames returns the hostnames that a file serves (in prev, else in
// held) and that the same file still claims in files, by hostname.
func heldHostnames(files []Loaded, prev *Table, held map[string]string) map[string]string {
	if prev != nil {
		held = make(map[string]string, len(prev.exact)+len(prev.wild))
		for _, p := range prev.list {
			for _, h := range p.Hostnames {
				held[h] = p.File
			}
		}
	}
	if len(held) == 0 {
		return nil
	}
	out := make(map[string]string, len(held))
	for _, f := range files {
		p := f.Property
		if p == nil && prev != nil {
			p = prev.byFile[f.File] // a file that fails keeps its version
		}
		if p == nil {
			continue
		}
		for _, h := range p.Hostnames {
			if held[h] == f.File {
				out[h] = f.File
			}
		}
	}
	return out
}

// add inserts p if it agrees with what the table already holds.
func (b *builder) add(p *Property) []error {
	var errs []error
	fail := func(line int, field, format string, args ...any) {
		errs = append(errs, &yamlfield.FieldError{File: p.File, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if o, ok := b.t.byName[p.Name]; ok {
		fail(p.nameLine, "name", "property name %q is also used by %s", p.Name, o.File)
	}
	for i, h := range p.Hostnames {
		if o := b.owner(h); o != nil {
			fail(lineOf(p.hostLines, i), fmt.Sprintf("hostnames[%d]", i), "hostname %q is already used by property %q in %s", h, o.Name, o.File)
		} else if f, ok := b.held[h]; ok && f != p.File {
			fail(lineOf(p.hostLines, i), fmt.Sprintf("hostnames[%d]", i), "hostname %q is already used by %s, which serves it", h, f)
		}
	}
	if c := p.TLS.Certificate; c != "" {
		if b.opts.CertificateType != nil {
			if typ, ok := b.opts.CertificateType(c); ok && typ != "server" {
				fail(p.certLine, "tls.certificate", "certificate %q is of type %s; a property needs a certificate of type server", c, typ)
			}
		}
		if max := b.opts.MaxNamesPerCertificate; max > 0 && p.TLS.RenewAutomation && b.certNames[c]+len(p.Hostnames) > max {
			fail(p.certLine, "tls.certificate", "certificate %q would hold %d names, over the CA's limit of %d names in one order; split the hostnames over more certificates",
				c, b.certNames[c]+len(p.Hostnames), max)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	for _, h := range p.Hostnames {
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			b.t.wild[rest] = p
		} else {
			b.t.exact[h] = p
		}
	}
	if p.TLS.RenewAutomation {
		b.certNames[p.TLS.Certificate] += len(p.Hostnames)
	}
	b.t.byName[p.Name] = p
	b.t.byFile[p.File] = p
	return nil
}

func (b *builder) owner(h string) *Property {
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		return b.t.wild[rest]
	}
	return b.t.exact[h]
}

func lineOf(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}
