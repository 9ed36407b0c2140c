package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
)

// countingOrigin serves cacheable, tagged responses and counts requests.
func countingOrigin(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Surrogate-Key", "all "+strings.Trim(r.URL.Path, "/"))
		fmt.Fprintf(w, "%s #%d", r.URL.Path, k)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func cacheProps(origin string) map[string]string {
	return map[string]string{
		"c.yaml": fmt.Sprintf("hostnames: [c.example]\norigins: [{url: %s}]\ncache: {enabled: true}\n", origin),
		"p.yaml": fmt.Sprintf("hostnames: [p.example]\norigins: [{url: %s}]\n", origin),
	}
}

func TestCacheThroughTheNode(t *testing.T) {
	t.Parallel()
	o, hits := countingOrigin(t)
	n := startNode(t, "", cacheProps(o.URL))
	c := n.client()
	resp, body := n.get(c, "http://c.example/a")
	if body != "/a #1" || !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=") {
		t.Fatalf("miss: %q %v", body, resp.Header)
	}
	resp, body = n.get(c, "http://c.example/a")
	if body != "/a #1" || !strings.Contains(resp.Header.Get("Cache-Status"), "hit") || resp.Header.Get("Age") == "" {
		t.Fatalf("second GET is no hit: %q %v", body, resp.Header)
	}
	if resp.Header.Get("Surrogate-Key") != "" {
		t.Errorf("Surrogate-Key forwarded to the client: %v", resp.Header)
	}
	if _, body = n.get(c, "http://p.example/a"); body != "/a #2" {
		t.Errorf("a property without cache.enabled is served from a cache: %q", body)
	}
	// Purge by URL through the API, by tag through the CLI.
	if code, res := n.api("POST", "/api/v1/cache/purge", map[string]any{"urls": []string{"http://c.example/a"}}); code != 200 || res["purged"] != 1.0 {
		t.Fatalf("purge by URL: %d %v", code, res)
	}
	if _, body = n.get(c, "http://c.example/a"); body != "/a #3" {
		t.Errorf("after the purge: %q", body)
	}
	waitObjects(t, n, "memory", 1) // stored once its last byte is in
	if code, out := n.cli("cache", "purge", "--tag", "a"); code != 0 || !strings.Contains(out, "purged 1 objects") {
		t.Fatalf("edge cache purge --tag: %d %s", code, out)
	}
	if _, body = n.get(c, "http://c.example/a"); body != "/a #4" {
		t.Errorf("after the tag purge: %q", body)
	}
	if code, res := n.api("POST", "/api/v1/cache/purge", map[string]any{"urls": []string{"not a url"}}); code != 400 {
		t.Errorf("bad purge: %d %v", code, res)
	}
	code, out := n.cli("cache", "stats")
	if code != 0 || !strings.Contains(out, "c") || !strings.Contains(out, "HIT_RATIO") {
		t.Errorf("edge cache stats: %d %s", code, out)
	}
	if _, ready := n.api("GET", "/readyz", nil); ready["cache"] == nil {
		t.Errorf("/readyz has no cache detail: %v", ready)
	}
	if got := hits.Load(); got != 4 {
		t.Errorf("origin saw %d requests, want 4", got)
	}
	// Removing the property drops its objects.
	if err := os.Remove(filepath.Join(n.props, "c.yaml")); err != nil {
		t.Fatal(err)
	}
	waitObjects(t, n, "memory", 0)
}

func TestCacheDiskTierSurvivesRestart(t *testing.T) {
	t.Parallel()
	o, hits := countingOrigin(t)
	n := startNode(t, "cache: {memory_size: 8MiB, disk_size: 64MiB}\n", cacheProps(o.URL))
	if _, body := n.get(n.client(), "http://c.example/kept"); body != "/kept #1" {
		t.Fatalf("first GET: %q", body)
	}
	waitObjects(t, n, "disk", 1)
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	o.Close() // the origin is gone: only the disk tier can answer
	n2 := runNode(t, n.dir)
	resp, body := n2.get(n2.client(), "http://c.example/kept")
	if body != "/kept #1" || !strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("after restart: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if hits.Load() != 1 {
		t.Errorf("origin saw %d requests", hits.Load())
	}
}

// TestFleetPurge: a purge made on one node reaches the others through etcd
// within a second, and a node that was down applies it before it serves
// from its disk tier.
func TestFleetPurge(t *testing.T) {
	t.Parallel()
	o, _ := countingOrigin(t)
	e := etcdtest.Start(t)
	start := func(dir string, i int) *testNode {
		if dir == "" {
			dir = t.TempDir()
			cfg := strings.Replace(baseConfig, "node: {name: test-node}", fmt.Sprintf("node: {name: node-%d}", i), 1) +
				fmt.Sprintf("store:\n  backend: etcd\n  etcd: {endpoints: [%s], prefix: /fleet/, dial_timeout: 2s}\n", e.Endpoint) +
				"cache: {memory_size: 8MiB, disk_size: 64MiB}\n"
			writeFiles(t, dir, map[string]string{"edge.yaml": cfg})
			writeFiles(t, filepath.Join(dir, "props"), cacheProps(o.URL))
		}
		return runNode(t, dir)
	}
	nodes := []*testNode{start("", 0), start("", 1), start("", 2)}
	first := map[*testNode]string{}
	for _, n := range nodes {
		_, first[n] = n.get(n.client(), "http://c.example/f")
		if _, again := n.get(n.client(), "http://c.example/f"); again != first[n] {
			t.Fatalf("not cached on a node: %q then %q", first[n], again)
		}
	}
	// Node 2 goes down; node 0 purges; nodes 0 and 1 miss within a second.
	down := nodes[2]
	waitObjects(t, down, "disk", 1)
	if err := down.stop(); err != nil {
		t.Fatal(err)
	}
	purged := time.Now()
	if code, res := nodes[0].api("POST", "/api/v1/cache/purge", map[string]any{"prefixes": []string{"http://c.example/"}}); code != 200 {
		t.Fatalf("purge: %d %v", code, res)
	}
	n1 := nodes[1]
	testutil.WaitForWithin(t, time.Second, "the purge on node 1", func() bool {
		_, s := n1.api("GET", "/api/v1/cache", nil)
		m, _ := s["memory"].(map[string]any)
		return m["objects"] == 0.0
	})
	t.Logf("fleet purge latency (node 0 API call to node 1 purged): %s", time.Since(purged).Round(time.Millisecond))
	if _, body := n1.get(n1.client(), "http://c.example/f"); body == first[n1] {
		t.Errorf("node 1 still serves the purged object")
	}
	// Node 2 comes back with its disk tier: it must not serve the object.
	back := start(down.dir, 2)
	if resp, body := back.get(back.client(), "http://c.example/f"); body == first[down] {
		t.Errorf("a node back from down served an object purged while it was away: %q %v", body, resp.Header)
	}
}

// waitObjects waits until the node's tier holds want objects.
func waitObjects(t *testing.T, n *testNode, tier string, want int) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%d objects in the %s tier", want, tier), func() bool {
		_, s := n.api("GET", "/api/v1/cache", nil)
		m, _ := s[tier].(map[string]any)
		return m["objects"] == float64(want)
	})
}
