package property

import (
	"strings"
	"testing"
)

func loaded(t *testing.T, file, body string) Loaded {
	t.Helper()
	p, errs := Parse(file, []byte(body))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return Loaded{File: file, Property: p}
}

// refusedFor returns the errors of file's rejection, joined.
func refusedFor(tab *Table, file string) string {
	for _, r := range tab.Rejected() {
		if r.File == file {
			var s []string
			for _, e := range r.Errors {
				s = append(s, e.Error())
			}
			return strings.Join(s, "; ")
		}
	}
	return ""
}

// TestDuplicateHostnameStaysWithServingFile: b.yaml serves shop.example;
// a.yaml, dropped in later, claims it too, and b.yaml is edited in the
// same reload. Both were "changed", merged in name order, so a.yaml took
// the hostname and b.yaml stopped serving: the file that claimed it later
// won. The hostname stays with the file that serves it.
func TestDuplicateHostnameStaysWithServingFile(t *testing.T) {
	const b1 = "hostnames: [shop.example]\norigins: [{url: http://10.0.0.1}]\n"
	const b2 = "hostnames: [shop.example]\norigins: [{url: http://10.0.0.2}]\n"
	const a = "hostnames: [www.example, shop.example]\norigins: [{url: http://10.0.0.9}]\n"
	prev := Build([]Loaded{loaded(t, "b.yaml", b1)}, nil, Options{})
	tab := Build([]Loaded{loaded(t, "a.yaml", a), loaded(t, "b.yaml", b2)}, prev, Options{})
	if p := tab.Lookup("shop.example"); p == nil || p.File != "b.yaml" || p.Origins[0].URL.Host != "10.0.0.2" {
		t.Fatalf("shop.example served by %+v, want b.yaml's new version", p)
	}
	if msg := refusedFor(tab, "a.yaml"); !strings.Contains(msg, `a.yaml:1: hostnames[1]: hostname "shop.example" is already used by b.yaml`) {
		t.Errorf("a.yaml: %q", msg)
	}
	if msg := refusedFor(tab, "b.yaml"); msg != "" {
		t.Errorf("b.yaml refused: %s", msg)
	}

	// validate has no previous table: Held, from the running node or the
	// store, decides the same way.
	tab = Build([]Loaded{loaded(t, "a.yaml", a), loaded(t, "b.yaml", b2)}, nil, Options{Held: map[string]string{"shop.example": "b.yaml"}})
	if p := tab.Lookup("shop.example"); p == nil || p.File != "b.yaml" {
		t.Fatalf("with Held: shop.example served by %+v, want b.yaml", p)
	}
	if msg := refusedFor(tab, "a.yaml"); !strings.Contains(msg, `hostname "shop.example" is already used by b.yaml`) {
		t.Errorf("with Held: a.yaml: %q", msg)
	}

	// A hostname its holder no longer claims is free for another file in
	// the same reload.
	const b3 = "hostnames: [other.example]\norigins: [{url: http://10.0.0.2}]\n"
	tab = Build([]Loaded{loaded(t, "a.yaml", a), loaded(t, "b.yaml", b3)}, prev, Options{})
	if p := tab.Lookup("shop.example"); p == nil || p.File != "a.yaml" || len(tab.Rejected()) != 0 {
		t.Errorf("moved hostname: served by %+v, rejected %v", p, tab.Problems())
	}

	// With nothing served (a first start, no last good versions), the file
	// first by name keeps it.
	tab = Build([]Loaded{loaded(t, "b.yaml", b2), loaded(t, "a.yaml", a)}, nil, Options{})
	if p := tab.Lookup("shop.example"); p == nil || p.File != "a.yaml" || refusedFor(tab, "b.yaml") == "" {
		t.Errorf("first start: served by %+v, rejected %v", p, tab.Problems())
	}
}
