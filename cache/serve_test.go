package cache

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fixed answers with the given headers and body.
func fixed(body string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		fmt.Fprint(w, body)
	}
}

func TestHitDoesNotTouchOrigin(t *testing.T) {
	e := newEnv(t, Config{}, fixed("hello", "Cache-Control", "max-age=60"))
	resp, body := e.get("/a")
	if body != "hello" || !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=uri-miss; stored") || resp.Header.Get("Age") == "" {
		t.Fatalf("miss: got %q, Cache-Status %q, Age %q", body, resp.Header.Get("Cache-Status"), resp.Header.Get("Age"))
	}
	e.settle()
	resp, body = e.get("/a")
	if body != "hello" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "Edge; hit; ttl=") {
		t.Fatalf("hit: got %q, Cache-Status %q", body, resp.Header.Get("Cache-Status"))
	}
	if resp.Header.Get("Age") == "" || resp.Header.Get("Content-Length") != "5" {
		t.Errorf("hit: Age %q, Content-Length %q", resp.Header.Get("Age"), resp.Header.Get("Content-Length"))
	}
	e.wantHits(1)
	st := e.c.Stats().Properties["site"]
	if st.Hits != 1 || st.Misses != 1 || st.Memory.Objects != 1 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestNotStored(t *testing.T) {
	cases := []struct {
		name string
		kv   []string
		req  []string
	}{
		{"no-store", []string{"Cache-Control", "max-age=60, no-store"}, nil},
		{"private", []string{"Cache-Control", "max-age=60, private"}, nil},
		{"set-cookie", []string{"Cache-Control", "max-age=60", "Set-Cookie", "s=1"}, nil},
		{"authorization", []string{"Cache-Control", "max-age=60"}, []string{"Authorization", "Bearer t"}},
		{"vary star", []string{"Cache-Control", "max-age=60", "Vary", "*"}, nil},
		{"request no-store (honoured)", []string{"Cache-Control", "max-age=60"}, []string{"Cache-Control", "no-store"}},
		{"cdn-cache-control no-store", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "no-store"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{}, fixed("x", tc.kv...), honouring("site"))
			e.get("/", tc.req...)
			e.settle()
			resp, _ := e.get("/", tc.req...)
			e.wantHits(2)
			if resp.Header.Get("Cache-Status") == "" || resp.Header.Get("Age") == "" {
				t.Errorf("Cache-Status %q, Age %q: want both on every response", resp.Header.Get("Cache-Status"), resp.Header.Get("Age"))
			}
		})
	}
}

func TestAuthorizationWithPublicIsStored(t *testing.T) {
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "public, max-age=60"))
	e.get("/", "Authorization", "Bearer t")
	e.settle()
	e.get("/", "Authorization", "Bearer t")
	e.wantHits(1)
}

func TestVary(t *testing.T) {
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprint(w, "lang:"+r.Header.Get("Accept-Language"))
	})
	_, b := e.get("/v", "Accept-Language", "fr")
	e.settle()
	_, b2 := e.get("/v", "Accept-Language", "de")
	e.settle()
	_, b3 := e.get("/v", "Accept-Language", "fr")
	_, b4 := e.get("/v", "Accept-Language", "de")
	if b != "lang:fr" || b2 != "lang:de" || b3 != "lang:fr" || b4 != "lang:de" {
		t.Fatalf("got %q %q %q %q", b, b2, b3, b4)
	}
	e.wantHits(2)
	// A header neither in the key nor in Vary does not change what is served.
	_, b5 := e.get("/v", "Accept-Language", "fr", "X-Forwarded-Host", "evil.example", "X-Original-URL", "/admin")
	if b5 != "lang:fr" {
		t.Errorf("poisoned: got %q", b5)
	}
	e.wantHits(2)
}

func TestVaryOnHundredsOfHeadersIsServedUncached(t *testing.T) {
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("X-H%d", i))
	}
	e := newEnv(t, Config{}, fixed("ok", "Cache-Control", "max-age=60", "Vary", strings.Join(names, ", ")))
	for range 2 {
		if _, b := e.get("/"); b != "ok" {
			t.Fatalf("got %q", b)
		}
		e.settle()
	}
	e.wantHits(2)
}

func TestPropertiesAreIsolated(t *testing.T) {
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "for "+r.Host)
	}, testProperty("a"), testProperty("b"))
	_, b1 := e.get("/same", "Host", "a.test")
	e.settle()
	_, b2 := e.get("/same", "Host", "b.test")
	if b1 != "for a.test" || b2 != "for b.test" {
		t.Fatalf("got %q, %q", b1, b2)
	}
	e.wantHits(2)
}

// TestRequestDirectives: with cache.client_directives: honour, a client's
// Cache-Control and Pragma count (RFC 9111 §5.2.1).
func TestRequestDirectives(t *testing.T) {
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "max-age=60", "ETag", `"v1"`), honouring("site"))
	resp, _ := e.get("/r", "Cache-Control", "only-if-cached")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("only-if-cached on a miss: got %d, want 504", resp.StatusCode)
	}
	e.wantHits(0)
	e.get("/r")
	e.settle()
	if resp, _ := e.get("/r", "Cache-Control", "only-if-cached"); resp.StatusCode != 200 {
		t.Fatalf("only-if-cached on a hit: got %d", resp.StatusCode)
	}
	e.wantHits(1)
	resp, _ = e.get("/r", "Cache-Control", "no-cache")
	e.wantHits(2) // revalidated
	if !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=") {
		t.Errorf("no-cache: Cache-Status %q", resp.Header.Get("Cache-Status"))
	}
	e.settle()
	e.advance(30 * time.Second)
	e.get("/r", "Cache-Control", "max-age=10")
	e.wantHits(3)
	e.settle()
	e.advance(30 * time.Second)
	e.get("/r", "Cache-Control", "min-fresh=40")
	e.wantHits(4)
	e.settle()
	e.get("/r", "Pragma", "no-cache")
	e.wantHits(5)
}

func TestMaxStale(t *testing.T) {
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "max-age=10"))
	e.get("/")
	e.settle()
	e.advance(20 * time.Second)
	resp, _ := e.get("/", "Cache-Control", "max-stale=30")
	e.wantHits(1)
	if !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=stale") {
		t.Errorf("Cache-Status %q", resp.Header.Get("Cache-Status"))
	}
	e.get("/", "Cache-Control", "max-stale=5")
	e.wantHits(2)
}

func TestRevalidationUpdatesStoredHead(t *testing.T) {
	var n atomic.Int64
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("X-Version", fmt.Sprint(n.Add(1)))
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, "body")
	})
	e.get("/")
	e.settle()
	e.advance(time.Minute)
	resp, body := e.get("/")
	if body != "body" || resp.Header.Get("X-Version") != "2" || !strings.Contains(resp.Header.Get("Cache-Status"), "fwd-status=304") {
		t.Fatalf("revalidated: body %q, X-Version %q, Cache-Status %q", body, resp.Header.Get("X-Version"), resp.Header.Get("Cache-Status"))
	}
	e.settle()
	resp, body = e.get("/")
	if body != "body" || resp.Header.Get("X-Version") != "2" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "Edge; hit") {
		t.Fatalf("after: body %q, X-Version %q, Cache-Status %q", body, resp.Header.Get("X-Version"), resp.Header.Get("Cache-Status"))
	}
	e.wantHits(2)
}

func TestHeadFromStoredGet(t *testing.T) {
	e := newEnv(t, Config{}, fixed("twelve bytes", "Cache-Control", "max-age=60"))
	e.get("/h")
	e.settle()
	resp, body := e.do(http.MethodHead, "/h")
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "12" {
		t.Fatalf("HEAD: %d %q Content-Length %q", resp.StatusCode, body, resp.Header.Get("Content-Length"))
	}
	e.wantHits(1)
}

func TestClientConditionals(t *testing.T) {
	lm := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "max-age=60", "ETag", `"abc"`, "Last-Modified", lm))
	e.get("/c")
	e.settle()
	if resp, _ := e.get("/c", "If-None-Match", `W/"abc"`); resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != `"abc"` {
		t.Errorf("If-None-Match: got %d", resp.StatusCode)
	}
	if resp, _ := e.get("/c", "If-Modified-Since", time.Now().UTC().Format(http.TimeFormat)); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-Modified-Since: got %d", resp.StatusCode)
	}
	if resp, _ := e.get("/c", "If-None-Match", `"other"`); resp.StatusCode != 200 {
		t.Errorf("other ETag: got %d", resp.StatusCode)
	}
	e.wantHits(1)
}

func TestUnsafeMethodsInvalidate(t *testing.T) {
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.Header().Set("Location", "/other")
			w.Header().Set("Content-Location", "http://elsewhere.example/x")
			w.WriteHeader(http.StatusCreated)
			return
		}
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, r.URL.Path)
	})
	e.get("/p")
	e.get("/other")
	e.settle()
	e.wantHits(2)
	e.do(http.MethodDelete, "/p") // an error does not invalidate
	e.get("/p")
	e.wantHits(3)
	e.do(http.MethodPost, "/p")
	e.get("/p")
	e.get("/other")
	e.wantHits(6)
}

func TestStaleWhileRevalidateRefreshesOnce(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int64
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			<-release
		}
		w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=60")
		fmt.Fprint(w, "v", n.Load())
	})
	e.get("/s")
	e.settle()
	e.advance(5 * time.Second)
	for range 5 {
		resp, body := e.get("/s")
		if body != "v1" || !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=stale") {
			t.Fatalf("stale: got %q, Cache-Status %q", body, resp.Header.Get("Cache-Status"))
		}
	}
	close(release)
	e.settle()
	e.wantHits(2)
	if _, body := e.get("/s"); body != "v2" {
		t.Errorf("after the refresh: got %q, want v2", body)
	}
}

func TestStaleIfError(t *testing.T) {
	var fail atomic.Bool
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=1, stale-if-error=60")
		fmt.Fprint(w, "good")
	})
	e.get("/e")
	e.settle()
	e.advance(10 * time.Second)
	fail.Store(true)
	resp, body := e.get("/e")
	if resp.StatusCode != 200 || body != "good" {
		t.Fatalf("origin error: got %d %q, want the stale object", resp.StatusCode, body)
	}
	// Origin gone altogether (the proxy answers 502).
	e.origin.Close()
	e.settle()
	resp, body = e.get("/e")
	if resp.StatusCode != 200 || body != "good" {
		t.Fatalf("origin down: got %d %q", resp.StatusCode, body)
	}
	e.advance(2 * time.Minute) // past the window
	e.settle()
	if resp, _ = e.get("/e"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("past stale-if-error: got %d, want 502", resp.StatusCode)
	}
}

func TestMustRevalidateIsNotServedStaleOnError(t *testing.T) {
	var fail atomic.Bool
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "max-age=1, must-revalidate, stale-if-error=60")
		fmt.Fprint(w, "good")
	})
	e.get("/")
	e.settle()
	e.advance(10 * time.Second)
	fail.Store(true)
	if resp, _ := e.get("/"); resp.StatusCode != 500 {
		t.Fatalf("got %d, want the origin's 500", resp.StatusCode)
	}
}

func TestCDNCacheControlAndTagsAreNotForwarded(t *testing.T) {
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "no-store", "CDN-Cache-Control", "max-age=60",
		"Surrogate-Key", "a b", "Cache-Tag", "c,d"))
	resp, _ := e.get("/t")
	e.settle()
	for _, h := range []string{"Cdn-Cache-Control", "Surrogate-Key", "Cache-Tag"} {
		if resp.Header.Get(h) != "" {
			t.Errorf("miss forwarded %s", h)
		}
	}
	resp, _ = e.get("/t")
	e.wantHits(1)
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Surrogate-Key") != "" {
		t.Errorf("hit: Cache-Control %q, Surrogate-Key %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Surrogate-Key"))
	}
	for _, tag := range []string{"b", "c"} {
		n, err := e.c.Purge(Purge{Tags: []string{tag}})
		if err != nil {
			t.Fatal(err)
		}
		if tag == "b" && n.Purged != 1 {
			t.Errorf("purge tag %s: purged %d, want 1", tag, n.Purged)
		}
	}
	e.get("/t")
	e.wantHits(2)
}

func TestBadOriginInputIsServed(t *testing.T) {
	for _, kv := range [][]string{
		{"Cache-Control", `max-age="`, "Expires", "yesterday"},
		{"Cache-Control", "max-age=-100"},
		{"Cache-Control", "max-age=999999999999999999999999"},
		{"Cache-Control", "s-maxage=abc, max-age"},
		{"Age", "-1", "Cache-Control", "max-age=60"},
		{"Age", "18446744073709551616", "Cache-Control", "max-age=60"},
		{"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"},
		{"Date", "garbage", "Cache-Control", "max-age=60"},
		{"Cache-Control", ";;==,,\"\\"},
	} {
		e := newEnv(t, Config{}, fixed("served", kv...))
		for range 2 {
			if resp, body := e.get("/"); resp.StatusCode != 200 || body != "served" {
				t.Fatalf("%q: got %d %q", kv, resp.StatusCode, body)
			}
			e.settle()
		}
	}
}

func TestQueryModes(t *testing.T) {
	p := testProperty("site")
	p.Cache.Query = "sorted"
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "max-age=60"), p)
	e.get("/q?b=2&a=1")
	e.settle()
	e.get("/q?a=1&b=2")
	e.wantHits(1)
	e.get("/q?a=1")
	e.wantHits(2)
}

func TestOriginErrorKeepsTheStoredObject(t *testing.T) {
	var fail atomic.Bool
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set("Cache-Control", "max-age=1")
		w.Header().Set("ETag", `"k"`)
		fmt.Fprint(w, "kept")
	})
	e.get("/k")
	e.settle()
	e.advance(5 * time.Second)
	fail.Store(true)
	if resp, _ := e.get("/k"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d, want the origin's 502 (no stale-if-error)", resp.StatusCode)
	}
	e.settle()
	if resp, body := e.get("/k", "Cache-Control", "max-stale"); body != "kept" || resp.StatusCode != 200 {
		t.Fatalf("after the error: got %d %q, want the stored object", resp.StatusCode, body)
	}
}

// TestClientDirectivesIgnoredByDefault: without cache.client_directives:
// honour, a client's no-cache, max-age=0, min-fresh, no-store and Pragma:
// no-cache neither make the cache go to the origin nor reach it on a
// fill; max-stale and only-if-cached, which only spare the origin, count.
func TestClientDirectivesIgnoredByDefault(t *testing.T) {
	var seen atomic.Value
	seen.Store("")
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Cache-Control") + "|" + r.Header.Get("Pragma"))
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Etag", `"v1"`)
		fmt.Fprint(w, "x")
	})
	e.get("/r", "Cache-Control", "no-cache, no-store", "Pragma", "no-cache")
	e.settle()
	if s := seen.Load(); s != "|" {
		t.Errorf("the fill sent the client's directives to the origin: %q", s)
	}
	e.wantHits(1) // stored despite the client's no-store
	for _, kv := range [][]string{{"Cache-Control", "no-cache"}, {"Cache-Control", "max-age=0"}, {"Pragma", "no-cache"},
		{"Cache-Control", "min-fresh=3600"}, {"Cache-Control", "no-store"}} {
		resp, _ := e.get("/r", kv...)
		if !strings.HasPrefix(resp.Header.Get("Cache-Status"), "Edge; hit") {
			t.Errorf("%s: %s: Cache-Status %q, want a hit", kv[0], kv[1], resp.Header.Get("Cache-Status"))
		}
	}
	e.wantHits(1)
	if resp, _ := e.get("/absent", "Cache-Control", "only-if-cached"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("only-if-cached on a miss: %d, want 504", resp.StatusCode)
	}
	e.advance(70 * time.Second)
	if resp, _ := e.get("/r", "Cache-Control", "max-stale=30"); !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=stale") {
		t.Errorf("max-stale: Cache-Status %q", resp.Header.Get("Cache-Status"))
	}
	e.wantHits(1)
}
