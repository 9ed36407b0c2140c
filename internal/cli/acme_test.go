package cli

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/pebbletest"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/store"
)

// acmeNode is a node whose ACME CA is an in-process Pebble.
type acmeNode struct {
	*testNode
	pebble *pebbletest.Pebble
}

type acmeOpts struct {
	pebble    pebbletest.Options
	extra     string            // more config
	renewal   string            // the renewal mapping; "": {check_interval: 1s}
	props     map[string]string // property files
	before    func(dir string)  // runs before the node starts
	preflight bool
}

func startACMENode(t *testing.T, o acmeOpts) *acmeNode {
	t.Helper()
	port := pebbletest.FreePort(t)
	o.pebble.HTTPPort = port
	p := pebbletest.Start(t, o.pebble)
	dir := t.TempDir()
	cfg := strings.Replace(baseConfig, `http: "127.0.0.1:0"`, fmt.Sprintf(`http: "127.0.0.1:%d"`, port), 1) +
		acmeConfig(p, port, cmpOr(o.renewal, "{check_interval: 1s}"), o.preflight) +
		"node: {name: test-node, edge_hostname: edge.test}\n"
	cfg = strings.Replace(cfg, "node: {name: test-node}\n", "", 1) + o.extra
	writeFiles(t, dir, map[string]string{"edge.yaml": cfg})
	os.MkdirAll(filepath.Join(dir, "props"), 0o755)
	writeFiles(t, filepath.Join(dir, "props"), o.props)
	if o.before != nil {
		o.before(dir)
	}
	// Every ACME test runs a private CA with the default staging settings
	// (issue 11): its retries must stay with it. Checked before the node
	// starts, so a regression fails here instead of reaching the internet.
	if c, errs := config.Load(filepath.Join(dir, "edge.yaml")); len(errs) > 0 || c.ACME.StagingDirectory != "" {
		t.Fatalf("a private CA with default staging settings: staging %q, errors %v", c.ACME.StagingDirectory, errs)
	}
	return &acmeNode{testNode: runNode(t, dir), pebble: p}
}

// waitCert polls the API until the certificate is in a state cond accepts.
func (n *acmeNode) waitCert(name, what string, cond func(c map[string]any) bool) map[string]any {
	n.t.Helper()
	var last map[string]any
	testutil.WaitForWithin(n.t, 60*time.Second, "certificate "+name+" "+what, func() bool {
		code, c := n.api("GET", "/api/v1/certificates/"+name, nil)
		last = c
		return code == 200 && cond(c)
	}, func() string { return fmt.Sprintf("last %v\n%s", last, n.log) })
	return last
}

// waitEvent polls the events until one of type typ is there: the event is
// emitted just after the certificate's record is stored, so a test that
// saw the record may ask a moment too early.
func (n *testNode) waitEvent(typ string) {
	n.t.Helper()
	var evs map[string]any
	testutil.WaitFor(n.t, "a "+typ+" event", func() bool {
		_, evs = n.api("GET", "/api/v1/events", nil)
		return strings.Contains(fmt.Sprint(evs), typ)
	}, func() string { return fmt.Sprint(evs) })
}

func status(want string) func(map[string]any) bool {
	return func(c map[string]any) bool { return c["status"] == want }
}

// servedChain returns the chain served for sni now, verified against
// Pebble's root.
func (n *acmeNode) servedChain(sni string) *x509.Certificate {
	n.t.Helper()
	leaf, err := n.verifiedChain(sni)
	if err != nil {
		n.t.Fatalf("served certificate for %s does not verify against Pebble's root: %v", sni, err)
	}
	return leaf
}

// waitServedChain is servedChain right after a certificate was stored: the
// handshake index follows the commit (the store's change hook, or the etcd
// watch on another node), so a test that has just seen the record active
// through the API may ask a moment too early. It asks again for up to 5 s.
func (n *acmeNode) waitServedChain(sni string) *x509.Certificate {
	n.t.Helper()
	var leaf *x509.Certificate
	var err error
	testutil.WaitForWithin(n.t, 5*time.Second, "the served certificate for "+sni+" to verify against Pebble's root", func() bool {
		leaf, err = n.verifiedChain(sni)
		return err == nil
	}, func() string { return fmt.Sprintf("%v\n%s", err, n.log) })
	return leaf
}

func (n *acmeNode) verifiedChain(sni string) (*x509.Certificate, error) {
	n.t.Helper()
	r, _ := n.get(n.client(), "https://"+sni+"/")
	certs := r.TLS.PeerCertificates
	roots := x509.NewCertPool()
	roots.AddCert(n.pebble.Root())
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{DNSName: sni, Roots: roots, Intermediates: inter})
	return certs[0], err
}

func TestBootstrapFlow(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "shop")
	n := startACMENode(t, acmeOpts{
		preflight: true,
		props: map[string]string{"shop.yaml": fmt.Sprintf(
			"hostnames: [shop.example, www.shop.example]\norigins: [{url: %s}]\ntls: {certificate: shop, renew_automation: true, redirect_http: true}\n", o.URL)},
		before: func(dir string) {
			// The operator stored a self-signed bootstrap with 20 days left.
			st, err := store.OpenBolt(filepath.Join(dir, "data", "edge.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			v, _ := cert.SelfSigned([]string{"bootstrap.invalid"}, 20*24*time.Hour, time.Now())
			if err := cert.NewCerts(st).Create(context.Background(), &cert.Certificate{Name: "shop", Type: "server",
				AutoRenew: "acme", Status: "pending", Renewal: cert.Renewal{State: "scheduled"}}, v); err != nil {
				t.Fatal(err)
			}
		},
	})
	c := n.waitCert("shop", "active", status("active"))
	if got := fmt.Sprint(c["subject_names"]); got != "[shop.example www.shop.example]" {
		t.Errorf("SAN %s, want every property hostname", got)
	}
	if c["source"] != "acme" || c["version"].(float64) != 2 || c["renewal"].(map[string]any)["state"] != "scheduled" {
		t.Errorf("after issuance: %v", c)
	}
	// Served on the next handshake, chaining to Pebble's root.
	leaf := n.waitServedChain("www.shop.example")
	if !slices.Equal(leaf.DNSNames, []string{"shop.example", "www.shop.example"}) {
		t.Errorf("served SAN %v", leaf.DNSNames)
	}
	// The bootstrap is kept as version 1.
	_, vs := n.api("GET", "/api/v1/certificates/shop/versions", nil)
	if l := vs["versions"].([]any); len(l) != 2 || l[0].(map[string]any)["source"] != "self_signed" {
		t.Errorf("versions: %v", l)
	}
	// Announced: event and metric.
	n.waitEvent("certificate.issued")

	// A hostname added to the property: reissued with the new SAN list.
	writeFiles(t, n.props, map[string]string{"shop.yaml": fmt.Sprintf(
		"hostnames: [shop.example, www.shop.example, m.shop.example]\norigins: [{url: %s}]\ntls: {certificate: shop, renew_automation: true}\n", o.URL)})
	c = n.waitCert("shop", "reissued with m.shop.example", func(c map[string]any) bool {
		return strings.Contains(fmt.Sprint(c["subject_names"]), "m.shop.example") && c["status"] == "active"
	})
	if c["version"].(float64) != 3 {
		t.Errorf("version %v after reissue, want 3", c["version"])
	}
	if leaf := n.waitServedChain("m.shop.example"); len(leaf.DNSNames) != 3 {
		t.Errorf("served SAN after reissue %v", leaf.DNSNames)
	}
	n.waitEvent("certificate.renewed")
}

func TestRequestFlow(t *testing.T) {
	t.Parallel()
	n := startACMENode(t, acmeOpts{preflight: true})
	n.pebble.SetHost("nowhere.example", "") // NXDOMAIN: does not reach the edge
	code, c := n.api("POST", "/api/v1/certificates/request", map[string]any{"name": "api", "challenge": "http",
		"authority": "lets_encrypt", "common_name": "API.example", "alternative_names": []string{"www.api.example", "api.example"}})
	if code != 202 || c["status"] != "pending" {
		t.Fatalf("request: %d %v", code, c)
	}
	c = n.waitCert("api", "active", status("active"))
	if got := fmt.Sprint(c["subject_names"]); got != "[api.example www.api.example]" {
		t.Errorf("SAN %s", got)
	}
	_, vs := n.api("GET", "/api/v1/certificates/api/versions", nil)
	pemChain := vs["versions"].([]any)[1].(map[string]any)["certificate_pem"].(string)
	verifyPEM(t, n.pebble, pemChain, "www.api.example")

	// A name that does not reach the edge: failed, naming it, no order.
	code, _ = n.cli("cert", "request", "--name", "lost", "--common-name", "ok.example", "--alt", "nowhere.example")
	if code != 0 {
		t.Fatalf("edge cert request: exit %d", code)
	}
	c = n.waitCert("lost", "failed", status("failed"))
	detail := c["status_detail"].(string)
	if !strings.Contains(detail, "nowhere.example (no DNS record)") || !strings.Contains(detail, "edge.test") || strings.Contains(detail, "ok.example (") {
		t.Errorf("status_detail %q should name nowhere.example and edge.test only", detail)
	}
	if r := c["renewal"].(map[string]any); r["attempts"].(float64) != 1 || r["next_attempt_at"] == nil {
		t.Errorf("renewal after failure: %v", r)
	}
	if strings.Contains(n.log.String(), `"msg":"ACME order failed"`) {
		t.Error("an order was placed though the preflight failed")
	}
	// Bad requests.
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"name": "x", "challenge": "dns", "authority": "lets_encrypt", "common_name": "a.example"}, "challenge:"},
		{map[string]any{"name": "x", "challenge": "http", "authority": "zerossl", "common_name": "a.example"}, "authority:"},
		{map[string]any{"name": "x", "challenge": "http", "authority": "lets_encrypt", "common_name": "*.a.example"}, "common_name:"},
		{map[string]any{"name": "x", "challenge": "http", "authority": "lets_encrypt", "common_name": "a.example", "alternative_names": []string{"b.example:80"}}, "alternative_names[0]:"},
		{map[string]any{"name": "api", "challenge": "http", "authority": "lets_encrypt", "common_name": "a.example"}, "already exists"},
	} {
		if code, body := n.api("POST", "/api/v1/certificates/request", tc.body); code/100 != 4 || !strings.Contains(errMsg(body), tc.want) {
			t.Errorf("%v: %d %s", tc.body, code, errMsg(body))
		}
	}
}

func verifyPEM(t *testing.T, p *pebbletest.Pebble, chain, name string) {
	t.Helper()
	var certs []*x509.Certificate
	rest := []byte(chain)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(p.Root())
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("chain does not verify: %v", err)
	}
}

func TestChallengeFailureBacksOffThenSucceeds(t *testing.T) {
	t.Parallel()
	// No preflight: the CA itself finds the name pointing elsewhere.
	n := startACMENode(t, acmeOpts{})
	n.pebble.SetHost("moved.example", "127.0.0.2") // nothing listens there
	code, _ := n.api("POST", "/api/v1/certificates/request", map[string]any{"name": "moved", "challenge": "http",
		"authority": "lets_encrypt", "common_name": "moved.example"})
	if code != 202 {
		t.Fatal(code)
	}
	c := n.waitCert("moved", "failed", status("failed"))
	detail := c["status_detail"].(string)
	if !strings.Contains(detail, "could not reach moved.example") || !strings.Contains(detail, "edge.test") {
		t.Errorf("status_detail %q", detail)
	}
	r := c["renewal"].(map[string]any)
	next, _ := time.Parse(time.RFC3339Nano, r["next_attempt_at"].(string))
	if wait := time.Until(next); wait < 30*time.Second || wait > 2*time.Minute {
		t.Errorf("first backoff %s, want about 1m", wait)
	}
	n.waitEvent("certificate.failed")
	// Fixed: DNS now points here; the operator renews at once.
	n.pebble.SetHost("moved.example", "127.0.0.1")
	if code, out := n.cli("cert", "renew", "moved"); code != 0 {
		t.Fatalf("edge cert renew: %d %s", code, out)
	}
	c = n.waitCert("moved", "active", status("active"))
	if c["status_detail"] != "" || c["renewal"].(map[string]any)["attempts"].(float64) != 0 {
		t.Errorf("after success: %v", c)
	}
}

func TestShortLivedCertificatesRenewThemselves(t *testing.T) {
	t.Parallel()
	n := startACMENode(t, acmeOpts{pebble: pebbletest.Options{Validity: 12 * time.Second}, renewal: "{check_interval: 1s, ari: false}"})
	n.api("POST", "/api/v1/certificates/request", map[string]any{"name": "short", "challenge": "http",
		"authority": "lets_encrypt", "common_name": "short.example"})
	first := n.waitCert("short", "issued", status("active"))
	// 12 s of life: renewed with half of it left, so within about 6 s.
	n.waitCert("short", "renewed", func(c map[string]any) bool { return c["version"].(float64) > first["version"].(float64) })
}

func TestARIWindowRecorded(t *testing.T) {
	t.Parallel()
	n := startACMENode(t, acmeOpts{renewal: "{check_interval: 1s, ari: true}"})
	n.api("POST", "/api/v1/certificates/request", map[string]any{"name": "ari", "challenge": "http",
		"authority": "lets_encrypt", "common_name": "ari.example"})
	c := n.waitCert("ari", "given an ARI window", func(c map[string]any) bool {
		r := c["renewal"].(map[string]any)
		return c["status"] == "active" && r["ari_window"] != nil
	})
	r := c["renewal"].(map[string]any)
	w := r["ari_window"].(map[string]any)
	start, _ := time.Parse(time.RFC3339Nano, w["start"].(string))
	end, _ := time.Parse(time.RFC3339Nano, w["end"].(string))
	sel, _ := time.Parse(time.RFC3339Nano, r["ari_selected_at"].(string))
	if sel.Before(start) || sel.After(end) {
		t.Errorf("selected %s outside the window %s..%s", sel, start, end)
	}
}

func TestNonceRejectionStillIssues(t *testing.T) {
	t.Parallel()
	n := startACMENode(t, acmeOpts{pebble: pebbletest.Options{NonceRejectPercent: 30}})
	for _, name := range []string{"n1", "n2", "n3"} {
		n.api("POST", "/api/v1/certificates/request", map[string]any{"name": name, "challenge": "http",
			"authority": "lets_encrypt", "common_name": name + ".nonce.example", "alternative_names": []string{"www." + name + ".nonce.example"}})
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		n.waitCert(name, "active despite bad nonces", status("active"))
	}
}

func TestKilledDuringOrder(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	n := startACMENode(t, acmeOpts{props: map[string]string{"k.yaml": fmt.Sprintf(
		"hostnames: [k.example]\norigins: [{url: %s}]\ntls: {certificate: k, renew_automation: true}\n", o.URL)}})
	testutil.WaitForWithin(t, 30*time.Second, "a renewal started", func() bool { return strings.Contains(n.log.String(), "renewing certificate") })
	if err := n.stop(); err != nil { // mid-order
		t.Fatalf("stop during an order: %v", err)
	}
	n2 := &acmeNode{testNode: runNode(t, n.dir), pebble: n.pebble}
	c := n2.waitCert("k", "active after restart", status("active"))
	_, vs := n2.api("GET", "/api/v1/certificates/k/versions", nil)
	if l := vs["versions"].([]any); len(l) < 2 || l[0].(map[string]any)["source"] != "self_signed" {
		t.Errorf("versions after restart: %v", l)
	}
	if c["renewal"].(map[string]any)["state"] != "scheduled" {
		t.Errorf("stuck renewal state: %v", c["renewal"])
	}
	n2.waitServedChain("k.example")
}

var cmpOr = cmp.Or[string]

// acmeConfig is the acme, renewal and preflight config of a node whose CA
// is p and whose HTTP port (the challenge port) is port.
func acmeConfig(p *pebbletest.Pebble, port int, renewal string, preflight bool) string {
	return fmt.Sprintf(`acme:
  directory: %s
  ca_roots: %s
  agree_tos: true
  email: ops@edge.test
  challenge_port: %d
  resolver: %s
renewal: %s
preflight: {enabled: %v}
`, p.DirectoryURL, p.CARootsFile, port, p.DNS, renewal, preflight)
}
