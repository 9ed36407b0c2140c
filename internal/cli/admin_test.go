package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func (n *testNode) token() string {
	b, err := os.ReadFile(filepath.Join(n.dir, "data", "admin.token"))
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// api calls the admin API; body is JSON-encoded unless it is a string.
func (n *testNode) api(method, path string, body any, token ...string) (int, map[string]any) {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, "http://"+n.addrs.Admin+path, rd)
	tok := n.token()
	if len(token) > 0 {
		tok = token[0]
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out)
	}
	return resp.StatusCode, out
}

func errMsg(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	return fmt.Sprint(e["code"], ": ", e["message"])
}

// cli runs an edge command against the node and returns its exit code and
// output.
func (n *testNode) cli(args ...string) (int, string) {
	n.t.Helper()
	cfg := filepath.Join(n.dir, "cli.yaml")
	if _, err := os.Stat(cfg); err != nil {
		body := strings.Replace(baseConfig, `admin: "127.0.0.1:0"`, `admin: "`+n.addrs.Admin+`"`, 1)
		writeFiles(n.t, n.dir, map[string]string{"cli.yaml": body})
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), append(args, "--config", cfg), &out, &errb)
	code := exitCode(err, &errb)
	return code, out.String() + errb.String()
}

func TestAdminHealthAuthAndMetrics(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	n := startNode(t, "", map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\n", o.URL)})
	if st, _ := os.Stat(filepath.Join(n.dir, "data", "admin.token")); st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", st.Mode().Perm())
	}
	resp, err := http.Get("http://" + n.addrs.Admin + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	if code, body := n.api("GET", "/readyz", nil, ""); code != 200 || body["ready"] != true {
		t.Errorf("readyz: %d %v", code, body)
	}
	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		if code, body := n.api("GET", "/api/v1/certificates", nil, tok); code != 401 || !strings.Contains(errMsg(body), "unauthorized") {
			t.Errorf("token %q: %d %v", tok, code, body)
		}
	}
	if code, body := n.api("GET", "/api/v1/nothing", nil); code != 404 || !strings.HasPrefix(errMsg(body), "not_found") {
		t.Errorf("unknown endpoint: %d %v", code, body)
	}
	// Traffic, then a scrape parsed with the Prometheus text parser.
	c := n.client()
	n.get(c, "https://a.example/")
	n.get(c, "http://a.example/")
	n.get(c, "http://nope.example/")
	mresp, err := http.Get("http://" + n.addrs.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(mresp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		f := fams[name]
		if f == nil {
			t.Errorf("metric %s missing", name)
			return -1
		}
	next:
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		return 0
	}
	if v := value("edge_http_requests_total", map[string]string{"property": "a", "code": "2xx"}); v != 2 {
		t.Errorf("requests a/2xx = %v, want 2", v)
	}
	if v := value("edge_http_requests_total", map[string]string{"property": "none", "code": "4xx"}); v != 1 {
		t.Errorf("requests none/4xx = %v, want 1", v)
	}
	if v := value("edge_tls_handshakes_total", map[string]string{"result": "ok"}); v < 1 {
		t.Errorf("handshakes ok = %v", v)
	}
	if v := value("edge_certificate_not_after_timestamp_seconds", map[string]string{"certificate": "a"}); v < float64(time.Now().Unix()) {
		t.Errorf("not_after of a = %v", v)
	}
	if v := value("edge_property_reloads_total", map[string]string{"result": "ok"}); v != 1 {
		t.Errorf("reloads ok = %v", v)
	}
	if v := value("edge_origin_request_duration_seconds", map[string]string{"property": "a"}); v != 2 {
		t.Errorf("origin latency samples = %v", v)
	}
}

func TestAdminCertificates(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	n := startNode(t, "", map[string]string{"shop.yaml": "hostnames: [shop.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: shop}\n"})
	count := func() int {
		_, body := n.api("GET", "/api/v1/certificates", nil)
		return len(body["certificates"].([]any))
	}
	if count() != 1 {
		t.Fatalf("want the bootstrap certificate only")
	}
	// Refused requests: each a 4xx naming the field; nothing stored changes.
	for _, tc := range []struct {
		name string
		body any
		code int
		want string
	}{
		{"malformed JSON", `{"name": "x",`, 400, "body: malformed JSON"},
		{"not an object", `[1,2]`, 400, "body: must be a JSON object, not array"},
		{"unknown field", map[string]any{"name": "x", "colour": "red"}, 400, "colour: unknown field"},
		{"wrong type", map[string]any{"name": 5}, 400, "name: must be a string"},
		{"odd name", map[string]any{"name": "bad name/..", "self_signed": true, "hostnames": []string{"a.example"}}, 400, "name:"},
		{"PEM garbage", map[string]any{"name": "x", "certificate_pem": "garbage", "private_key_pem": pki.leafKeyPEM}, 400, "certificate_pem: no PEM certificate"},
		{"key mismatch", map[string]any{"name": "x", "certificate_pem": pki.leafPEM, "private_key_pem": pki.otherKeyPEM}, 400, "private_key_pem: the private key matches no certificate"},
		{"no key", map[string]any{"name": "x", "certificate_pem": pki.leafPEM}, 400, "private_key_pem: a server certificate needs its private key"},
		{"expired", map[string]any{"name": "x", "certificate_pem": pki.expiredPEM, "private_key_pem": pki.expiredKey}, 400, "certificate_pem: certificate 1 (old.example) expired"},
		{"foreign chain", map[string]any{"name": "x", "certificate_pem": pki.leafPEM + pki.expiredPEM, "private_key_pem": pki.leafKeyPEM}, 400, "not part of the leaf's issuing chain"},
		{"ca auto-renew", map[string]any{"name": "x", "certificate_pem": pki.rootPEM, "type": "ca", "auto_renew": "acme"}, 400, "auto_renew: only server certificates renew"},
		{"leaf as ca", map[string]any{"name": "x", "certificate_pem": pki.leafPEM, "type": "ca"}, 400, "type: the certificate is not a CA"},
		{"bad type", map[string]any{"name": "x", "type": "client"}, 400, "type:"},
		{"duplicate name", map[string]any{"name": "shop", "self_signed": true, "hostnames": []string{"a.example"}}, 409, "already exists"},
		{"wildcard acme", map[string]any{"name": "w", "self_signed": true, "hostnames": []string{"*.w.example"}, "auto_renew": "acme"}, 400, "hostnames[0]: wildcard"},
		{"bad valid_for", map[string]any{"name": "w", "self_signed": true, "hostnames": []string{"w.example"}, "valid_for": "forever"}, 400, "valid_for:"},
		{"oversized", `{"name": "` + strings.Repeat("a", 2<<20) + `"}`, 413, "larger than"},
	} {
		code, body := n.api("POST", "/api/v1/certificates", tc.body)
		if code != tc.code || !strings.Contains(errMsg(body), tc.want) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, code, errMsg(body), tc.code, tc.want)
		}
	}
	if count() != 1 {
		t.Fatalf("a refused request stored something")
	}

	// Upload with the chain out of order: stored leaf first.
	code, up := n.api("POST", "/api/v1/certificates", map[string]any{"name": "shop-ca-issued",
		"certificate_pem": pki.interPEM + pki.leafPEM, "private_key_pem": pki.leafKeyPEM, "auto_renew": "acme"})
	if code != 201 || up["status"] != "active" || up["type"] != "server" || up["auto_renew"] != "acme" || up["issuer"] != "CN=Test Intermediate" {
		t.Fatalf("upload: %d %v", code, up)
	}
	_, vs := n.api("GET", "/api/v1/certificates/shop-ca-issued/versions", nil)
	v0 := vs["versions"].([]any)[0].(map[string]any)
	if pemFirst := v0["certificate_pem"].(string); !strings.HasPrefix(pemFirst, pki.leafPEM) || v0["private_key_pem"] != nil {
		t.Errorf("stored chain not leaf first, or key exposed: %v", v0)
	}
	if code, _ := n.api("POST", "/api/v1/certificates", map[string]any{"name": "root", "certificate_pem": pki.rootPEM, "type": "ca"}); code != 201 {
		t.Errorf("CA upload: %d", code)
	}
	code, ss := n.api("POST", "/api/v1/certificates", map[string]any{"name": "lab", "self_signed": true,
		"hostnames": []string{"Lab.Example", "*.lab.example"}, "valid_for": "30d"})
	if code != 201 || fmt.Sprint(ss["subject_names"]) != "[lab.example *.lab.example]" {
		t.Errorf("self-signed: %d %v", code, ss)
	}
	// Show by id and by name; list filters.
	id := up["id"].(string)
	if code, byID := n.api("GET", "/api/v1/certificates/"+id, nil); code != 200 || byID["name"] != "shop-ca-issued" {
		t.Errorf("show by id: %d %v", code, byID)
	}
	if code, shop := n.api("GET", "/api/v1/certificates/shop", nil); code != 200 || fmt.Sprint(shop["properties"]) != "[shop]" {
		t.Errorf("show by name: %d %v", code, shop)
	}
	_, acme := n.api("GET", "/api/v1/certificates?auto_renew=acme", nil)
	if l := acme["certificates"].([]any); len(l) != 1 || l[0].(map[string]any)["name"] != "shop-ca-issued" {
		t.Errorf("filter auto_renew=acme: %v", l)
	}
	_, cas := n.api("GET", "/api/v1/certificates?type=ca", nil)
	if l := cas["certificates"].([]any); len(l) != 1 {
		t.Errorf("filter type=ca: %v", l)
	}
	// Patch.
	if code, p := n.api("PATCH", "/api/v1/certificates/lab", map[string]any{"auto_renew": "acme"}); code != 200 || p["auto_renew"] != "acme" {
		t.Errorf("patch: %d %v", code, p)
	}
	if code, p := n.api("PATCH", "/api/v1/certificates/root", map[string]any{"auto_renew": "acme"}); code != 400 {
		t.Errorf("patch CA to acme: %d %v", code, p)
	}
	if code, _ := n.api("PATCH", "/api/v1/certificates/lab", map[string]any{"name": "renamed"}); code != 400 {
		t.Errorf("patch of another field: %d", code)
	}
	// Delete: refused while used, naming the property; fine otherwise.
	if code, body := n.api("DELETE", "/api/v1/certificates/shop", nil); code != 409 || !strings.Contains(errMsg(body), "used by properties shop") {
		t.Errorf("delete used: %d %v", code, errMsg(body))
	}
	if code, _ := n.api("DELETE", "/api/v1/certificates/lab", nil); code != 204 {
		t.Errorf("delete unused: %d", code)
	}
	if code, _ := n.api("GET", "/api/v1/certificates/lab", nil); code != 404 {
		t.Errorf("after delete: %d", code)
	}
	// Renew: any server certificate, on demand; never a CA certificate.
	if code, body := n.api("POST", "/api/v1/certificates/shop/renew", nil); code != 202 || body["renewal"].(map[string]any)["forced"] != true {
		t.Errorf("renew: %d %v", code, body)
	}
	if code, body := n.api("POST", "/api/v1/certificates/root/renew", nil); code != 400 {
		t.Errorf("renew of a CA certificate: %d %v", code, body)
	}
}

func TestAdminPropertiesAndEvents(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	n := startNode(t, "", map[string]string{
		"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}, {url: http://127.0.0.1:1}]\ntls: {certificate: a}\n", o.URL),
		"b.yaml": "hostnames: [b.example]\norigins: []\n",
	})
	n.get(n.client(), "http://a.example/") // may rest the dead origin
	code, body := n.api("GET", "/api/v1/properties", nil)
	props := body["properties"].([]any)
	rejected := body["rejected"].([]any)
	if code != 200 || len(props) != 1 || len(rejected) != 1 {
		t.Fatalf("properties: %d %v", code, body)
	}
	a := props[0].(map[string]any)
	if a["certificate"] != "a" || fmt.Sprint(a["hostnames"]) != "[a.example]" || len(a["origins"].([]any)) != 2 {
		t.Errorf("property a: %v", a)
	}
	if !strings.Contains(fmt.Sprint(rejected[0]), "at least one origin") {
		t.Errorf("rejected: %v", rejected[0])
	}
	if code, _ := n.api("GET", "/api/v1/properties/nope", nil); code != 404 {
		t.Errorf("unknown property: %d", code)
	}
	_, evs := n.api("GET", "/api/v1/events", nil)
	types := ""
	for _, e := range evs["events"].([]any) {
		types += e.(map[string]any)["type"].(string) + " "
	}
	if !strings.Contains(types, "property.loaded") || !strings.Contains(types, "property.rejected") {
		t.Errorf("events: %s", types)
	}
	_, later := n.api("GET", "/api/v1/events?since="+time.Now().Add(time.Minute).UTC().Format(time.RFC3339), nil)
	if l := later["events"].([]any); len(l) != 0 {
		t.Errorf("since the future: %v", l)
	}
	if code, _ := n.api("GET", "/api/v1/events?since=yesterday", nil); code != 400 {
		t.Errorf("bad since: %d", code)
	}
}

func TestWebhookFromNode(t *testing.T) {
	t.Parallel()
	got := make(chan string, 10)
	fails := 1
	recv := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if fails > 0 {
			fails--
			w.WriteHeader(500)
			return
		}
		if !strings.HasPrefix(r.Header.Get("Edge-Signature"), "t=") {
			t.Error("delivery without signature")
		}
		got <- r.Header.Get("Edge-Event-Type")
	})
	n := startNode(t, fmt.Sprintf("notify:\n  webhooks:\n    - {url: %s, secret: s, events: [property.rejected]}\n", recv),
		map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\n"})
	writeFiles(t, n.props, map[string]string{"b.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\n"})
	select {
	case typ := <-got:
		if typ != "property.rejected" {
			t.Errorf("got %s", typ)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no webhook delivery\n%s", n.log)
	}
}

func httptestServer(t *testing.T, h http.HandlerFunc) string {
	s := newLoopbackServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func TestBackupRestore(t *testing.T) {
	t.Parallel()
	n := startNode(t, "", map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: a}\n"})
	_, before := n.api("GET", "/api/v1/certificates/a", nil)
	backup := filepath.Join(t.TempDir(), "edge-backup.db")
	if code, out := n.cli("backup", backup); code != 0 || !strings.Contains(out, "saved") {
		t.Fatalf("edge backup: %d %s", code, out)
	}
	if st, _ := os.Stat(backup); st.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v", st.Mode().Perm())
	}
	// After the backup: a certificate that the restore must drop.
	n.api("POST", "/api/v1/certificates", map[string]any{"name": "later", "self_signed": true, "hostnames": []string{"l.example"}})
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	// Restore: stop, replace the file, start.
	db := filepath.Join(n.dir, "data", "edge.db")
	b, _ := os.ReadFile(backup)
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	n2 := runNode(t, n.dir)
	_, after := n2.api("GET", "/api/v1/certificates/a", nil)
	if after["id"] != before["id"] || after["not_after"] != before["not_after"] {
		t.Errorf("restored certificate differs: %v vs %v", after, before)
	}
	if code, _ := n2.api("GET", "/api/v1/certificates/later", nil); code != 404 {
		t.Errorf("certificate made after the backup survived the restore")
	}
}

func TestCLI(t *testing.T) {
	t.Parallel()
	n := startNode(t, "", map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: a}\n"})
	code, out := n.cli("cert", "list")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "a.example") {
		t.Errorf("cert list: %d\n%s", code, out)
	}
	code, out = n.cli("cert", "self-signed", "--name", "lab", "--host", "lab.example", "--host", "www.lab.example", "--valid-for", "10d")
	if code != 0 || !strings.Contains(out, "lab.example, www.lab.example") {
		t.Errorf("cert self-signed: %d\n%s", code, out)
	}
	code, out = n.cli("cert", "show", "lab", "--json")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["name"] != "lab" {
		t.Errorf("cert show --json: %d\n%s", code, out)
	}
	if code, out = n.cli("cert", "auto-renew", "lab", "acme"); code != 0 || !strings.Contains(out, "auto_renew:") {
		t.Errorf("cert auto-renew: %d %s", code, out)
	}
	if code, out = n.cli("cert", "versions", "lab"); code != 0 || !strings.Contains(out, "self_signed") {
		t.Errorf("cert versions: %d %s", code, out)
	}
	if code, out = n.cli("cert", "delete", "a"); code != 1 || !strings.Contains(out, "used by properties a") {
		t.Errorf("cert delete in use: %d %s", code, out)
	}
	if code, _ = n.cli("cert", "delete", "lab"); code != 0 {
		t.Errorf("cert delete: %d", code)
	}
	if code, out = n.cli("cert", "show", "lab"); code != 1 || !strings.Contains(out, "not found") {
		t.Errorf("cert show deleted: %d %s", code, out)
	}
	if code, out = n.cli("property", "list"); code != 0 || !strings.Contains(out, "a.example") {
		t.Errorf("property list: %d %s", code, out)
	}
	if code, out = n.cli("property", "show", "a", "--json"); code != 0 || !strings.Contains(out, `"certificate": "a"`) {
		t.Errorf("property show: %d %s", code, out)
	}
	if code, out = n.cli("events"); code != 0 || !strings.Contains(out, "property.loaded") {
		t.Errorf("events: %d %s", code, out)
	}
	pkiDir := t.TempDir()
	pki := newPKI(t)
	os.WriteFile(filepath.Join(pkiDir, "chain.pem"), []byte(pki.leafPEM+pki.interPEM), 0o600)
	os.WriteFile(filepath.Join(pkiDir, "key.pem"), []byte(pki.leafKeyPEM), 0o600)
	if code, out = n.cli("cert", "upload", "--name", "up", "--cert", filepath.Join(pkiDir, "chain.pem"), "--key", filepath.Join(pkiDir, "key.pem")); code != 0 || !strings.Contains(out, "CN=Test Intermediate") {
		t.Errorf("cert upload: %d %s", code, out)
	}
	// Usage errors exit 2; a node that is not running is a clear exit 1.
	for _, args := range [][]string{{"cert"}, {"cert", "frob"}, {"cert", "show"}, {"cert", "show", "a", "b"}, {"cert", "list", "--bogus"}} {
		if code, _ := n.cli(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	n.stop()
	if code, out = n.cli("cert", "list"); code != 1 || !strings.Contains(out, "is edge serve running") {
		t.Errorf("node down: %d %s", code, out)
	}
}

func TestPprofNeedsToken(t *testing.T) {
	t.Parallel()
	n := startNode(t, "", nil)
	if code, _ := n.api("GET", "/debug/pprof/", nil, ""); code != 401 {
		t.Errorf("pprof without token: %d, want 401", code)
	}
	req, _ := http.NewRequest("GET", "http://"+n.addrs.Admin+"/debug/pprof/heap?debug=1", nil)
	req.Header.Set("Authorization", "Bearer "+n.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "heap profile") {
		t.Errorf("pprof heap with token: %d %.100s", resp.StatusCode, b)
	}
}

func TestAccessLogWhateverTheLevel(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	n := startNode(t, "", map[string]string{"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\n", o.URL)})
	// baseConfig logs at debug; a node at warn still writes access lines.
	n.stop()
	cfg := strings.Replace(baseConfig, "level: debug", "level: warn", 1)
	writeFiles(t, n.dir, map[string]string{"edge.yaml": cfg})
	n2 := runNode(t, n.dir)
	n2.get(n2.client(), "http://a.example/")
	testutil.WaitFor(t, "an access line at log.level warn", func() bool { return strings.Contains(n2.log.String(), `"msg":"request"`) }, n2.log.String)
	if strings.Contains(n2.log.String(), `"msg":"properties loaded"`) {
		t.Error("info lines written at log.level warn")
	}
}
