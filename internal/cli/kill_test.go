package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
)

// childEnv names the config of the node TestHelperProcessNode runs.
const childEnv = "CHILD_NODE_CONFIG_FOR_TEST" // not EDGE_: that prefix sets config keys

// TestHelperProcessNode is not a test of its own: run by a fault test as
// a child process (the test binary again), it is a node as `edge serve`
// runs it, stopped by SIGTERM or killed for real. Without childEnv it
// does nothing.
func TestHelperProcessNode(t *testing.T) {
	config := os.Getenv(childEnv)
	if config == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, []string{"serve", "--config", config}, io.Discard, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childNode is a node in a child process.
type childNode struct {
	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	done chan struct{} // closed when it exited
}

// startChild runs the node of dir's edge.yaml in a child process until
// the test ends.
func startChild(t *testing.T, dir string) *childNode {
	t.Helper()
	c := &childNode{log: &testutil.SyncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperProcessNode$")
	c.cmd.Env = append(os.Environ(), childEnv+"="+filepath.Join(dir, "edge.yaml"))
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// signal sends sig and returns how long the node took to exit, or fails
// the test after limit.
func (c *childNode) signal(t *testing.T, sig os.Signal, limit time.Duration) time.Duration {
	t.Helper()
	at := time.Now()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
		return time.Since(at)
	case <-time.After(limit):
		t.Fatalf("the node did not exit within %v of %v\n%s", limit, sig, c.log)
		return 0
	}
}

// validationGate stands where the DNS sends a test name: on ip and the
// fleet's HTTP port, it holds Pebble's validation requests until opened
// (an order that stays in flight), passes every other request (a
// preflight probe) at once, and forwards to whichever node answers.
type validationGate struct {
	open   chan struct{}
	asked  atomic.Int32 // validation requests seen
	closed atomic.Bool
}

func startGate(t *testing.T, ip string, port int, nodes []string) *validationGate {
	t.Helper()
	g := &validationGate{open: make(chan struct{})}
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		t.Fatal(err)
	}
	dialAny := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		var err error
		for _, n := range nodes {
			var c net.Conn
			if c, err = d.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", n, port)); err == nil {
				return c, nil
			}
		}
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "node"})
	proxy.Transport = &http.Transport{DialContext: dialAny, DisableKeepAlives: true}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.UserAgent(), "Pebble-VA") {
			g.asked.Add(1)
			select {
			case <-g.open:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { g.Open(); srv.Close() })
	return g
}

// Open lets held and later validations through.
func (g *validationGate) Open() {
	if g.closed.CompareAndSwap(false, true) {
		close(g.open)
	}
}

// TestFleetNodeSIGKILLedMidOrder: three nodes on one etcd, the first a
// real child process killed with SIGKILL while the CA validates its
// order. Nothing is lost, nothing stays "renewing", and another node
// finishes the renewal once the dead node's lock lease expires.
func TestFleetNodeSIGKILLedMidOrder(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	o := namedOrigin(t, "o")
	props := map[string]string{"k.yaml": fmt.Sprintf("hostnames: [k.kill.example]\norigins: [{url: %s}]\ntls: {certificate: k, renew_automation: true}\n", o.URL)}
	gate := startGate(t, "127.0.0.9", f.port, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"})
	f.pebble.SetHost("k.kill.example", "127.0.0.9")

	child := startChild(t, f.prepare(0, "{check_interval: 1s}", props))
	testutil.WaitForWithin(t, 60*time.Second, "the child's order reaching validation", func() bool { return gate.asked.Load() > 0 || child.exited() })
	if child.exited() {
		t.Fatalf("the child exited:\n%s", child.log)
	}
	if !strings.Contains(child.log.String(), `"msg":"renewing certificate"`) {
		t.Fatalf("the validation is not the child's order:\n%s", child.log)
	}
	a := f.start(1, "{check_interval: 1s}", props)
	f.start(2, "{check_interval: 1s}", props)
	if _, c := a.api("GET", "/api/v1/certificates/k", nil); c["renewal"].(map[string]any)["state"] != "renewing" {
		t.Fatalf("before the kill: %v", c["renewal"])
	}
	child.signal(t, syscall.SIGKILL, 5*time.Second)
	killed := time.Now()
	gate.Open()

	c := a.waitCert("k", "active after the kill", status("active"))
	took := time.Since(killed)
	t.Logf("kill to active: %v (lock lease 10s)", took.Round(100*time.Millisecond))
	for _, n := range f.nodes {
		_, c := n.api("GET", "/api/v1/certificates/k", nil)
		if c["status"] != "active" || c["renewal"].(map[string]any)["state"] != "scheduled" || c["version"].(float64) != 2 {
			t.Errorf("%s: status %v, renewal %v, version %v", n.dir, c["status"], c["renewal"], c["version"])
		}
		n.waitServedChain("k.kill.example")
	}
	_, vs := a.api("GET", "/api/v1/certificates/k/versions", nil)
	if l := vs["versions"].([]any); len(l) != 2 || l[0].(map[string]any)["source"] != "self_signed" {
		t.Errorf("versions: %v", l)
	}
	renewedBy := 0
	for _, n := range f.nodes {
		renewedBy += strings.Count(n.log.String(), `"msg":"certificate issued"`)
	}
	if renewedBy != 1 || strings.Contains(child.log.String(), `"msg":"certificate issued"`) {
		t.Errorf("%d issuances by the live nodes, want 1; c %v", renewedBy, c)
	}
}

func (c *childNode) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
