package proxy

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edge-cdn/edge/property"
)

// TestOriginCAFileFailsClosed: an origin ca_file that is unreadable when
// the origin is built (it passed the property check, then was replaced)
// trusts nothing; it never falls back to the system roots. The system
// roots are made to trust the origin (SSL_CERT_FILE, read once per
// process: hence the child process), so a fallback would be served.
func TestOriginCAFileFailsClosed(t *testing.T) {
	if os.Getenv("EDGE_CAFILE_CHILD") == "" {
		o := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret")) }))
		defer o.Close()
		ca := filepath.Join(t.TempDir(), "origin-ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.Certificate().Raw}), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestOriginCAFileFailsClosed$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "EDGE_CAFILE_CHILD=1", "SSL_CERT_FILE="+ca, "EDGE_ORIGIN="+o.URL, "EDGE_CA="+ca)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	origin, ca := os.Getenv("EDGE_ORIGIN"), os.Getenv("EDGE_CA")
	dir := t.TempDir()
	myCA := filepath.Join(dir, "ca.pem")
	pemBytes, _ := os.ReadFile(ca)
	files := map[string]string{
		"sys.yaml": prop("sys.example", "{url: "+origin+"}"),
		"ca.yaml":  prop("ca.example", "{url: "+origin+", ca_file: "+myCA+"}"),
	}
	for name, body := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	os.WriteFile(myCA, pemBytes, 0o644)
	tab, err := property.LoadDir(dir, nil, property.Options{})
	if err != nil || len(tab.Problems()) > 0 {
		t.Fatalf("%v %v", err, tab.Problems())
	}
	// The file passed the check; now it is unreadable as PEM.
	if err := os.WriteFile(myCA, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := New(Config{})
	defer srv.Close()
	srv.Update(tab)
	hs := httptest.NewServer(srv.HTTPHandler())
	defer hs.Close()
	e := &edge{t: t, srv: srv, dir: dir, url: hs.URL, tab: tab}
	if r := e.do("GET", "sys.example", "/", nil); r.StatusCode != 200 {
		t.Fatalf("the system roots (SSL_CERT_FILE) do not trust the origin: %d; the test could not fail", r.StatusCode)
	}
	if r := e.do("GET", "ca.example", "/", nil); r.StatusCode != http.StatusBadGateway {
		t.Errorf("origin with an unreadable ca_file: %d, want 502 (no fallback to the system roots)", r.StatusCode)
	}
}
