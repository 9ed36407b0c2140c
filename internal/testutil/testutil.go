// Package testutil holds the helpers that tests of several packages share.
// Only tests import it.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
)

// WaitFor polls cond every few milliseconds until it holds, and fails the
// test if it does not within 10 seconds.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitForWithin(t, 10*time.Second, what, cond)
}

// WaitForWithin is WaitFor with its own limit.
func WaitForWithin(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
	}
}

// Bolt opens a bbolt store in a temporary directory, closed when the test
// ends.
func Bolt(t testing.TB) *store.Bolt {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Table loads a property table from files (name → YAML) and fails the test
// on any problem.
func Table(t testing.TB, files map[string]string) *property.Table {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := property.LoadDir(dir, nil, property.Options{})
	if err != nil || len(tab.Problems()) > 0 {
		t.Fatalf("properties: %v %v", err, tab.Problems())
	}
	return tab
}

// Certs is a certificate store on a fresh bbolt file.
func Certs(t testing.TB) *cert.Certs {
	t.Helper()
	return cert.NewCerts(Bolt(t))
}

// SelfSigned makes a self-signed version for hosts, valid for a day.
func SelfSigned(t testing.TB, hosts ...string) cert.Version {
	t.Helper()
	v, err := cert.SelfSigned(hosts, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return v
}
