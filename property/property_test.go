package property

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./property -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./property -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestGoodProperties(t *testing.T) {
	tab, err := LoadDir("testdata/good", nil, Options{MaxNamesPerCertificate: 100})
	if err != nil {
		t.Fatal(err)
	}
	if p := tab.Problems(); len(p) > 0 {
		t.Fatalf("good files rejected: %v", p)
	}
	var b strings.Builder
	for _, p := range tab.Properties() {
		type origin struct {
			URL    string
			Weight int
			Dir    string `json:",omitempty"`
		}
		var origins []origin
		for _, o := range p.Origins {
			origins = append(origins, origin{o.URL.String(), o.Weight, o.Dir})
		}
		j, _ := json.MarshalIndent(struct {
			*Property
			Origins []origin
		}{p, origins}, "", "  ")
		fmt.Fprintf(&b, "%s\n", j)
	}
	golden(t, "good.golden", b.String())
}

func TestBadProperties(t *testing.T) {
	tab, err := LoadDir("testdata/bad", nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range tab.Problems() {
		fmt.Fprintln(&b, e)
	}
	golden(t, "bad.golden", b.String())
	// Every bad file but dup_a (merged first) is rejected; dup_a serves.
	files, _ := ListDir("testdata/bad")
	if got, want := len(tab.Rejected()), len(files)-1; got != want {
		t.Errorf("rejected %d files, want %d", got, want)
	}
	if p := tab.Lookup("dup.example"); p == nil || !strings.HasSuffix(p.File, "dup_a.yaml") {
		t.Errorf("dup.example served by %v, want dup_a.yaml", p)
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"shop.example", "shop.example", ""},
		{"Shop.EXAMPLE", "shop.example", ""},
		{"shop.example.", "shop.example", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"localhost", "localhost", ""},
		{"a-b.c-d.example", "a-b.c-d.example", ""},
		{"", "", "empty"},
		{".", "", "empty"},
		{"shop.example:80", "", "bare name"},
		{"shop.example/x", "", "bare name"},
		{"-shop.example", "", "not a valid"},
		{"shop-.example", "", "not a valid"},
		{"a..example", "", "not a valid"},
		{"10.0.0.1", "", "not a valid"},
		{"under_score.example", "", "not a valid"},
		{strings.Repeat("a", 64) + ".example", "", "not a valid"},
	} {
		got, err := Normalize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Normalize(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeCanonicalDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = Normalize("www.shop.example") }); n != 0 {
		t.Errorf("Normalize allocated %v times for a canonical name, want 0", n)
	}
}

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"shop.example": "shop.example", "shop.example:8443": "shop.example",
		"[::1]:80": "", "127.0.0.1:80": "", "127.0.0.1": "", "[::1]": "",
	} {
		if got := HostOnly(in); got != want {
			t.Errorf("HostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	tab, err := LoadDir("testdata/good", nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"shop.example": "shop", "www.shop.example": "shop", "xn--bcher-kva.example": "shop",
		"a.static.example": "static", "static.example": "", "a.b.static.example": "",
		"api.example": "minimal", "nope.example": "",
	} {
		got := ""
		if p := tab.Lookup(host); p != nil {
			got = p.Name
		}
		if got != want {
			t.Errorf("Lookup(%q) = %q, want %q", host, got, want)
		}
	}
}

// writeProps writes property files into dir, name → YAML.
func writeProps(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReloadKeepsLastGoodVersion(t *testing.T) {
	dir := t.TempDir()
	writeProps(t, dir, map[string]string{
		"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\n",
		"b.yaml": "hostnames: [b.example]\norigins: [{url: http://127.0.0.1:2}]\n",
	})
	t1, err := LoadDir(dir, nil, Options{})
	if err != nil || len(t1.Problems()) > 0 {
		t.Fatal(err, t1.Problems())
	}
	// a breaks; b changes to claim a's hostname; c is new and bad.
	writeProps(t, dir, map[string]string{
		"a.yaml": "hostnames: [a.example]\norigins: []\n",
		"b.yaml": "hostnames: [b.example, a.example]\norigins: [{url: http://127.0.0.1:2}]\n",
		"c.yaml": "hostnames: [c.example]\n",
	})
	t2, err := LoadDir(dir, t1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := t2.Lookup("a.example"); p == nil || p.Name != "a" || p.Origins[0].URL.Port() != "1" {
		t.Errorf("a.example: got %+v, want the last good a", p)
	}
	if p := t2.Lookup("b.example"); p == nil || len(p.Hostnames) != 1 {
		t.Errorf("b.example: got %+v, want the last good b (its change collides with a)", p)
	}
	if t2.Lookup("c.example") != nil {
		t.Error("c.example is served though c.yaml never loaded")
	}
	if got := len(t2.Rejected()); got != 3 {
		t.Errorf("%d rejected, want 3: %v", got, t2.Problems())
	}
	for _, r := range t2.Rejected() {
		if want := !strings.HasSuffix(r.File, "c.yaml"); (r.Serving != nil) != want {
			t.Errorf("%s: serving %v, want last good version kept = %v", r.File, r.Serving, want)
		}
	}
	// Fixed again: everything loads.
	writeProps(t, dir, map[string]string{
		"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:3}]\n",
		"c.yaml": "hostnames: [c.example]\norigins: [{url: http://127.0.0.1:4}]\n",
	})
	os.Remove(filepath.Join(dir, "b.yaml"))
	t3, _ := LoadDir(dir, t2, Options{})
	if len(t3.Problems()) > 0 || t3.Lookup("b.example") != nil || t3.Lookup("a.example").Origins[0].URL.Port() != "3" {
		t.Errorf("after fixing: problems %v, b %v", t3.Problems(), t3.Lookup("b.example"))
	}
}

func TestCrossFileRules(t *testing.T) {
	dir := t.TempDir()
	writeProps(t, dir, map[string]string{
		"a.yaml": "hostnames: [a1.example, a2.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: shared, renew_automation: true}\n",
		"b.yaml": "hostnames: [b1.example, b2.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: shared, renew_automation: true}\n",
		"c.yaml": "hostnames: [c.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: root-ca}\n",
	})
	tab, err := LoadDir(dir, nil, Options{
		MaxNamesPerCertificate: 3,
		CertificateType: func(n string) (string, bool) {
			if n == "root-ca" {
				return "ca", true
			}
			return "", false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range tab.Problems() {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		"b.yaml:3: tls.certificate: certificate \"shared\" would hold 4 names, over the CA's limit of 3",
		"c.yaml:3: tls.certificate: certificate \"root-ca\" is of type ca",
	} {
		if !strings.Contains(all, filepath.Join(dir, want)) && !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
	if got := tab.CertificateNames()["shared"]; strings.Join(got, ",") != "a1.example,a2.example" {
		t.Errorf("names of shared = %v", got)
	}
}

func BenchmarkLookup100k(b *testing.B) {
	files := make([]Loaded, 0, 100000)
	for i := range 100000 {
		p := &Property{Name: fmt.Sprintf("p%d", i), File: fmt.Sprintf("p%d.yaml", i),
			Hostnames: []string{fmt.Sprintf("host%d.example", i)}}
		files = append(files, Loaded{File: p.File, Property: p})
	}
	tab := Build(files, nil, Options{})
	hosts := []string{"host1.example", "host50000.example", "host99999.example", "missing.example"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = tab.Lookup(hosts[i&3])
	}
}

// BenchmarkLoadDir10k measures loading 10,000 property files.
func BenchmarkLoadDir10k(b *testing.B) {
	dir := b.TempDir()
	for i := range 10_000 {
		body := fmt.Sprintf("hostnames: [p%d.example, www.p%d.example]\norigins: [{url: http://10.0.%d.%d:8080, weight: 2}, {url: http://10.1.%d.%d:8080}]\ntls: {certificate: c%d, renew_automation: true}\n",
			i, i, i/250, i%250, i/250, i%250, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%05d.yaml", i)), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, err := LoadDir(dir, nil, Options{MaxNamesPerCertificate: 100})
			if err != nil || len(t.Properties()) != 10_000 {
				b.Fatal(err, len(t.Problems()))
			}
		}
	})
	b.Run("reload-one-changed", func(b *testing.B) {
		prev, _ := LoadDir(dir, nil, Options{MaxNamesPerCertificate: 100})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			os.WriteFile(filepath.Join(dir, "p00000.yaml"), []byte(fmt.Sprintf("hostnames: [p0.example]\norigins: [{url: http://10.9.9.9:%d}]\n", 1000+i%1000)), 0o644)
			t, err := LoadDir(dir, prev, Options{MaxNamesPerCertificate: 100})
			if err != nil || len(t.Properties()) != 10_000 {
				b.Fatal(err, t.Problems())
			}
			prev = t
		}
	})
}
