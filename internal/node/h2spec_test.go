package node

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// TestH2Spec runs h2spec (github.com/summerwind/h2spec, 2.2.1) against a
// node when H2SPEC_BIN names its binary, e.g.
//
//	go install github.com/summerwind/h2spec/cmd/h2spec@latest
//	H2SPEC_BIN=~/go/bin/h2spec go test ./internal/node/ -run TestH2Spec -v
//
// It logs h2spec's report and fails when fewer than H2SPEC_MIN
// (default 142) of its 145 tests pass: Go's server answers three of them
// (6.5.3/1, 8.1.2.2/1 and /2) with a response instead of the stream
// error h2spec wants (notes/h2hit.md).
func TestH2Spec(t *testing.T) {
	bin := os.Getenv("H2SPEC_BIN")
	if bin == "" {
		t.Skip("H2SPEC_BIN is not set")
	}
	min := 142
	if v := os.Getenv("H2SPEC_MIN"); v != "" {
		fmt.Sscan(v, &min)
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "hello h2spec")
	}))
	t.Cleanup(origin.Close)
	n := runTestNode(t, "", map[string]string{"s.yaml": fmt.Sprintf(
		"hostnames: [localhost]\norigins: [{url: %s}]\ntls: {certificate: s}\ncache: {enabled: true}\n", origin.URL)})
	_, port, _ := net.SplitHostPort(n.addrs.HTTPS)
	out, _ := exec.Command(bin, "-t", "-k", "-h", "localhost", "-p", port, "-o", "5").CombinedOutput()
	t.Logf("%s", out)
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
	if m == nil {
		t.Fatal("no summary in h2spec's output")
	}
	var passed int
	fmt.Sscan(string(m[2]), &passed)
	t.Logf("h2spec: %s", m[0])
	if passed < min {
		t.Errorf("h2spec: %d passed, want >= %d", passed, min)
	}
}
