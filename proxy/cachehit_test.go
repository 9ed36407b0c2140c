package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/internal/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// lines returns the lines written to b.
func lines(b *testutil.SyncBuffer) []string {
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

// jsonKeys returns the keys of a JSON object line in order, and its values.
func jsonKeys(t *testing.T, line string) ([]string, map[string]any) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	d := json.NewDecoder(strings.NewReader(line))
	d.Token() // {
	var keys []string
	for d.More() {
		k, _ := d.Token()
		keys = append(keys, k.(string))
		var v any
		d.Decode(&v)
	}
	return keys, m
}

// TestCacheHitThroughProxy: a hit served through the proxy has the stored
// head and the hit's own Age, Cache-Status and X-Request-Id, never the
// miss's; the origin sees the miss only; each request's access line has
// the same fields in the same order, the hit naming no origin.
func TestCacheHitThroughProxy(t *testing.T) {
	date := time.Now().UTC().Format(http.TimeFormat)
	var originIDs []string
	var mu sync.Mutex
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		originIDs = append(originIDs, r.Header.Get("X-Request-Id"))
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Date", date)
		w.Header().Set("Etag", `"e1"`)
		w.Header().Set("X-Origin", "o")
		fmt.Fprint(w, "stored body")
	}))
	t.Cleanup(o.Close)
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var logs testutil.SyncBuffer
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "time"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	access := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&logs), zapcore.InfoLevel))
	e := newEdge(t, Config{AccessLog: true, AccessLogger: access, Cache: c},
		map[string]string{"c.yaml": prop("c.example", "{url: "+o.URL+"}", "cache: {enabled: true}")})

	miss := e.do("GET", "c.example", "/obj", nil)
	if b := readBody(t, miss); b != "stored body" || !strings.Contains(miss.Header.Get("Cache-Status"), "stored") {
		t.Fatalf("miss: %q, Cache-Status %q", b, miss.Header.Get("Cache-Status"))
	}
	var hit *http.Response
	for range 200 { // the fill is stored as the miss ends
		hit = e.do("GET", "c.example", "/obj", nil)
		if readBody(t, hit) != "stored body" {
			t.Fatal("hit: wrong body")
		}
		if strings.Contains(hit.Header.Get("Cache-Status"), "hit") {
			break
		}
	}
	want := http.Header{
		"Age":            {"0"},
		"Cache-Control":  {"max-age=3600"},
		"Cache-Status":   {"Edge; hit; ttl=3600"},
		"Content-Length": {"11"},
		"Content-Type":   {"text/plain"},
		"Date":           {date},
		"Etag":           {`"e1"`},
		"Via":            {"1.1 edge"},
		"X-Origin":       {"o"},
		"X-Request-Id":   hit.Header["X-Request-Id"],
	}
	got := hit.Header.Clone()
	// A second or two may pass between the origin's Date and the hit: Age
	// and ttl move together (ttl rounds down a fractional age's rest).
	var age, ttl int
	if _, err := fmt.Sscanf(got.Get("Age")+" "+got.Get("Cache-Status"), "%d Edge; hit; ttl=%d", &age, &ttl); err != nil ||
		age > 2 || (age+ttl != 3600 && age+ttl != 3599) {
		t.Errorf("hit Age %q, Cache-Status %q", got.Get("Age"), got.Get("Cache-Status"))
	}
	got["Age"], got["Cache-Status"] = want["Age"], want["Cache-Status"]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hit header\n got %v\nwant %v", hit.Header, want)
	}
	hitID := hit.Header.Get("X-Request-Id")
	if hitID == "" || hitID == miss.Header.Get("X-Request-Id") {
		t.Errorf("hit X-Request-Id %q, miss %q", hitID, miss.Header.Get("X-Request-Id"))
	}
	mu.Lock()
	if len(originIDs) != 1 || originIDs[0] != miss.Header.Get("X-Request-Id") {
		t.Errorf("origin saw request ids %q, want the miss's %q only", originIDs, miss.Header.Get("X-Request-Id"))
	}
	mu.Unlock()

	lines := lines(&logs)
	wantKeys := []string{"level", "time", "msg", "request_id", "property", "host", "method", "uri", "proto",
		"status", "bytes", "duration", "origin", "remote"}
	var sawHit, sawMiss bool
	for _, l := range lines {
		keys, m := jsonKeys(t, l)
		if !reflect.DeepEqual(keys, wantKeys) {
			t.Errorf("access line keys %v, want %v", keys, wantKeys)
		}
		if m["request_id"] == miss.Header.Get("X-Request-Id") {
			// The fill asked the origin on a state of its own: the miss's
			// line still names the origin.
			sawMiss = true
			if m["origin"] == "" {
				t.Errorf("miss access line names no origin: %s", l)
			}
		}
		if m["request_id"] == hitID {
			sawHit = true
			if m["origin"] != "" || m["status"] != 200.0 || m["bytes"] != 11.0 || m["property"] != "c" ||
				m["uri"] != "/obj" || m["method"] != "GET" || m["host"] != "c.example" || m["proto"] != "HTTP/1.1" {
				t.Errorf("hit access line %s", l)
			}
		}
	}
	if !sawMiss {
		t.Errorf("no access line for the miss in %q", lines)
	}
	if !sawHit {
		t.Errorf("no access line for the hit %s in %q", hitID, lines)
	}
}

// blockingWriter holds the client's response until release is closed.
type blockingWriter struct {
	*httptest.ResponseRecorder
	release <-chan struct{}
}

func (w blockingWriter) Write(p []byte) (int, error) {
	select {
	case <-w.release:
	case <-time.After(5 * time.Second):
	}
	return w.ResponseRecorder.Write(p)
}

// TestBackgroundRefreshNamesNoOrigin: a stale-while-revalidate hit starts
// a refresh that no client waits on; the hit's access line names no
// origin even when the refresh has reached the origin before the line is
// written (the client's response is held until then).
func TestBackgroundRefreshNamesNoOrigin(t *testing.T) {
	var requests atomic.Int32
	refreshed := make(chan struct{})
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=600")
		if requests.Add(1) == 2 {
			close(refreshed)
		}
		fmt.Fprint(w, "body")
	}))
	t.Cleanup(o.Close)
	var mu sync.Mutex
	now := time.Now()
	c, err := cache.New(cache.Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var logs testutil.SyncBuffer
	access := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zapcore.InfoLevel))
	e := newEdge(t, Config{AccessLog: true, AccessLogger: access, Cache: c},
		map[string]string{"c.yaml": prop("c.example", "{url: "+o.URL+"}", "cache: {enabled: true}")})
	readBody(t, e.do("GET", "c.example", "/obj", nil))
	testutil.WaitFor(t, "the miss stored", func() bool { return c.Stats().Memory.Objects == 1 })
	mu.Lock()
	now = now.Add(5 * time.Second)
	mu.Unlock()

	r := httptest.NewRequest("GET", "http://c.example/obj", nil)
	w := blockingWriter{httptest.NewRecorder(), refreshed}
	e.srv.HTTPHandler().ServeHTTP(w, r)
	if cs := w.Header().Get("Cache-Status"); !strings.Contains(cs, "hit; fwd=stale") {
		t.Fatalf("not a stale-while-revalidate hit: Cache-Status %q", cs)
	}
	id := w.Header().Get("X-Request-Id")
	for _, l := range lines(&logs) {
		if _, m := jsonKeys(t, l); m["request_id"] == id && m["origin"] != "" {
			t.Errorf("the hit's access line names the background refresh's origin: %s", l)
		}
	}
}
