package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/testutil"
)

// testNode is a node run by Run from a config file in a temp dir.
type testNode struct {
	t     testing.TB
	dir   string
	addrs Addrs
	log   *testutil.SyncBuffer
	// stop stops the node as SIGTERM does (cancels Run's context) and
	// returns what Run returned; the test's end calls it too.
	stop func() error
}

const testConfig = `node: {name: test-node}
listen: {http: "127.0.0.1:0", https: "127.0.0.1:0", admin: "127.0.0.1:0"}
data_dir: ./data
properties_dir: ./props
log: {level: debug, format: json, access: true}
`

// runTestNode starts a node with testConfig plus extra and the property
// files, and stops it at the end of the test.
func runTestNode(t *testing.T, extra string, props map[string]string) *testNode {
	t.Helper()
	return runTestNodeReady(t, extra, props, nil)
}

// runTestNodeReady is runTestNode with onReady (if not nil) called by the
// node as it announces readiness, before Run goes on, and edits applied to
// the loaded config (for values YAML cannot override, such as "").
func runTestNodeReady(t testing.TB, extra string, props map[string]string, onReady func(Addrs), edits ...func(*config.Config)) *testNode {
	t.Helper()
	return runTestNodeOpts(t, extra, props, onReady, Options{}, edits...)
}

// runTestNodeOpts is runTestNodeReady with Options (Stderr and Version
// are the harness's).
func runTestNodeOpts(t testing.TB, extra string, props map[string]string, onReady func(Addrs), opts Options, edits ...func(*config.Config)) *testNode {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "props"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(testConfig+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range props {
		if err := os.WriteFile(filepath.Join(dir, "props", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, errs := config.Load(filepath.Join(dir, "edge.yaml"))
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	for _, edit := range edits {
		edit(cfg)
	}
	n := &testNode{t: t, dir: dir, log: &testutil.SyncBuffer{}}
	ready := make(chan Addrs, 1)
	ctx, cancel := context.WithCancel(WithReady(context.Background(), func(a Addrs) {
		if onReady != nil {
			onReady(a)
		}
		ready <- a
	}))
	done := make(chan error, 1)
	opts.Stderr, opts.Version = n.log, "test"
	go func() { done <- Run(ctx, cfg, opts) }()
	select {
	case n.addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("node exited at start: %v\n%s", err, n.log)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("node not ready\n%s", n.log)
	}
	n.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(40 * time.Second):
			return errors.New("node did not stop")
		}
	})
	t.Cleanup(func() {
		if err := n.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

// metric returns the text of the node's /metrics lines that start with
// prefix.
func (n *testNode) metric(prefix string) string {
	resp, err := http.Get("http://" + n.addrs.Admin + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// recordingOrigin counts the requests that reach it and keeps the last
// one's header.
type recordingOrigin struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last http.Header
}

func newRecordingOrigin(t *testing.T) *recordingOrigin {
	o := &recordingOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.mu.Lock()
		o.last = r.Header.Clone()
		o.mu.Unlock()
		fmt.Fprint(w, "origin")
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *recordingOrigin) lastHeader() http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}
