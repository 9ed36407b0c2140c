package node

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeMetricsTableMatchesMetrics: the README's metrics table is the
// operator's list of what /metrics exposes (issue 18: it missed some).
// Every edge_ family a running node exposes is in the table, and every
// name in the table is one the code registers.
func TestReadmeMetricsTableMatchesMetrics(t *testing.T) {
	o := newRecordingOrigin(t)
	n := runTestNode(t, "", map[string]string{
		"shop.yaml":   "hostnames: [shop.example]\norigins: [{url: " + o.URL + "}]\ntls: {certificate: shop}\n",
		"cached.yaml": "hostnames: [cached.example]\norigins: [{url: " + o.URL + "}]\ncache: {enabled: true}\n",
	})
	for _, host := range []string{"shop.example", "cached.example", "unknown.example"} {
		req, _ := http.NewRequest("GET", "http://"+n.addrs.HTTP+"/", nil)
		req.Host = host
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	resp, err := http.Get("http://" + n.addrs.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exposed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (edge_[a-z0-9_]+) `).FindAllStringSubmatch(string(body), -1) {
		exposed[m[1]] = true
	}
	if len(exposed) == 0 {
		t.Fatalf("no edge_ metrics exposed:\n%s", body)
	}
	table := readmeMetrics(t)
	registered := registeredMetrics(t)
	for name := range exposed {
		if !table[name] {
			t.Errorf("/metrics exposes %s; the README's metrics table does not list it", name)
		}
	}
	for name := range registered {
		if !table[name] {
			t.Errorf("the code registers %s; the README's metrics table does not list it", name)
		}
	}
	for name := range table {
		if !registered[name] && !exposed[name] {
			t.Errorf("the README's metrics table lists %s, which no code registers", name)
		}
	}
}

// readmeMetrics returns the metric names of the README's "## Metrics" table.
func readmeMetrics(t *testing.T) map[string]bool {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatal("README has no ## Metrics section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	out := map[string]bool{}
	for _, l := range strings.Split(section, "\n") {
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		first := strings.Split(l, "|")[1]
		for _, m := range regexp.MustCompile("`(edge_[a-z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			out[m[1]] = true
		}
	}
	return out
}

// registeredMetrics returns the edge_ names the code gives a collector
// (Name: "edge_…" in prometheus options, or prometheus.NewDesc).
func registeredMetrics(t *testing.T) map[string]bool {
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(edge_[a-z0-9_]+)"`)
	out := map[string]bool{}
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no metric registrations found in the source")
	}
	return out
}
