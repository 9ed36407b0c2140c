package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
)

// servedLeaf makes a fresh TLS handshake for sni (no connection reuse) and
// returns the leaf served.
func (n *testNode) servedLeaf(sni string) *x509.Certificate {
	n.t.Helper()
	conn, err := tls.Dial("tcp", n.addrs.HTTPS, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		n.t.Fatalf("handshake for %s: %v", sni, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// writePEM writes a certificate and its key to files and returns their paths.
func writePEM(t *testing.T, dir, name string, c *x509.Certificate, k *ecdsa.PrivateKey) (string, string) {
	t.Helper()
	cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cf, []byte(certPEM(c)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, []byte(keyPEM(t, k)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cf, kf
}

// opensslSelfSigned is what `openssl req -x509 -newkey ... -subj /CN=host
// -addext subjectAltName=DNS:host` makes: self-signed, CA:TRUE.
func opensslSelfSigned(t *testing.T, host string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestRotateAndRollback(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	n := startNode(t, "", map[string]string{
		"shop.yaml": fmt.Sprintf("hostnames: [shop.example]\norigins: [{url: %s}]\ntls: {certificate: shop}\n", o.URL),
		"w.yaml":    fmt.Sprintf("hostnames: [\"*.w.example\"]\norigins: [{url: %s}]\ntls: {certificate: wild}\n", o.URL),
	})
	dir := t.TempDir()
	now := time.Now()
	root, rootKey := mkCert(t, "Rotation Root", nil, nil, true, now.Add(-time.Hour), now.Add(48*time.Hour))
	leaf1, key1 := mkCert(t, "shop.example", root, rootKey, false, now.Add(-time.Hour), now.Add(24*time.Hour))
	leaf2, key2 := mkCert(t, "shop.example", root, rootKey, false, now.Add(-time.Hour), now.Add(24*time.Hour))
	expired, expiredKey := mkCert(t, "shop.example", root, rootKey, false, now.Add(-48*time.Hour), now.Add(-time.Hour))
	c1, k1 := writePEM(t, dir, "v1", leaf1, key1)
	c2, k2 := writePEM(t, dir, "v2", leaf2, key2)
	ce, ke := writePEM(t, dir, "expired", expired, expiredKey)

	bootstrap := n.servedLeaf("shop.example")
	if !strings.Contains(bootstrap.Issuer.String(), "Edge self-signed") {
		t.Fatalf("want the bootstrap first, got %s", bootstrap.Issuer)
	}
	// The property named "shop" before it was uploaded: the upload replaces
	// the bootstrap, which stays as version 1.
	code, out := n.cli("cert", "upload", "--name", "shop", "--cert", c1, "--key", k1)
	if code != 0 || !strings.Contains(out, "replaced the self-signed bootstrap certificate shop") {
		t.Fatalf("upload over the bootstrap: %d %s", code, out)
	}
	if got := n.servedLeaf("shop.example"); !got.Equal(leaf1) {
		t.Fatalf("after upload: served %s serial %v, want the upload", got.Issuer, got.SerialNumber)
	}
	// A second upload under the name is refused: it is no bootstrap now.
	if code, out := n.cli("cert", "upload", "--name", "shop", "--cert", c2, "--key", k2); code != 1 || !strings.Contains(out, "edge cert rotate") {
		t.Errorf("second upload: %d %s", code, out)
	}

	// Rotate: the next handshake serves the new version.
	if code, out := n.cli("cert", "rotate", "shop", "--cert", c2, "--key", k2, "--json"); code != 0 || !strings.Contains(out, `"version": 3`) {
		t.Fatalf("rotate: %d %s", code, out)
	}
	if got := n.servedLeaf("shop.example"); !got.Equal(leaf2) {
		t.Fatalf("after rotate: served serial %v, want version 3's", got.SerialNumber)
	}
	// Bad versions are refused, naming the problem, and v3 keeps serving.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"key mismatch", []string{"rotate", "shop", "--cert", c1, "--key", k2}, "private_key_pem: the private key matches no certificate"},
		{"expired", []string{"rotate", "shop", "--cert", ce, "--key", ke}, "expired"},
		{"not PEM", []string{"rotate", "shop", "--cert", k1, "--key", k1}, "certificate_pem:"},
		{"unknown", []string{"rotate", "nope", "--cert", c1, "--key", k1}, "not found"},
		{"rollback to serving", []string{"rollback", "shop", "--version", "3"}, "version 3 is the one serving"},
		{"rollback to future", []string{"rollback", "shop", "--version", "9"}, "has versions 1 to 3"},
	} {
		if code, out := n.cli(append([]string{"cert"}, tc.args...)...); code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %d %q, want exit 1 with %q", tc.name, code, out, tc.want)
		}
		if got := n.servedLeaf("shop.example"); !got.Equal(leaf2) {
			t.Fatalf("%s replaced the serving version", tc.name)
		}
	}
	if code, _ := n.cli("cert", "rollback", "shop"); code != 2 {
		t.Errorf("rollback without --version: exit %d, want 2", code)
	}
	if code, body := n.api("POST", "/api/v1/certificates/shop/rollback", map[string]any{}); code != 400 || !strings.Contains(errMsg(body), "version: required") {
		t.Errorf("rollback {}: %d %v", code, body)
	}

	// Rollback: version 2 serves again, as version 4.
	if code, out := n.cli("cert", "rollback", "shop", "--version", "2", "--json"); code != 0 || !strings.Contains(out, `"version": 4`) {
		t.Fatalf("rollback: %d %s", code, out)
	}
	if got := n.servedLeaf("shop.example"); !got.Equal(leaf1) {
		t.Fatalf("after rollback: served serial %v, want version 2's", got.SerialNumber)
	}
	_, vs := n.api("GET", "/api/v1/certificates/shop/versions", nil)
	l := vs["versions"].([]any)
	if len(l) != 4 || l[3].(map[string]any)["rollback_of"] != 2.0 || l[0].(map[string]any)["source"] != "self_signed" {
		t.Errorf("versions after rollback: %v", l)
	}
	if code, out := n.cli("cert", "versions", "shop"); code != 0 || !strings.Contains(out, "ROLLBACK_OF") || !strings.Contains(strings.TrimSpace(out), "  2") {
		t.Errorf("cert versions: %d %s", code, out)
	}
	if _, c := n.api("GET", "/api/v1/certificates/shop", nil); c["status"] != "active" || c["bootstrap"] != nil {
		t.Errorf("record after rollback: %v", c)
	}

	// An uploaded wildcard rotates in place.
	w1, wk1 := mkCert(t, "*.w.example", root, rootKey, false, now.Add(-time.Hour), now.Add(24*time.Hour))
	w2, wk2 := mkCert(t, "*.w.example", root, rootKey, false, now.Add(-time.Hour), now.Add(24*time.Hour))
	wc1, wkf1 := writePEM(t, dir, "w1", w1, wk1)
	wc2, wkf2 := writePEM(t, dir, "w2", w2, wk2)
	if code, out := n.cli("cert", "upload", "--name", "wild", "--cert", wc1, "--key", wkf1); code != 0 {
		t.Fatalf("wildcard upload: %d %s", code, out)
	}
	if got := n.servedLeaf("a.w.example"); !got.Equal(w1) {
		t.Fatal("wildcard upload not served")
	}
	if code, out := n.cli("cert", "rotate", "wild", "--cert", wc2, "--key", wkf2); code != 0 {
		t.Fatalf("wildcard rotate: %d %s", code, out)
	}
	if got := n.servedLeaf("b.w.example"); !got.Equal(w2) {
		t.Fatal("wildcard rotation not served")
	}
	// A rotation that leaves a property's hostname uncovered is served
	// (the operator asked) but warned about.
	if code, out := n.cli("cert", "rotate", "wild", "--cert", c2, "--key", k2); code != 0 || !strings.Contains(out, "does not cover") || !strings.Contains(out, "*.w.example (w)") {
		t.Errorf("uncovering rotation: %d %s", code, out)
	}
}

func TestSelfSignedCATrueUpload(t *testing.T) {
	t.Parallel()
	n := startNode(t, "", nil)
	dir := t.TempDir()
	c, k := opensslSelfSigned(t, "lab.example")
	cf, kf := writePEM(t, dir, "lab", c, k)
	code, out := n.cli("cert", "upload", "--name", "lab", "--cert", cf, "--key", kf)
	if code != 0 || !strings.Contains(out, "warning: the certificate is self-signed and marked CA:TRUE") {
		t.Fatalf("openssl-style self-signed upload: %d %s", code, out)
	}
	if _, v := n.api("GET", "/api/v1/certificates/lab", nil); v["type"] != "server" || v["warnings"] != nil {
		t.Errorf("stored: %v (warnings belong to the write's answer only)", v)
	}
	// A CA certificate that is not self-signed, with its key: refused,
	// and the hint no longer says to upload it as type ca with the key.
	now := time.Now()
	root, rootKey := mkCert(t, "R", nil, nil, true, now.Add(-time.Hour), now.Add(time.Hour))
	inter, interKey := mkCert(t, "Sub CA", root, rootKey, true, now.Add(-time.Hour), now.Add(time.Hour))
	icf, ikf := writePEM(t, dir, "inter", inter, interKey)
	code, out = n.cli("cert", "upload", "--name", "sub", "--cert", icf, "--key", ikf)
	if code != 1 || !strings.Contains(out, "is a CA certificate (CA:TRUE) issued by CN=R, not a server certificate") {
		t.Errorf("intermediate with key: %d %s", code, out)
	}
}

// Issue 11 item 10: wrong methods get 405 with Allow, filters are
// checked, and the CLI refuses a bogus --status.
func TestAPIMethodsAndFilters(t *testing.T) {
	t.Parallel()
	n := startNode(t, "", nil)
	code, body := n.api("PUT", "/api/v1/certificates", map[string]any{})
	if code != 405 || !strings.Contains(errMsg(body), "use GET or POST") {
		t.Errorf("PUT /api/v1/certificates: %d %v", code, body)
	}
	if code, _ := n.api("GET", "/api/v1/certificates/x/rollback", nil); code != 405 {
		t.Errorf("GET .../rollback: %d, want 405", code)
	}
	if code, body := n.api("GET", "/api/v1/certificates?status=bogus", nil); code != 400 || !strings.Contains(errMsg(body), "status: \"bogus\"") {
		t.Errorf("status=bogus: %d %v", code, body)
	}
	if code, out := n.cli("cert", "list", "--status", "bogus"); code != 2 || !strings.Contains(out, "--status \"bogus\"") {
		t.Errorf("cert list --status bogus: %d %s", code, out)
	}
}

// Issue 11 item 10: an upload with auto_renew acme shows renew_at at once.
func TestUploadShowsRenewAt(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	n := startNode(t, "", nil)
	if code, body := n.api("POST", "/api/v1/certificates", map[string]any{"name": "up", "certificate_pem": pki.leafPEM + pki.interPEM,
		"private_key_pem": pki.leafKeyPEM, "auto_renew": "acme"}); code != 201 {
		t.Fatalf("upload: %d %v", code, body)
	}
	var c map[string]any
	testutil.WaitFor(t, "renew_at shown", func() bool {
		_, c = n.api("GET", "/api/v1/certificates/up", nil)
		return c["renewal"].(map[string]any)["renew_at"] != nil
	}, func() string { return fmt.Sprint(c) })
	r := c["renewal"].(map[string]any)
	at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r["renew_at"]))
	notAfter, _ := time.Parse(time.RFC3339Nano, c["not_after"].(string))
	// 13 hours of life: renewed with half of it left.
	if want := notAfter.Add(-13 * time.Hour / 2); at.Sub(want).Abs() > time.Minute || r["state"] != "scheduled" {
		t.Errorf("renewal %v, want renew_at about %s", r, want)
	}
	if code, out := n.cli("cert", "show", "up"); code != 0 || !strings.Contains(out, "renew_at:") || !strings.Contains(out, "reason:") {
		t.Errorf("cert show: %d %s", code, out)
	}
}
