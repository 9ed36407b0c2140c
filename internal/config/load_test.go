package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const baseConfig = `node: {name: test-node}
listen: {http: "127.0.0.1:0", https: "127.0.0.1:0", admin: "127.0.0.1:0"}
data_dir: ./data
properties_dir: ./props
log: {level: debug, format: json, access: true}
`

func writeConfig(t *testing.T, file, body string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.yaml")
	writeConfig(t, file, baseConfig+"renewal:\n  check_interval: 2h\n  renew_before: soon\nacme: {profile: fast, agree_tos: maybe}\nlisten_https: x\n")
	_, errs := Load(file)
	got := fmt.Sprint(errs)
	for _, want := range []string{
		file + ":8: renewal.renew_before: invalid duration \"soon\"",
		file + ":9: acme.agree_tos: must be true or false",
		file + ":10: listen_https: unknown key",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%v", want, got)
		}
	}
	writeConfig(t, file, baseConfig+"renewal: {check_interval: 2h}\nacme: {profile: fast}\n")
	_, errs = Load(file)
	got = fmt.Sprint(errs)
	for _, want := range []string{"edge.yaml:6: renewal.check_interval: 2h0m0s must be between 1s and 1h", "edge.yaml:7: acme.profile: \"fast\""} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%v", want, got)
		}
	}
	// Environment overrides, and errors that name the variable.
	writeConfig(t, file, baseConfig)
	t.Setenv("EDGE_LISTEN_HTTPS", "127.0.0.1:9443")
	t.Setenv("EDGE_RENEWAL_RENEW_BEFORE", "30d")
	cfg, errs := Load(file)
	if len(errs) > 0 || cfg.Listen.HTTPS != "127.0.0.1:9443" || cfg.Renewal.RenewBefore.Std() != 30*24*time.Hour {
		t.Fatalf("env override: %+v %v", cfg, errs)
	}
	if !cfg.Renewal.Enabled || !cfg.Renewal.ARI || !cfg.Preflight.Enabled || !cfg.Log.Access {
		t.Errorf("a true default came out false: %+v %+v %+v", cfg.Renewal, cfg.Preflight, cfg.Log)
	}
	if cfg.DataDir != filepath.Join(dir, "data") || cfg.Admin.TokenFile != filepath.Join(dir, "data", "admin.token") {
		t.Errorf("relative paths not resolved against the config's directory: %s %s", cfg.DataDir, cfg.Admin.TokenFile)
	}
	t.Setenv("EDGE_LOG_LEVEL", "loud")
	if _, errs = Load(file); !strings.Contains(fmt.Sprint(errs), "environment EDGE_LOG_LEVEL: log.level") {
		t.Errorf("env error does not name the variable: %v", errs)
	}
}

func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	const example = "../../config.example.yaml"
	if _, errs := Load(example); len(errs) > 0 {
		t.Fatalf("%s: %v", example, errs)
	}
	for k := range defaults {
		if !strings.Contains(mustRead(t, example), lastKey(k)+":") {
			t.Errorf("config.example.yaml does not document %s", k)
		}
	}
}

func lastKey(k string) string { return k[strings.LastIndex(k, ".")+1:] }

func mustRead(t *testing.T, f string) string {
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Issue 11: Let's Encrypt's staging CA tests retries for Let's Encrypt
// production only.
func TestStagingOnlyForLetsEncrypt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edge.yaml")
	for _, tc := range []struct{ name, acme, want string }{
		{"defaults", "", letsEncryptStaging},
		{"private CA, default staging", "acme: {directory: https://ca.internal/dir}\n", ""},
		{"private CA, its own staging", "acme: {directory: https://ca.internal/dir, staging_directory: https://ca.internal/test}\n", "https://ca.internal/test"},
		{"production, staging off", "acme: {staging_directory: \"\"}\n", ""},
	} {
		writeConfig(t, file, baseConfig+tc.acme)
		cfg, errs := Load(file)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", tc.name, errs)
		}
		if cfg.ACME.StagingDirectory != tc.want {
			t.Errorf("%s: staging %q, want %q", tc.name, cfg.ACME.StagingDirectory, tc.want)
		}
	}
}
