package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/testutil"
)

// runNodeIn runs a node on the config and files already in dir until the
// returned stop is called; it waits for readiness and, when wantLog is
// not "", for a log line holding it.
func runNodeIn(t *testing.T, dir, wantLog string) (Addrs, *testutil.SyncBuffer, func()) {
	t.Helper()
	cfg, errs := config.Load(filepath.Join(dir, "edge.yaml"))
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	log := &testutil.SyncBuffer{}
	ready := make(chan Addrs, 1)
	ctx, cancel := context.WithCancel(WithReady(context.Background(), func(a Addrs) { ready <- a }))
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, Options{Stderr: log, Version: "test"}) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Fatal("node did not stop")
		}
	}
	var addrs Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("node exited at start: %v\n%s", err, log)
	case <-time.After(20 * time.Second):
		stop()
		t.Fatalf("node not ready\n%s", log)
	}
	if wantLog != "" {
		testutil.WaitFor(t, wantLog, func() bool { return strings.Contains(log.String(), wantLog) }, log.String)
	}
	return addrs, log, stop
}

func getVia(t *testing.T, addr, host string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/x", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body, _, _ := strings.Cut(string(b), "request id:") // differs per request
	return fmt.Sprintf("%d %s %q", resp.StatusCode, resp.Header.Get("X-P"), body)
}

// TestRestartTakesPropertiesFromSnapshot: a node writes the snapshot of
// its properties once it serves; started again on the same files it takes
// every one from it, parses none, and serves the same. A corrupt snapshot
// is then ignored with one warning, and the node serves the same again,
// from the files.
func TestRestartTakesPropertiesFromSnapshot(t *testing.T) {
	origin := newRecordingOrigin(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "props"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	const count = 20
	for i := range count {
		body := fmt.Sprintf("hostnames: [p%d.example]\norigins: [{url: %s}]\nheaders: {response: {set: {X-P: p%d}}}\n", i, origin.URL, i)
		if err := os.WriteFile(filepath.Join(dir, "props", fmt.Sprintf("p%02d.yaml", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A broken file is reported at each start, snapshot or not.
	if err := os.WriteFile(filepath.Join(dir, "props", "broken.yaml"), []byte("hostnames: [b.example]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Versions read within a second of their file's change are not
	// trusted (property.fileStat.same): let the files age past it.
	time.Sleep(1100 * time.Millisecond)

	serve := func(addrs Addrs) string {
		var b strings.Builder
		for i := range count + 1 {
			fmt.Fprintf(&b, "%s\n", getVia(t, addrs.HTTP, fmt.Sprintf("p%d.example", i)))
		}
		fmt.Fprintf(&b, "%s\n", getVia(t, addrs.HTTP, "b.example"))
		return b.String()
	}
	written := fmt.Sprintf(`"properties":%d`, count)
	addrs, log1, stop := runNodeIn(t, dir, "property snapshot written")
	if !strings.Contains(log1.String(), written) {
		t.Fatalf("snapshot not of %d properties:\n%s", count, log1)
	}
	cold := serve(addrs)
	stop()
	if !strings.Contains(cold, `200 p3 "origin"`) || !strings.Contains(log1.String(), "broken.yaml") {
		t.Fatalf("first start did not serve:\n%s\n%s", cold, log1)
	}

	addrs, log2, stop := runNodeIn(t, dir, "property snapshot written")
	if want := fmt.Sprintf(`"from_snapshot":%d,"parsed":1`, count); !strings.Contains(log2.String(), want) {
		t.Errorf("restart did not take the files from the snapshot (want %s):\n%s", want, log2)
	}
	if !strings.Contains(log2.String(), "broken.yaml") {
		t.Errorf("restart does not report the broken file:\n%s", log2)
	}
	if warm := serve(addrs); warm != cold {
		t.Errorf("restart serves\n%s\nfirst start served\n%s", warm, cold)
	}
	// A reload writes the snapshot again; the file it read right after
	// its change is not in it (the 1 s rule), and is parsed at the next
	// start.
	edited := fmt.Sprintf("hostnames: [p5.example]\norigins: [{url: %s}]\nheaders: {response: {set: {X-P: p5b}}}\n", origin.URL)
	if err := os.WriteFile(filepath.Join(dir, "props", "p05.yaml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the snapshot written after the reload", func() bool {
		return strings.Count(log2.String(), "property snapshot written") == 2
	}, log2.String)
	stop()
	// The writer right after the reload finds the edited file too fresh
	// (19 written); one delayed past the second by a loaded machine reads
	// it again and writes it (20).
	m := regexp.MustCompile(`"property snapshot written".*"properties":(\d+)`).FindAllStringSubmatch(log2.String(), -1)
	kept, _ := strconv.Atoi(m[len(m)-1][1])
	if kept != count-1 && kept != count {
		t.Errorf("the snapshot after the reload holds %d properties, want %d or %d:\n%s", kept, count-1, count, log2)
	}
	cold = strings.Replace(cold, `200 p5 "origin"`, `200 p5b "origin"`, 1)

	addrs, log3, stop := runNodeIn(t, dir, "property snapshot written")
	if want := fmt.Sprintf(`"from_snapshot":%d,"parsed":%d`, kept, count+1-kept); !strings.Contains(log3.String(), want) {
		t.Errorf("restart after the reload: want %s:\n%s", want, log3)
	}
	if warm := serve(addrs); warm != cold {
		t.Errorf("restart after the reload serves\n%s\nwant\n%s", warm, cold)
	}
	stop()

	snap := filepath.Join(dir, "data", "properties.snapshot")
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(snap, data, 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, log4, stop := runNodeIn(t, dir, "property snapshot written")
	defer stop()
	if n := strings.Count(log4.String(), "property snapshot ignored"); n != 1 {
		t.Errorf("%d warnings about the corrupt snapshot, want 1:\n%s", n, log4)
	}
	if strings.Contains(log4.String(), "from_snapshot") {
		t.Errorf("a corrupt snapshot was used:\n%s", log4)
	}
	if again := serve(addrs); again != cold {
		t.Errorf("after a corrupt snapshot the node serves\n%s\nfirst start served\n%s", again, cold)
	}
}
