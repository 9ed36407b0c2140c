package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/internal/testutil"
)

// userOrigin answers every request with the page of the user its
// credential names ("page of alice" for Cookie: sid=alice or
// Authorization: Bearer alice; "page of anonymous" without one), as an
// account page does: the response head is set by head, the ETag is the
// user's (a hash of the body would differ the same way) and a matching
// If-None-Match gets a 304. It counts the requests it answered.
func userOrigin(t *testing.T, head func(path string, h http.Header)) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		user := "anonymous"
		if c, err := r.Cookie("sid"); err == nil {
			user = c.Value
		} else if a := r.Header.Get("Authorization"); a != "" {
			user = strings.TrimPrefix(a, "Bearer ")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Etag", `"`+user+`"`)
		head(r.URL.Path, w.Header())
		if r.Header.Get("If-None-Match") == `"`+user+`"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("page of " + user))
	}))
	t.Cleanup(o.Close)
	return o, &n
}

// deceptionEdge is an edge with a cache in front of origin, for host
// d.example with the given cache block.
func deceptionEdge(t *testing.T, origin, cacheBlock string, extra ...string) (*edge, *cache.Cache) {
	t.Helper()
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := newEdge(t, Config{Cache: c}, map[string]string{
		"d.yaml": prop("d.example", "{url: "+origin+"}", append([]string{"cache: " + cacheBlock}, extra...)...)})
	return e, c
}

// victimThenAttacker is the cache deception attack: the victim, lured to
// path, requests it with their credential; then the attacker requests the
// same URL without one. The victim's answer must say why it was not
// stored (decided at its head, so nothing is racing), and the attacker
// must get a page of their own from the origin, never the victim's.
func victimThenAttacker(t *testing.T, e *edge, n *atomic.Int64, path, credential, detail string) {
	t.Helper()
	name, value, _ := strings.Cut(credential, ": ")
	before := n.Load()
	v := e.do("GET", "d.example", path, nil, name, value)
	if b := readBody(t, v); b != "page of alice" {
		t.Fatalf("victim got %q", b)
	}
	if cs := v.Header.Get("Cache-Status"); strings.Contains(cs, "stored") || !strings.Contains(cs, "detail="+detail) {
		t.Fatalf("victim's response: Cache-Status %q, want it not stored with detail=%s", cs, detail)
	}
	a := e.do("GET", "d.example", path, nil)
	if b := readBody(t, a); b != "page of anonymous" {
		t.Fatalf("attacker got %q (Cache-Status %q): the victim's page was shared", b, a.Header.Get("Cache-Status"))
	}
	if got := n.Load() - before; got != 2 {
		t.Fatalf("origin answered %d requests, want 2 (the attacker's went to the origin)", got)
	}
}

// waitHit requests path until it is a hit and returns its body.
func waitHit(t *testing.T, e *edge, path string) string {
	t.Helper()
	var body string
	testutil.WaitFor(t, path+" served from the cache", func() bool {
		r := e.do("GET", "d.example", path, nil)
		body = readBody(t, r)
		return strings.Contains(r.Header.Get("Cache-Status"), "hit")
	})
	return body
}

// TestCacheDeceptionCookieDefaultTTL: with default_ttl, the victim's
// /account.php/x1.css (their cookie, no Cache-Control from the origin) is
// not stored, so a cookieless attacker gets their own page; a cookieless
// request is still stored on default_ttl (the setting works).
func TestCacheDeceptionCookieDefaultTTL(t *testing.T) {
	o, n := userOrigin(t, func(string, http.Header) {})
	e, _ := deceptionEdge(t, o.URL, "{enabled: true, default_ttl: 1h, deception_armor: false}")
	victimThenAttacker(t, e, n, "/account.php/x1.css", "Cookie: sid=alice", "cookie-without-explicit-freshness")
	if b := waitHit(t, e, "/account.php/x1.css"); b != "page of anonymous" {
		t.Fatalf("hit: %q", b)
	}
}

// TestCacheDeceptionHeuristicLastModified: the same with heuristic
// freshness (RFC 9111 §4.2.2: a Last-Modified 70 days old would give 7
// days), for a cookie and for an Authorization the origin marked
// must-revalidate (RFC 9111 §3.5 lets that be stored, on explicit
// freshness only).
func TestCacheDeceptionHeuristicLastModified(t *testing.T) {
	lm := time.Now().Add(-70 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct{ credential, cc, detail string }{
		{"Cookie: sid=alice", "", "cookie-without-explicit-freshness"},
		{"Authorization: Bearer alice", "must-revalidate", "authorization-without-explicit-freshness"},
	} {
		t.Run(strings.Fields(tc.credential)[0], func(t *testing.T) {
			o, n := userOrigin(t, func(_ string, h http.Header) {
				h.Set("Last-Modified", lm)
				if tc.cc != "" {
					h.Set("Cache-Control", tc.cc)
				}
			})
			e, _ := deceptionEdge(t, o.URL, "{enabled: true, deception_armor: false}")
			victimThenAttacker(t, e, n, "/account.php/x1.css", tc.credential, tc.detail)
			if b := waitHit(t, e, "/account.php/x1.css"); b != "page of anonymous" {
				t.Fatalf("hit: %q", b)
			}
		})
	}
}

// TestCacheDeceptionStaleWhileRevalidateDefault: the property's
// stale_while_revalidate does not apply to a credentialed answer the
// origin gave max-age=0: stored (it has a validator), it is revalidated
// for the attacker, never served to them stale.
func TestCacheDeceptionStaleWhileRevalidateDefault(t *testing.T) {
	o, n := userOrigin(t, func(_ string, h http.Header) { h.Set("Cache-Control", "max-age=0") })
	e, c := deceptionEdge(t, o.URL, "{enabled: true, stale_while_revalidate: 1h, deception_armor: false}")
	v := e.do("GET", "d.example", "/account", nil, "Cookie", "sid=alice")
	if b := readBody(t, v); b != "page of alice" || !strings.Contains(v.Header.Get("Cache-Status"), "stored; ttl=0") {
		t.Fatalf("victim: %q, Cache-Status %q", b, v.Header.Get("Cache-Status"))
	}
	testutil.WaitFor(t, "the victim's response stored", func() bool { return c.Stats().Memory.Objects == 1 })
	a := e.do("GET", "d.example", "/account", nil)
	if b := readBody(t, a); b != "page of anonymous" || n.Load() != 2 {
		t.Fatalf("attacker got %q (Cache-Status %q) after %d origin requests: served the victim's page stale",
			b, a.Header.Get("Cache-Status"), n.Load())
	}
}

// TestCacheDeceptionArmorExtensionMismatch: the origin gives its account
// page an explicit max-age (no public, so the cookie rule does not
// apply); at a URL that looks like a static file the page's text/html
// contradicts the extension, so it is not stored, however the suffix is
// attached. A real stylesheet is stored and served as a hit.
func TestCacheDeceptionArmorExtensionMismatch(t *testing.T) {
	o, n := userOrigin(t, func(path string, h http.Header) {
		h.Set("Cache-Control", "max-age=600")
		if strings.HasSuffix(path, "/site.css") {
			h.Set("Content-Type", "text/css")
		}
	})
	e, _ := deceptionEdge(t, o.URL, "{enabled: true}")
	for _, path := range []string{"/account.php/x1.css", "/account.php;x1.js", "/account.php%2Fx1.png",
		"/account.php/x1.css;v=2", "/account.php/x1.JSON", "/account.php/.woff2"} {
		t.Run(path, func(t *testing.T) {
			victimThenAttacker(t, e, n, path, "Cookie: sid=alice", "deception-armor")
		})
	}
	r := e.do("GET", "d.example", "/static/site.css", nil, "Cookie", "sid=alice")
	if cs := r.Header.Get("Cache-Status"); !strings.Contains(cs, "stored") {
		t.Fatalf("a stylesheet was not stored: Cache-Status %q", cs)
	}
	readBody(t, r)
	if b := waitHit(t, e, "/static/site.css"); b != "page of alice" {
		t.Fatalf("stylesheet hit: %q", b)
	}
}

// TestCacheDeceptionArmorOff: cache.deception_armor: false lets an
// explicitly fresh response be stored whatever its type (the operator's
// choice; a cookieless request, so only the armor is in question).
func TestCacheDeceptionArmorOff(t *testing.T) {
	o, _ := userOrigin(t, func(_ string, h http.Header) { h.Set("Cache-Control", "max-age=600") })
	e, _ := deceptionEdge(t, o.URL, "{enabled: true, deception_armor: false}")
	r := e.do("GET", "d.example", "/legacy/x1.css", nil)
	readBody(t, r)
	if cs := r.Header.Get("Cache-Status"); !strings.Contains(cs, "stored") {
		t.Fatalf("Cache-Status %q, want stored", cs)
	}
}

// TestCacheDeceptionCookieRemovedByRule: a property whose request rules
// remove Cookie never sends it to the origin, which cannot answer per
// user: default_ttl applies to such requests.
func TestCacheDeceptionCookieRemovedByRule(t *testing.T) {
	o, _ := userOrigin(t, func(string, http.Header) {})
	e, _ := deceptionEdge(t, o.URL, "{enabled: true, default_ttl: 1h}", "headers: {request: {remove: [Cookie]}}")
	r := e.do("GET", "d.example", "/page", nil, "Cookie", "sid=alice")
	if b := readBody(t, r); b != "page of anonymous" || !strings.Contains(r.Header.Get("Cache-Status"), "stored") {
		t.Fatalf("%q, Cache-Status %q", b, r.Header.Get("Cache-Status"))
	}
}

// TestCredentialedRevalidationKeepsStoredCopy: a client with a cookie
// whose request revalidates a stale heuristic object (its answer not
// storable for its cookie) does not evict the copy stored for everyone.
func TestCredentialedRevalidationKeepsStoredCopy(t *testing.T) {
	lm := time.Now().Add(-100 * time.Second).UTC().Format(http.TimeFormat) // heuristic lifetime: 10s
	o, _ := userOrigin(t, func(_ string, h http.Header) { h.Set("Last-Modified", lm) })
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	c, err := cache.New(cache.Config{Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := newEdge(t, Config{Cache: c}, map[string]string{
		"d.yaml": prop("d.example", "{url: "+o.URL+"}", "cache: {enabled: true}")})
	readBody(t, e.do("GET", "d.example", "/page", nil))
	testutil.WaitFor(t, "the page stored", func() bool { return c.Stats().Memory.Objects == 1 })
	now.Add(int64(time.Hour))
	r := e.do("GET", "d.example", "/page", nil, "Cookie", "sid=alice")
	if b := readBody(t, r); b != "page of alice" {
		t.Fatalf("the cookie's request got %q", b)
	}
	if got := c.Stats().Memory.Objects; got != 1 {
		t.Fatalf("%d objects after the credentialed revalidation, want the stored copy kept", got)
	}
}

// TestCacheDeceptionMaxStale: a credentialed answer the origin made stale
// at once (max-age=0, with a validator, so it is stored for revalidation)
// is not handed to a client that says it accepts any stale response.
func TestCacheDeceptionMaxStale(t *testing.T) {
	o, n := userOrigin(t, func(_ string, h http.Header) { h.Set("Cache-Control", "max-age=0") })
	e, c := deceptionEdge(t, o.URL, "{enabled: true, deception_armor: false}")
	readBody(t, e.do("GET", "d.example", "/account", nil, "Cookie", "sid=alice"))
	testutil.WaitFor(t, "the victim's response stored", func() bool { return c.Stats().Memory.Objects == 1 })
	a := e.do("GET", "d.example", "/account", nil, "Cache-Control", "max-stale")
	if b := readBody(t, a); b != "page of anonymous" || n.Load() != 2 {
		t.Fatalf("attacker with max-stale got %q (Cache-Status %q) after %d origin requests", b, a.Header.Get("Cache-Status"), n.Load())
	}
}
