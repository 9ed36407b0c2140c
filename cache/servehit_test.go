package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// TestServeHitMatchesServe: ServeHit answers what Serve answers from a
// stored object (status, every header, body, counters), and answers
// nothing, counting nothing, where Serve would go to the origin.
func TestServeHitMatchesServe(t *testing.T) {
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/swr":
			w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=600")
		case "/short":
			w.Header().Set("Cache-Control", "max-age=1")
		default:
			w.Header().Set("Cache-Control", "max-age=3600")
		}
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Origin", "o")
		fmt.Fprint(w, "hello, world")
	})
	p := e.props["site.test"]
	for _, path := range []string{"/fresh", "/swr", "/short"} {
		e.get(path)
	}
	e.settle()
	e.advance(10 * time.Second) // /swr and /short are stale now
	noOrigin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("%s %s went to the origin", r.Method, r.URL)
	})
	req := func(method, path string, hdr ...string) *http.Request {
		r := httptest.NewRequest(method, "http://site.test"+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{
		{"fresh", req("GET", "/fresh")},
		{"head", req("HEAD", "/fresh")},
		{"range", req("GET", "/fresh", "Range", "bytes=0-4")},
		{"unsatisfiable range", req("GET", "/fresh", "Range", "bytes=99-")},
		{"if-none-match", req("GET", "/fresh", "If-None-Match", `"v1"`)},
		{"max-stale", req("GET", "/short", "Cache-Control", "max-stale=60")},
		{"no-cache, ignored by default", req("GET", "/fresh", "Cache-Control", "no-cache")},
	} {
		before := e.c.Stats().Properties["site"]
		hit := httptest.NewRecorder()
		if !e.c.ServeHit(hit, tc.r, p) {
			t.Errorf("%s: ServeHit declined", tc.name)
			continue
		}
		mid := e.c.Stats().Properties["site"]
		served := httptest.NewRecorder()
		e.c.Serve(served, tc.r, p, noOrigin)
		after := e.c.Stats().Properties["site"]
		if hit.Code != served.Code || !reflect.DeepEqual(hit.Header(), served.Header()) || hit.Body.String() != served.Body.String() {
			t.Errorf("%s: ServeHit %d %v %q; Serve %d %v %q", tc.name, hit.Code, hit.Header(), hit.Body,
				served.Code, served.Header(), served.Body)
		}
		if mid.Hits-before.Hits != after.Hits-mid.Hits || mid.Stale-before.Stale != after.Stale-mid.Stale ||
			mid.Hits+mid.Stale != before.Hits+before.Stale+1 {
			t.Errorf("%s: counters before %+v, after ServeHit %+v, after Serve %+v", tc.name, before, mid, after)
		}
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{
		{"miss", req("GET", "/absent")},
		{"stale-while-revalidate", req("GET", "/swr")},
		{"stale", req("GET", "/short")},
		{"post", req("POST", "/fresh")},
		{"if-match", req("GET", "/fresh", "If-Match", `"v1"`)},
		{"upgrade", req("GET", "/fresh", "Upgrade", "websocket")},
		{"only-if-cached miss", req("GET", "/absent", "Cache-Control", "only-if-cached")},
	} {
		before := e.c.Stats()
		w := httptest.NewRecorder()
		if e.c.ServeHit(w, tc.r, p) {
			t.Errorf("%s: ServeHit answered %d", tc.name, w.Code)
		}
		if len(w.Header()) != 0 || w.Body.Len() != 0 || w.Code != http.StatusOK {
			t.Errorf("%s: ServeHit declined but wrote %d %v %q", tc.name, w.Code, w.Header(), w.Body)
		}
		if after := e.c.Stats(); !reflect.DeepEqual(before.Properties, after.Properties) {
			t.Errorf("%s: ServeHit declined but counted: %+v, then %+v", tc.name, before.Properties, after.Properties)
		}
	}
	e.wantHits(3)
}

// TestServeHitLeavesDiskToServe: ServeHit looks in memory only. An object
// found on disk after a restart is declined there, so that Serve reads it,
// moves it to memory and counts that one access; the next hit is ServeHit's.
func TestServeHitLeavesDiskToServe(t *testing.T) {
	dir := t.TempDir()
	e := diskEnv(t, dir, "on disk")
	e.get("/d")
	waitDisk(t, e.c, 1)
	e.c.Close()
	e2 := diskEnv(t, dir, "the origin again")
	p := e2.props["site.test"]
	r := httptest.NewRequest("GET", "http://site.test/d", nil)
	w := httptest.NewRecorder()
	if e2.c.ServeHit(w, r, p) || w.Body.Len() != 0 {
		t.Fatalf("ServeHit answered an object that is only on disk: %q", w.Body)
	}
	noOrigin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("%s went to the origin", r.URL) })
	w = httptest.NewRecorder()
	e2.c.Serve(w, r, p, noOrigin)
	if w.Body.String() != "on disk" {
		t.Fatalf("Serve after a restart: %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	if !e2.c.ServeHit(w, r, p) || w.Body.String() != "on disk" {
		t.Errorf("ServeHit of the object Serve moved to memory: %d %q", w.Code, w.Body)
	}
}
