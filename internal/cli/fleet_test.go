package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/pebbletest"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/store"
)

// fleet is edge nodes on 127.0.0.1, .2, .3 … sharing one HTTP port number
// (Pebble's VA dials one port), one etcd and one Pebble.
type fleet struct {
	t      *testing.T
	port   int
	etcd   *etcdtest.Etcd
	pebble *pebbletest.Pebble
	nodes  []*acmeNode
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{t: t, port: pebbletest.FreePort(t), etcd: etcdtest.Start(t)}
	f.pebble = pebbletest.Start(t, pebbletest.Options{HTTPPort: f.port})
	return f
}

// start runs node i (listening on 127.0.0.<i+1>) with props.
func (f *fleet) start(i int, renewal string, props map[string]string) *acmeNode {
	n := &acmeNode{testNode: runNode(f.t, f.prepare(i, renewal, props)), pebble: f.pebble}
	f.nodes = append(f.nodes, n)
	return n
}

// prepare writes the config and properties of node i and returns its
// directory.
func (f *fleet) prepare(i int, renewal string, props map[string]string) string {
	t := f.t
	ip := fmt.Sprintf("127.0.0.%d", i+1)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`node: {name: node-%d, edge_hostname: edge.test}
listen: {http: "%s:%d", https: "%s:0", admin: "%s:0"}
data_dir: ./data
properties_dir: ./props
log: {level: debug, format: json, access: false}
store:
  backend: etcd
  etcd: {endpoints: [%s], prefix: /fleet/, dial_timeout: 2s}
`, i+1, ip, f.port, ip, ip, f.etcd.Endpoint) + acmeConfig(f.pebble, f.port, renewal, true)
	writeFiles(t, dir, map[string]string{"edge.yaml": cfg})
	os.MkdirAll(filepath.Join(dir, "props"), 0o755)
	writeFiles(t, filepath.Join(dir, "props"), props)
	return dir
}

func TestFleetChallengeReachesAnotherNode(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	a := f.start(0, "{check_interval: 1s}", nil)
	// B and C never order: the order is A's.
	b := f.start(1, "{enabled: false}", nil)
	f.start(2, "{enabled: false}", nil)
	f.pebble.SetHost("far.fleet.example", "127.0.0.2") // the name points at B
	code, _ := a.api("POST", "/api/v1/certificates/request", map[string]any{"name": "far", "challenge": "http",
		"authority": "lets_encrypt", "common_name": "far.fleet.example"})
	if code != 202 {
		t.Fatal(code)
	}
	a.waitCert("far", "active", status("active"))
	if !strings.Contains(a.log.String(), `"msg":"renewing certificate"`) || strings.Contains(b.log.String(), `"msg":"renewing certificate"`) {
		t.Error("the order was not A's alone")
	}
	// B answered the CA's HTTP-01 requests for A's order. (In one test
	// process certmagic's challenge memory is shared, so B may find the
	// token there; across processes it reads the store:
	// TestChallengeAnsweredFromTheStore proves that path.)
	if blog := b.log.String(); !strings.Contains(blog, `"msg":"served key authentication","node":"node-2","identifier":"far.fleet.example"`) {
		t.Errorf("B did not answer the CA's HTTP-01 requests:\n%s", blog)
	}
	// Every node sees it at once, from the same store.
	for _, n := range f.nodes {
		if _, c := n.api("GET", "/api/v1/certificates/far", nil); c["status"] != "active" {
			t.Errorf("%s: %v", n.dir, c["status"])
		}
	}
}

func TestFleetRenewsEachCertificateOnce(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	o := namedOrigin(t, "o")
	props := map[string]string{}
	for i := range 10 {
		props[fmt.Sprintf("p%d.yaml", i)] = fmt.Sprintf("hostnames: [p%d.fleet.example]\norigins: [{url: %s}]\ntls: {certificate: c%d, renew_automation: true}\n", i, o.URL, i)
	}
	for i := range 3 {
		f.start(i, "{check_interval: 1s}", props)
	}
	for i := range 10 {
		c := f.nodes[0].waitCert(fmt.Sprintf("c%d", i), "active", status("active"))
		if c["version"].(float64) != 2 {
			t.Errorf("c%d: version %v, want 2 (bootstrap, then one issuance)", i, c["version"])
		}
	}
	issued := 0
	for _, n := range f.nodes {
		issued += strings.Count(n.log.String(), `"msg":"certificate issued"`)
	}
	if issued != 10 {
		t.Errorf("%d issuances across the fleet, want 10", issued)
	}
	_, evs := f.nodes[1].api("GET", "/api/v1/events", nil)
	if got := strings.Count(fmt.Sprint(evs), "certificate.issued"); got != 10 {
		t.Errorf("%d certificate.issued events, want 10", got)
	}
	// Every node serves every CA-issued certificate (etcd watch).
	for _, n := range f.nodes {
		for i := range 10 {
			n.waitServedChain(fmt.Sprintf("p%d.fleet.example", i))
		}
	}
}

func TestFleetLockHolderKilled(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	ctx := context.Background()
	// A node that started renewing "held" and died: its lock is bound to
	// its lease.
	ghost, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{f.etcd.Endpoint}, Prefix: "/fleet/", LockTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := cert.SelfSigned([]string{"held.fleet.example"}, 24*time.Hour, time.Now())
	rec := &cert.Certificate{Name: "held", Type: "server", AutoRenew: "acme", Status: "pending", CommonName: "held.fleet.example",
		Renewal: cert.Renewal{State: "scheduled"}}
	if err := cert.NewCerts(ghost).Create(ctx, rec, v); err != nil {
		t.Fatal(err)
	}
	if ok, _ := ghost.TryLock(ctx, "renew/"+rec.ID); !ok {
		t.Fatal("no lock")
	}
	b := f.start(0, "{check_interval: 1s}", nil)
	c := f.start(1, "{check_interval: 1s}", nil)
	// Both nodes found the renewal due and the lock held (no sleep to let
	// them try).
	for _, n := range []*acmeNode{b, c} {
		testutil.WaitFor(t, "a node finding the lock held", func() bool {
			return strings.Contains(n.log.String(), `"msg":"renewal lock not taken; not renewing here","node":"`) &&
				strings.Contains(n.log.String(), `"id":"`+rec.ID+`","held_elsewhere":true`)
		}, n.log.String)
	}
	if _, c := b.api("GET", "/api/v1/certificates/held", nil); c["status"] != "pending" {
		t.Fatalf("renewed while another node held the lock: %v", c)
	}
	ghost.Client().Close() // killed: no unlock, no lease revoke
	killed := time.Now()
	b.waitCert("held", "active after the lease expired", status("active"))
	if d := time.Since(killed); d < 2*time.Second {
		t.Errorf("renewed %s after the holder died, before its lease could expire", d)
	}
}

func TestFleetSurvivesEtcdRestart(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	o := namedOrigin(t, "o")
	props := map[string]string{"s.yaml": fmt.Sprintf("hostnames: [s.fleet.example]\norigins: [{url: %s}]\ntls: {certificate: s, renew_automation: true}\n", o.URL)}
	a := f.start(0, "{check_interval: 1s}", props)
	b := f.start(1, "{check_interval: 1s}", props)
	a.waitCert("s", "active", status("active"))
	before := a.waitServedChain("s.fleet.example")

	f.etcd.Stop()
	waitReady := func(n *acmeNode, degraded bool) map[string]any {
		t.Helper()
		var body map[string]any
		testutil.WaitForWithin(t, 20*time.Second, fmt.Sprintf("readyz degraded=%v", degraded), func() bool {
			var code int
			code, body = n.api("GET", "/readyz", nil, "")
			return code == 200 && body["degraded"] == degraded
		}, n.log.String)
		return body
	}
	body := waitReady(a, true)
	if !strings.Contains(fmt.Sprint(body["checks"]), "store unreachable") {
		t.Errorf("readyz: %v", body)
	}
	// Serving never stops: from memory, on both nodes, with the same certificate.
	for _, n := range []*acmeNode{a, b} {
		if got := n.servedChain("s.fleet.example"); !got.Equal(before) {
			t.Error("a different certificate served while etcd was down")
		}
		if r, body := n.get(n.client(), "https://s.fleet.example/"); r.StatusCode != 200 || !strings.HasPrefix(body, "o ") {
			t.Errorf("proxying while etcd was down: %d %q", r.StatusCode, body)
		}
	}

	f.etcd.Restart()
	waitReady(a, false)
	waitReady(b, false)
	// Nothing lost, and renewals resume.
	if code, _ := a.api("POST", "/api/v1/certificates/s/renew", nil); code != 202 {
		t.Fatalf("renew after etcd came back: %d", code)
	}
	c := a.waitCert("s", "renewed after the outage", func(c map[string]any) bool { return c["version"].(float64) == 3 && c["status"] == "active" })
	_, vs := a.api("GET", "/api/v1/certificates/s/versions", nil)
	if l := vs["versions"].([]any); len(l) != 3 {
		t.Errorf("versions after the outage: %d, want 3 (%v)", len(l), c)
	}
	_, evs := a.api("GET", "/api/v1/events", nil)
	if s := fmt.Sprint(evs); !strings.Contains(s, "store.unavailable") || !strings.Contains(s, "store.available") {
		t.Errorf("the outage's events were not stored: %s", s)
	}
	// B serves the renewed certificate too (watch resumed).
	testutil.WaitFor(t, "B serving the certificate renewed after the outage", func() bool {
		return b.servedChain("s.fleet.example").Equal(a.servedChain("s.fleet.example")) && !a.servedChain("s.fleet.example").Equal(before)
	}, b.log.String)
}

func TestStoreMigrateRoundTrip(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t)
	n := startNode(t, "", map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: a}\n"})
	n.api("POST", "/api/v1/certificates", map[string]any{"name": "lab", "self_signed": true, "hostnames": []string{"lab.example"}})
	_, before := n.api("GET", "/api/v1/certificates", nil)
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(n.dir, "edge.yaml")
	withEtcd := baseConfig + fmt.Sprintf("store: {backend: bbolt, etcd: {endpoints: [%s], prefix: /migrated/}}\n", etcd.Endpoint)
	writeFiles(t, n.dir, map[string]string{"edge.yaml": withEtcd})
	migrateTo := func(to string) string {
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{"store", "migrate", "--to", to, "--config", cfgPath}, &out, &errb); err != nil {
			t.Fatalf("migrate --to %s: %v %s", to, err, errb.String())
		}
		return out.String()
	}
	first := migrateTo("etcd")
	if again := migrateTo("etcd"); again != first || !strings.Contains(first, "copied") {
		t.Errorf("migrate is not idempotent: %q then %q", first, again)
	}
	// The node runs on etcd with the same certificates.
	writeFiles(t, n.dir, map[string]string{"edge.yaml": strings.Replace(withEtcd, "backend: bbolt", "backend: etcd", 1)})
	n2 := runNode(t, n.dir)
	_, onEtcd := n2.api("GET", "/api/v1/certificates", nil)
	if !sameCertificates(before, onEtcd) {
		t.Errorf("certificates differ on etcd:\n%v\n%v", before, onEtcd)
	}
	n2.stop()
	// And back into a fresh bbolt file.
	os.RemoveAll(filepath.Join(n.dir, "data", "edge.db"))
	writeFiles(t, n.dir, map[string]string{"edge.yaml": withEtcd})
	migrateTo("bbolt")
	n3 := runNode(t, n.dir)
	_, back := n3.api("GET", "/api/v1/certificates", nil)
	if !sameCertificates(before, back) {
		t.Errorf("certificates differ after the round trip")
	}
	if code, out := n3.cli("cert", "versions", "lab"); code != 0 || !strings.Contains(out, "self_signed") {
		t.Errorf("versions lost in the round trip: %s", out)
	}
}

// sameCertificates compares certificate lists on what a migration must keep.
func sameCertificates(a, b map[string]any) bool {
	key := func(m map[string]any) string {
		var out []string
		for _, c := range m["certificates"].([]any) {
			c := c.(map[string]any)
			j, _ := json.Marshal([]any{c["id"], c["name"], c["version"], c["not_after"], c["subject_names"]})
			out = append(out, string(j))
		}
		return strings.Join(out, "\n")
	}
	return key(a) == key(b)
}
