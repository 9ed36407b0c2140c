package cli

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
)

// outageShutdown is limits.shutdown_timeout of the outage tests' node.
const outageShutdown = 3 * time.Second

// outageNode runs one node on the fleet's etcd serving a.out.example, with
// a short shutdown_timeout.
func outageNode(t *testing.T, f *fleet) *acmeNode {
	o := namedOrigin(t, "o")
	dir := f.prepare(0, "{enabled: false}", map[string]string{"a.yaml": outageProperty("a", o.URL)})
	cfg, err := os.ReadFile(filepath.Join(dir, "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"edge.yaml": string(cfg) + fmt.Sprintf("limits: {shutdown_timeout: %s}\n", outageShutdown)})
	n := &acmeNode{testNode: runNode(t, dir), pebble: f.pebble}
	f.nodes = append(f.nodes, n)
	return n
}

func outageProperty(name, origin string) string {
	return fmt.Sprintf("hostnames: [%s.out.example]\norigins: [{url: %s}]\ntls: {certificate: %s}\n", name, origin, name)
}

// handshake connects to the node's HTTPS port for sni and returns the
// leaf's names (nil on a failed handshake) and how long it took.
func (n *testNode) handshake(sni string) ([]string, time.Duration, error) {
	start := time.Now()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 15 * time.Second}, "tcp", n.addrs.HTTPS,
		&tls.Config{ServerName: sni, InsecureSkipVerify: true})
	took := time.Since(start)
	if err != nil {
		return nil, took, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].DNSNames, took, nil
}

// timedAPI is a bounded API call: its status (0 when it did not answer in
// 30 s) and how long it took.
func (n *testNode) timedAPI(method, path, body string) (int, time.Duration) {
	req, _ := http.NewRequest(method, "http://"+n.addrs.Admin+path, bytes.NewReader([]byte(body)))
	if tok := n.token(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// duringOutage stops etcd under a node that serves a.out.example, then
// checks what must keep working and what must fail cleanly: a handshake
// for the loaded certificate, a reload adding b.out.example (whose
// certificate cannot be created nor loaded), a handshake for it, and an
// API write.
func duringOutage(t *testing.T, f *fleet, n *acmeNode) {
	t.Helper()
	names, _, err := n.handshake("a.out.example")
	if err != nil || !slices.Contains(names, "a.out.example") {
		t.Fatalf("before the outage: %v %v", names, err)
	}
	f.etcd.Stop()
	testutil.WaitForWithin(t, 20*time.Second, "readyz degraded", func() bool {
		_, body := n.api("GET", "/readyz", nil, "")
		return body["degraded"] == true
	})
	names, took, err := n.handshake("a.out.example")
	if err != nil || !slices.Contains(names, "a.out.example") {
		t.Errorf("handshake for the loaded certificate during the outage: %v %v", names, err)
	}
	t.Logf("outage: handshake for a loaded certificate %v", took.Round(time.Millisecond))

	o := namedOrigin(t, "o2")
	writeFiles(t, n.props, map[string]string{"b.yaml": outageProperty("b", o.URL)})
	start := time.Now()
	testutil.WaitForWithin(t, 20*time.Second, "the reload applied", func() bool {
		_, body := n.api("GET", "/api/v1/properties", nil)
		return strings.Contains(fmt.Sprint(body), "b.out.example")
	})
	t.Logf("outage: property reload applied after %v", time.Since(start).Round(time.Millisecond))
	names, took, err = n.handshake("b.out.example")
	if took > 10*time.Second {
		t.Errorf("handshake for a certificate not loaded took %v", took)
	}
	t.Logf("outage: handshake for a certificate not loaded: %v names %v, error %v", took.Round(time.Millisecond), names, err)

	code, took := n.timedAPI("POST", "/api/v1/certificates/request",
		`{"name": "w", "challenge": "http", "authority": "lets_encrypt", "common_name": "w.out.example"}`)
	if code != 503 || took > 15*time.Second {
		t.Errorf("an API write during the outage: status %d after %v, want a 5xx, promptly", code, took)
	}
	t.Logf("outage: API write answered %d after %v", code, took.Round(time.Millisecond))
}

// TestEtcdOutageThenSIGTERM: with etcd down, a node keeps serving what it
// has, fails what needs the store cleanly, and stops within
// limits.shutdown_timeout + 1 s of SIGTERM (its context ending, as
// main's signal.NotifyContext does).
func TestEtcdOutageThenSIGTERM(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	n := outageNode(t, f)
	duringOutage(t, f, n)
	start := time.Now()
	n.cancel()
	select {
	case err := <-n.done:
		n.done <- err // for the cleanup's stop
	case <-time.After(outageShutdown + time.Second):
		t.Fatalf("still running %v after SIGTERM during the outage (shutdown_timeout %v)\n%s", time.Since(start), outageShutdown, n.log)
	}
	t.Logf("outage: exit %v after SIGTERM (shutdown_timeout %v)", time.Since(start).Round(time.Millisecond), outageShutdown)
}

// TestEtcdOutageConverges: the same outage, then etcd comes back: with no
// restart the node is ready again, creates and serves the certificate the
// reload named, and accepts API writes.
func TestEtcdOutageConverges(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	n := outageNode(t, f)
	duringOutage(t, f, n)
	f.etcd.Restart()
	back := time.Now()
	testutil.WaitForWithin(t, 60*time.Second, "convergence after the outage", func() bool {
		_, body := n.api("GET", "/readyz", nil, "")
		if body["degraded"] != false {
			return false
		}
		names, _, err := n.handshake("b.out.example")
		return err == nil && slices.Contains(names, "b.out.example")
	})
	t.Logf("converged %v after etcd came back (ready, the reload's certificate served)", time.Since(back).Round(time.Millisecond))
	if code, _ := n.timedAPI("POST", "/api/v1/certificates/request",
		`{"name": "w", "challenge": "http", "authority": "lets_encrypt", "common_name": "w.out.example"}`); code != 202 {
		t.Errorf("an API write after the outage: %d", code)
	}
	if names, _, err := n.handshake("a.out.example"); err != nil || !slices.Contains(names, "a.out.example") {
		t.Errorf("after the outage: %v %v", names, err)
	}
	start := time.Now()
	if err := n.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if d := time.Since(start); d > outageShutdown+time.Second {
		t.Errorf("exit took %v", d)
	}
}
