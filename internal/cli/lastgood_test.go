package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-cdn/edge/internal/testutil"
)

// waitBody polls url on the node until the body starts with want.
func (n *testNode) waitBody(url, want string, hdr ...string) {
	n.t.Helper()
	var last string
	testutil.WaitFor(n.t, fmt.Sprintf("GET %s to answer %q", url, want), func() bool {
		_, last = n.get(n.client(), url, hdr...)
		return strings.HasPrefix(last, want)
	}, func() string { return fmt.Sprintf("last: %q\n%s", last, n.log) })
}

// Issue 11 item 8: a rejected property keeps serving its last good
// version across a restart, and is named in /readyz and the API.
func TestRejectedPropertySurvivesRestart(t *testing.T) {
	v1 := namedOrigin(t, "v1")
	good := fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a, renew_automation: false}\n", v1.URL)
	n := startNode(t, "", map[string]string{"a.yaml": good,
		"b.yaml": fmt.Sprintf("hostnames: [b.example]\norigins: [{url: %s}]\n", v1.URL)})
	n.waitBody("http://a.example/", "v1 a.example")
	if code, r := n.api("GET", "/readyz", nil, ""); code != 200 || r["degraded"] != false || len(r["rejected_properties"].([]any)) != 0 {
		t.Errorf("readyz with every file good: %d %v", code, r)
	}
	// The property API shows tls with the file's keys.
	if _, p := n.api("GET", "/api/v1/properties/a", nil); fmt.Sprint(p["tls"]) != "map[certificate:a hsts: redirect_http:false renew_automation:false]" {
		t.Errorf("tls view: %v", p["tls"])
	}

	writeFiles(t, n.props, map[string]string{"a.yaml": "hostnames: [a.example]\norigins: []\n"})
	checkRejected := func(n *testNode) {
		t.Helper()
		var r map[string]any
		testutil.WaitFor(t, "readyz naming the rejected file", func() bool {
			_, r = n.api("GET", "/readyz", nil, "")
			return len(r["rejected_properties"].([]any)) == 1
		}, func() string { return fmt.Sprint(r) })
		rej := r["rejected_properties"].([]any)
		if r["ready"] != true || r["degraded"] != true || len(rej) != 1 {
			t.Fatalf("readyz with a rejected file: %v", r)
		}
		if e := rej[0].(map[string]any); !strings.HasSuffix(e["file"].(string), "a.yaml") || e["serving_last_good"] != true ||
			!strings.Contains(fmt.Sprint(e["load_error"]), "at least one origin") {
			t.Errorf("rejected entry: %v", e)
		}
		if _, p := n.api("GET", "/api/v1/properties/a", nil); !strings.Contains(fmt.Sprint(p["load_error"]), "at least one origin") {
			t.Errorf("property a in the API: %v", p)
		}
		if m := n.metricsText(); !strings.Contains(m, "\nedge_property_files_rejected 1\n") {
			t.Errorf("metrics lack edge_property_files_rejected 1")
		}
		n.waitBody("http://a.example/", "v1 a.example")
	}
	checkRejected(n)

	// Restart with the file still bad: its last good version serves.
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	n2 := runNode(t, n.dir)
	checkRejected(n2)
	n2.waitBody("http://b.example/", "v1 b.example")

	// The file removed: the property goes, and does not come back at the
	// next restart.
	os.Remove(filepath.Join(n2.props, "a.yaml"))
	n2.reloadSignal()
	testutil.WaitFor(t, "the removed property to stop serving (421)", func() bool {
		r, _ := n2.get(n2.client(), "http://a.example/")
		return r.StatusCode == 421
	}, n2.log.String)
	if err := n2.stop(); err != nil {
		t.Fatal(err)
	}
	n3 := runNode(t, n.dir)
	if r, _ := n3.get(n3.client(), "http://a.example/"); r.StatusCode != 421 {
		t.Errorf("a removed property came back after a restart: %d", r.StatusCode)
	}
}

// metricsText is the node's /metrics page.
func (n *testNode) metricsText() string {
	n.t.Helper()
	resp, err := http.Get("http://" + n.addrs.Admin + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
