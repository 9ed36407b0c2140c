package node

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// startNodeIn runs a node on dir's edge.yaml (testConfig) and returns its
// addresses and a stop that waits for it.
func startNodeIn(t *testing.T, dir string) (Addrs, func()) {
	t.Helper()
	addrs, _, stop := runNodeIn(t, dir, "")
	return addrs, stop
}

func namedOrigin(t *testing.T, name string) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }))
	t.Cleanup(s.Close)
	return s.URL
}

// servedBy returns the body the node answers for host: the name of the
// origin that serves it.
func servedBy(t *testing.T, addr, host string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestDuplicateHostnameSurvivesEditAndRestart: b.yaml serves shop.example;
// a.yaml, dropped in, claims it too while b.yaml is edited. a.yaml sorts
// first, and both files had changed, so a.yaml took the hostname and
// b.yaml stopped serving. The hostname stays with b.yaml, the file that
// served it, on the reload and after a restart (from the store's last
// good versions).
func TestDuplicateHostnameSurvivesEditAndRestart(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "props")
	if err := os.MkdirAll(props, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, origin string) {
		body := "hostnames: [shop.example]\norigins: [{url: " + origin + "}]\n"
		if err := os.WriteFile(filepath.Join(props, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yaml", namedOrigin(t, "b1"))
	addrs, stop := startNodeIn(t, dir)
	if got := servedBy(t, addrs.HTTP, "shop.example"); got != "b1" {
		stop()
		t.Fatalf("served by %q, want b1", got)
	}
	write("a.yaml", namedOrigin(t, "a"))
	write("b.yaml", namedOrigin(t, "b2"))
	deadline := time.Now().Add(10 * time.Second)
	got := servedBy(t, addrs.HTTP, "shop.example")
	for got == "b1" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the watcher's reload
		got = servedBy(t, addrs.HTTP, "shop.example")
	}
	stop()
	if got != "b2" {
		t.Fatalf("after the reload served by %q, want b2 (b.yaml's new version)", got)
	}
	addrs, stop = startNodeIn(t, dir)
	defer stop()
	if got := servedBy(t, addrs.HTTP, "shop.example"); got != "b2" {
		t.Errorf("after a restart served by %q, want b2", got)
	}
}

// TestBrokenFileServesLastGoodAfterRestart: a file broken while the node
// was down serves its last good version from the store after the restart
// (the start parses the stored versions only when a file is rejected).
func TestBrokenFileServesLastGoodAfterRestart(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "props")
	if err := os.MkdirAll(props, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	body := "hostnames: [shop.example]\norigins: [{url: " + namedOrigin(t, "good") + "}]\n"
	if err := os.WriteFile(filepath.Join(props, "c.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	other := "hostnames: [other.example]\norigins: [{url: " + namedOrigin(t, "other") + "}]\n"
	if err := os.WriteFile(filepath.Join(props, "d.yaml"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stop := startNodeIn(t, dir)
	stop() // the last good versions are stored once the node serves
	if err := os.WriteFile(filepath.Join(props, "c.yaml"), []byte("hostnames: [shop.example\norigins: {"), 0o644); err != nil {
		t.Fatal(err)
	}
	addrs, stop := startNodeIn(t, dir)
	defer stop()
	if got := servedBy(t, addrs.HTTP, "shop.example"); got != "good" {
		t.Errorf("a broken file after a restart: served by %q, want its last good version's origin", got)
	}
	if got := servedBy(t, addrs.HTTP, "other.example"); got != "other" {
		t.Errorf("an unchanged file after a restart: served by %q", got)
	}
}
