package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitIsBounded: a request queued behind a fill whose head does not come
// goes to the origin itself after WaitTimeout.
func TestWaitIsBounded(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int64
	e := newEnv(t, Config{WaitTimeout: 50 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-release
		}
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "x")
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.get("/slow")
	}()
	for n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	resp, body := e.get("/slow")
	if body != "x" || !strings.Contains(resp.Header.Get("Cache-Status"), "wait-timeout") {
		t.Errorf("got %q, Cache-Status %q", body, resp.Header.Get("Cache-Status"))
	}
	close(release)
	<-done
	e.wantHits(2)
}

// TestUpstreamWritingNothingIsAnError: served stale within stale-if-error,
// otherwise a 502.
func TestUpstreamWritingNothingIsAnError(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := testProperty("site")
	p.Cache.StaleIfError = time.Hour
	var silent atomic.Bool
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if silent.Load() {
			return
		}
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"1"`)
		fmt.Fprint(w, "good")
	})
	r := httptest.NewRequest("GET", "http://site.test/n", nil)
	c.Serve(httptest.NewRecorder(), r, p, up)
	for c.mem.get(primaryKeyOf("site", "/n")) == nil {
		runtime.Gosched()
	}
	silent.Store(true)
	rec := httptest.NewRecorder()
	c.Serve(rec, r, p, up)
	if rec.Code != 200 || rec.Body.String() != "good" {
		t.Fatalf("stale-if-error: got %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	c.Serve(rec, httptest.NewRequest("GET", "http://site.test/other", nil), p, up)
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("nothing stored: got %d, want 502", rec.Code)
	}
}

// TestCloseStopsEverything: Close cancels a fill in flight and returns only
// when every goroutine of the cache has ended.
func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	c, err := New(Config{DiskSize: 1 << 20, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := testProperty("site")
	started := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.WriteHeader(200)
		close(started)
		<-r.Context().Done() // an origin that never finishes
	})
	go func() {
		// The cut body aborts the client's response as net/http expects:
		// with http.ErrAbortHandler.
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				t.Errorf("panic %v", v)
			}
		}()
		c.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "http://site.test/hang", nil), p, up)
	}()
	<-started
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
