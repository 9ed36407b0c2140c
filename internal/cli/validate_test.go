package cli

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func validateOut(t *testing.T, cfg string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), []string{"validate", "--config", cfg}, &out, io.Discard)
	return exitCode(err, io.Discard), out.String()
}

// Issue 11 item 7: one pass, every problem: the config's unknown keys, bad
// values and failed checks together, an unknown EDGE_ variable, and the
// property files even though the config has problems.
func TestValidateOnePass(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"edge.yaml": strings.Replace(baseConfig, `https: "127.0.0.1:0"`, `https: "127.0.0.1:99999"`, 1) +
			"bogus: 1\nrenewal: {renew_before: soon}\nacme: {challenge_port: 0}\n",
		"props/a.yaml": "hostnames: [a.example]\norigins: []\n",
		"props/b.yml":  "hostnames: [b.example]\norigins: []\n",
	})
	t.Setenv("EDGE_LISTEN_HTTPZ", ":1")
	code, out := validateOut(t, filepath.Join(dir, "edge.yaml"))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"environment EDGE_LISTEN_HTTPZ: sets no config key",
		"edge.yaml:2: listen.https: \"127.0.0.1:99999\": port must be a number from 0 to 65535",
		"edge.yaml:6: bogus: unknown key",
		"edge.yaml:7: renewal.renew_before: invalid duration \"soon\"",
		"edge.yaml:8: acme.challenge_port: 0 must be a port number from 1 to 65535",
		"a.yaml:2: origins: at least one origin is required",
		"note: " + filepath.Join(dir, "props", "b.yml") + " is not read: only *.yaml files are property files",
		"6 problem(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

// A property naming a certificate of type ca is an error for validate as
// for the node, also while the node holds the store (validate then asks
// its admin API).
func TestValidateCertificateTypeWhileServing(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	n := startNode(t, "", map[string]string{"ok.yaml": "hostnames: [ok.example]\norigins: [{url: http://127.0.0.1:1}]\n"})
	if code, body := n.api("POST", "/api/v1/certificates", map[string]any{"name": "root", "certificate_pem": pki.rootPEM, "type": "ca"}); code != 201 {
		t.Fatalf("CA upload: %d %v", code, body)
	}
	writeFiles(t, n.props, map[string]string{"shop.yaml": "hostnames: [shop.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: root}\n"})
	n.cli("cert", "list") // writes cli.yaml: the node's config with its bound admin address
	code, out := validateOut(t, filepath.Join(n.dir, "cli.yaml"))
	if code != 1 || !strings.Contains(out, `shop.yaml:3: tls.certificate: certificate "root" is of type ca`) {
		t.Errorf("validate: %d\n%s", code, out)
	}
	if strings.Contains(out, "not checked") {
		t.Errorf("the types were not checked:\n%s", out)
	}
}

// Issue 11 item 10: a reload says which config changes need a restart,
// and names *.yml files that are not read.
func TestReloadNotesConfigChangesAndStrayFiles(t *testing.T) {
	n := startNode(t, "", nil)
	writeFiles(t, n.dir, map[string]string{"edge.yaml": baseConfig + "renewal: {check_interval: 5m}\n"})
	writeFiles(t, n.props, map[string]string{"x.yml": "hostnames: [x.example]\norigins: [{url: http://127.0.0.1:1}]\n"})
	n.reloadSignal()
	for _, note := range []string{
		`take effect at the next restart (a reload applies property files only)","node":"test-node","sections":["renewal"]`,
		`"msg":"not a property file: only *.yaml files are read; rename it to load it","node":"test-node","file":"x.yml"`,
	} {
		if !n.log.Await(note, 10*time.Second) {
			t.Fatalf("no note %s in the log:\n%s", note, n.log)
		}
	}
}
