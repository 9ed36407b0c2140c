package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/property"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Web cache poisoning (issue 17 §2): whatever the cache key ignores, the
// origin never sees. Each test sends what an attacker would to an edge
// with a cache in front of a reflecting origin, waits until the answer is
// stored, then shows a clean client never gets the poisoned answer.

// reflector is an origin that reflects everything a poisoner could use
// into its body, Location and Link, with Cache-Control: max-age=3600.
type reflector struct {
	hits atomic.Int64
	mu   sync.Mutex
	last string // what the last request carried, as the body says
}

// newReflector starts a reflecting origin and returns its origin entry for
// a property file: over plain HTTP (the synchronous path) or over HTTPS
// with HTTP/2 (the http.Transport path), trusted through ca_file.
func newReflector(t *testing.T, secure bool) (*reflector, string) {
	t.Helper()
	ref := &reflector{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ref.hits.Add(1)
		io.Copy(io.Discard, r.Body)
		var ovr, trailers []string
		for k, vv := range r.Header {
			if _, ok := property.OverrideHeader(k); ok || strings.Contains(k, "_") {
				ovr = append(ovr, k+"="+strings.Join(vv, ","))
			}
		}
		for k, vv := range r.Trailer {
			trailers = append(trailers, k+"="+strings.Join(vv, ","))
		}
		slices.Sort(ovr)
		slices.Sort(trailers)
		xfh, xfp := r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto")
		body := fmt.Sprintf("line=%s %s host=%s xfh=%s xfp=%s cc=%s pragma=%s ovr=%v trailers=%v",
			r.Method, r.RequestURI, r.Host, xfh, xfp, r.Header.Get("Cache-Control"), r.Header.Get("Pragma"), ovr, trailers)
		ref.mu.Lock()
		ref.last = body
		ref.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Link", "<//"+xfh+"/static.css>; rel=preload")
		if strings.HasPrefix(r.URL.Path, "/redirect") && xfp == "http" {
			w.Header().Set("Location", "https://"+r.Host+r.URL.Path)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Location", "//"+r.Host+"/next")
		io.WriteString(w, body)
	})
	if !secure {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		return ref, "{url: " + s.URL + "}"
	}
	s := httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(s.Close)
	ca := filepath.Join(t.TempDir(), "origin-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return ref, "{url: " + s.URL + ", ca_file: '" + ca + "'}"
}

func (ref *reflector) lastRequest() string {
	ref.mu.Lock()
	defer ref.mu.Unlock()
	return ref.last
}

const poisonHost = "a.example.com" // under httptest's certificate

// cachingEdge is an edge with a memory cache whose property a.example.com
// caches in front of origin, with extra property lines; https, when
// asked, is its TLS port speaking HTTP/2.
type cachingEdge struct {
	*edge
	c     *cache.Cache
	front *httptest.Server
	tls   *http.Client
}

func newCachingEdge(t *testing.T, origin string, extra ...string) *cachingEdge {
	t.Helper()
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lines := append([]string{"cache: {enabled: true}"}, extra...)
	if slices.ContainsFunc(extra, func(s string) bool { return strings.HasPrefix(s, "cache:") }) {
		lines = extra
	}
	e := newEdge(t, Config{Cache: c}, map[string]string{"a.yaml": prop(poisonHost, origin, lines...)})
	ce := &cachingEdge{edge: e, c: c}
	ce.front = httptest.NewUnstartedServer(e.srv.HTTPSHandler())
	ce.front.EnableHTTP2 = true
	ce.front.StartTLS()
	t.Cleanup(ce.front.Close)
	ce.tls = ce.front.Client()
	ce.tls.Transport.(*http.Transport).TLSClientConfig.ServerName = poisonHost
	ce.tls.CheckRedirect = noRedirect.CheckRedirect
	return ce
}

// doTLS sends a request to the edge's TLS port.
func (ce *cachingEdge) doTLS(method, host, path string, hdr ...string) *http.Response {
	ce.t.Helper()
	req, err := http.NewRequest(method, ce.front.URL+path, nil)
	if err != nil {
		ce.t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := ce.tls.Do(req)
	if err != nil {
		ce.t.Fatal(err)
	}
	ce.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// untilHit repeats send until its answer comes from the cache (the fill
// of the first is stored as its response ends) and returns that answer
// and its body.
func untilHit(t *testing.T, send func() *http.Response) (*http.Response, string) {
	t.Helper()
	for range 500 {
		r := send()
		b := readBody(t, r)
		if strings.Contains(r.Header.Get("Cache-Status"), "hit") {
			return r, b
		}
	}
	t.Fatal("the answer was never stored")
	return nil, ""
}

func isHit(r *http.Response) bool { return strings.Contains(r.Header.Get("Cache-Status"), "hit") }

// poisoned reports whether a response carries anything of the attacker's.
func poisoned(r *http.Response, body string, marks ...string) bool {
	all := body + " " + r.Header.Get("Location") + " " + r.Header.Get("Link")
	for _, m := range marks {
		if strings.Contains(all, m) {
			return true
		}
	}
	return false
}

// TestHostPortNotForwardedUnkeyed: Host a.example.com:1337 is keyed as
// a.example.com; the origin gets a.example.com in Host and
// X-Forwarded-Host (never the port), so what is stored is what a clean
// client would get, over either origin path.
func TestHostPortNotForwardedUnkeyed(t *testing.T) {
	testHostNotForwardedUnkeyed(t, poisonHost+":1337", ":1337")
}

// TestHostTrailingDotNotForwardedUnkeyed: Host A.EXAMPLE.COM. is keyed as
// a.example.com and forwarded as that.
func TestHostTrailingDotNotForwardedUnkeyed(t *testing.T) {
	testHostNotForwardedUnkeyed(t, "A.Example.COM.", "A.Example", "COM.")
}

func testHostNotForwardedUnkeyed(t *testing.T, attackHost string, marks ...string) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http origin", true: "https origin"}[secure], func(t *testing.T) {
			ref, origin := newReflector(t, secure)
			e := newCachingEdge(t, origin)
			_, body := untilHit(t, func() *http.Response { return e.do("GET", attackHost, "/page", nil) })
			if poisoned(&http.Response{}, ref.lastRequest(), marks...) || !strings.Contains(body, "host="+poisonHost+" xfh="+poisonHost+" ") {
				t.Errorf("origin saw the attacker's host: %s", ref.lastRequest())
			}
			clean := e.do("GET", poisonHost, "/page", nil)
			if b := readBody(t, clean); poisoned(clean, b, marks...) {
				t.Errorf("clean client got the poisoned answer (%s): %s; Location %q, Link %q",
					clean.Header.Get("Cache-Status"), b, clean.Header.Get("Location"), clean.Header.Get("Link"))
			}
			if ref.hits.Load() != 1 {
				t.Errorf("origin reached %d times; want 1 (the host as keyed is one key)", ref.hits.Load())
			}
		})
	}
}

// TestSchemeRedirectNotSharedAcrossSchemes: an origin's 301 to https,
// stored for a plain-HTTP request, is never served to an HTTPS client (a
// redirect loop); the HTTPS request has its own key.
func TestSchemeRedirectNotSharedAcrossSchemes(t *testing.T) {
	ref, origin := newReflector(t, false)
	e := newCachingEdge(t, origin)
	r, _ := untilHit(t, func() *http.Response { return e.do("GET", poisonHost, "/redirect", nil) })
	if r.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("plain HTTP: %d, want the origin's 301", r.StatusCode)
	}
	s := e.doTLS("GET", poisonHost, "/redirect")
	if b := readBody(t, s); s.StatusCode != http.StatusOK || !strings.Contains(b, "xfp=https") {
		t.Errorf("HTTPS client got %d %q (Cache-Status %q): the plain-HTTP redirect was shared", s.StatusCode, b, s.Header.Get("Cache-Status"))
	}
	if ref.hits.Load() != 2 {
		t.Errorf("origin reached %d times; want 2 (one per scheme)", ref.hits.Load())
	}
	// Each scheme's copy is then a hit of its own.
	if s, _ := untilHit(t, func() *http.Response { return e.doTLS("GET", poisonHost, "/redirect") }); s.StatusCode != 200 {
		t.Errorf("HTTPS hit: %d", s.StatusCode)
	}
}

// TestSchemeSharedWhenConfigured: cache.schemes: shared keys both schemes
// alike, for an origin that answers both the same.
func TestSchemeSharedWhenConfigured(t *testing.T) {
	ref, origin := newReflector(t, false)
	e := newCachingEdge(t, origin, "cache: {enabled: true, schemes: shared}")
	untilHit(t, func() *http.Response { return e.do("GET", poisonHost, "/same", nil) })
	if s := e.doTLS("GET", poisonHost, "/same"); !isHit(s) {
		t.Errorf("HTTPS after HTTP with schemes: shared: Cache-Status %q, want a hit", s.Header.Get("Cache-Status"))
	}
	if ref.hits.Load() != 1 {
		t.Errorf("origin reached %d times, want 1", ref.hits.Load())
	}
}

// TestPurgeClearsEverySchemeCopy: a URL purge, given either scheme, and a
// prefix purge remove the HTTP and the HTTPS copy alike.
func TestPurgeClearsEverySchemeCopy(t *testing.T) {
	for name, purge := range map[string]cache.Purge{
		"url http":     {URLs: []string{"http://" + poisonHost + "/p?x=1"}},
		"url https":    {URLs: []string{"https://" + poisonHost + "/p?x=1"}},
		"url property": {Property: "a", URLs: []string{"http://" + poisonHost + "/p?x=1"}},
		"prefix":       {Prefixes: []string{"http://" + poisonHost + "/p"}},
	} {
		t.Run(name, func(t *testing.T) {
			ref, origin := newReflector(t, false)
			e := newCachingEdge(t, origin)
			untilHit(t, func() *http.Response { return e.do("GET", poisonHost, "/p?x=1", nil) })
			untilHit(t, func() *http.Response { return e.doTLS("GET", poisonHost, "/p?x=1") })
			before := ref.hits.Load()
			res, err := e.c.Purge(purge)
			if err != nil || res.Purged != 2 {
				t.Errorf("purge: %+v %v, want 2 objects purged", res, err)
			}
			if r := e.do("GET", poisonHost, "/p?x=1", nil); isHit(r) {
				t.Error("the HTTP copy survived the purge")
			}
			if r := e.doTLS("GET", poisonHost, "/p?x=1"); isHit(r) {
				t.Error("the HTTPS copy survived the purge")
			}
			if got := ref.hits.Load() - before; got != 2 {
				t.Errorf("origin reached %d times after the purge, want 2", got)
			}
		})
	}
}

// TestOverrideHeadersDroppedUnlessAllowedAndKeyed: each override header
// (and its '_' spelling, which CGI and PHP read alike) is dropped, so the
// origin never answers a rewritten URL, method, host or scheme that a clean
// client would then get; a header the property allows reaches the origin
// and is keyed, so its answer goes only to requests that carry it.
func TestOverrideHeadersDroppedUnlessAllowedAndKeyed(t *testing.T) {
	ref, origin := newReflector(t, false)
	e := newCachingEdge(t, origin)
	names := property.OverrideHeaders()
	names = append(names, "X_Original_URL", "x_forwarded_scheme", "X_Forwarded_Host", "X_Forwarded_Proto")
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			path := fmt.Sprintf("/o%d", i)
			untilHit(t, func() *http.Response { return e.do("GET", poisonHost, path, nil, name, "/evil") })
			if strings.Contains(ref.lastRequest(), "evil") {
				t.Errorf("origin saw %s: %s", name, ref.lastRequest())
			}
			clean := e.do("GET", poisonHost, path, nil)
			if b := readBody(t, clean); poisoned(clean, b, "evil") {
				t.Errorf("clean client got the poisoned answer: %s", b)
			}
		})
	}
	t.Run("allowed and keyed", func(t *testing.T) {
		ref, origin := newReflector(t, false)
		e := newCachingEdge(t, origin, "headers: {allow_overrides: [X-Forwarded-Prefix]}", "cache: {enabled: true}")
		_, body := untilHit(t, func() *http.Response {
			return e.do("GET", poisonHost, "/p", nil, "X-Forwarded-Prefix", "/evil", "X-Original-URL", "/evil2")
		})
		if !strings.Contains(body, "X-Forwarded-Prefix=/evil") || strings.Contains(body, "evil2") {
			t.Errorf("allowed header not forwarded, or another one was: %s", body)
		}
		clean := e.do("GET", poisonHost, "/p", nil)
		if b := readBody(t, clean); isHit(clean) || poisoned(clean, b, "evil") {
			t.Errorf("clean client got the allowed header's answer (%s): %s", clean.Header.Get("Cache-Status"), b)
		}
		other := e.do("GET", poisonHost, "/p", nil, "X-Forwarded-Prefix", "/other")
		if b := readBody(t, other); isHit(other) || !strings.Contains(b, "X-Forwarded-Prefix=/other") {
			t.Errorf("another value got %s: %s", other.Header.Get("Cache-Status"), b)
		}
		if ref.hits.Load() != 3 {
			t.Errorf("origin reached %d times, want 3 (one per value, one without)", ref.hits.Load())
		}
		// Purging the URL clears the keyed copies too.
		if res, _ := e.c.Purge(cache.Purge{URLs: []string{"http://" + poisonHost + "/p"}}); res.Purged != 3 {
			t.Errorf("purge cleared %d objects, want 3", res.Purged)
		}
	})
}

// TestOverrideHeadersDroppedWithoutCache: a property that does not cache
// drops them too, so that turning the cache on changes nothing the origin
// sees.
func TestOverrideHeadersDroppedWithoutCache(t *testing.T) {
	_, origin := newReflector(t, false)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop(poisonHost, origin, "headers: {allow_overrides: [X-Http-Method-Override]}")})
	b := readBody(t, e.do("GET", poisonHost, "/", nil, "X-Original-URL", "/admin", "X-Http-Method-Override", "PUT"))
	if strings.Contains(b, "/admin") || !strings.Contains(b, "X-Http-Method-Override=PUT") {
		t.Errorf("origin saw %s", b)
	}
}

// TestRequestTrailersNotForwarded: a chunked request whose trailer carries
// Content-Length, Host and an override header: on a caching property no
// trailer field reaches the origin; on another, only the harmless one
// (X-Checksum) does. Over both origin paths.
func TestRequestTrailersNotForwarded(t *testing.T) {
	for _, secure := range []bool{false, true} {
		for _, cached := range []bool{true, false} {
			name := map[bool]string{false: "http origin", true: "https origin"}[secure] + map[bool]string{false: "", true: " caching"}[cached]
			t.Run(name, func(t *testing.T) {
				_, origin := newReflector(t, secure)
				var e *edge
				if cached {
					e = newCachingEdge(t, origin).edge
				} else {
					e = newEdge(t, Config{}, map[string]string{"a.yaml": prop(poisonHost, origin)})
				}
				c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprintf(c, "POST /t HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, Host, X-Original-Url\r\n\r\n"+
					"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nContent-Length: 99\r\nHost: evil.example\r\nX-Original-Url: /evil\r\n\r\n", poisonHost)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				want := "trailers=[X-Checksum=abc]"
				if cached {
					want = "trailers=[]"
				}
				if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
					t.Errorf("%d: origin saw %s; want %s", resp.StatusCode, b, want)
				}
			})
		}
	}
}

// TestRequestLineInjectionRefusedH2: an HTTP/2 :path whose query holds a
// space (Go's HTTP/2 server takes "/a?x HTTP/1.0 y") is refused with 400,
// never written into the origin's request line (the origin, which reads
// request lines byte for byte, is never even dialled), nor stored.
func TestRequestLineInjectionRefusedH2(t *testing.T) {
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok")
	})
	e := newCachingEdge(t, "{url: "+o.url()+"}")
	pool := x509.NewCertPool()
	pool.AddCert(e.front.Certificate())
	for _, path := range []string{"/a?x HTTP/1.0 y", "/a? ", "/a?x HTTP/1.1\r\nHost: evil.example", "/a?x\ty", "/a?x\x7f"} {
		status, err := rawH2Get(e.front.Listener.Addr().String(), pool, path)
		if err != nil {
			t.Fatalf("%q: %v", path, err)
		}
		// Spaces reach the edge, which answers 400; Go's HTTP/2 server
		// resets the stream itself for control bytes.
		if status != "400" && (!strings.ContainsAny(path, "\r\t\x7f") || !strings.HasPrefix(status, "RST")) {
			t.Errorf("%q: status %s, want 400", path, status)
		}
	}
	if n := o.conns.Load(); n != 0 {
		t.Errorf("origin dialled %d times for refused requests", n)
	}
	// A clean query still goes through.
	if status, err := rawH2Get(e.front.Listener.Addr().String(), pool, "/a?x=%20y"); err != nil || status != "200" {
		t.Errorf("clean query: %s %v", status, err)
	}
}

// rawH2Get sends one GET with a raw :path over HTTP/2 and returns the
// response's :status.
func rawH2Get(addr string, roots *x509.CertPool, path string) (string, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: poisonHost, RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return "", err
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		return "", err
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", poisonHost}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return "", err
	}
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return "", err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			return "RST " + f.ErrCode.String(), nil
		case *http2.GoAwayFrame:
			return "GOAWAY " + f.ErrCode.String(), nil
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				return "", err
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					return hf.Value, nil
				}
			}
			return "", fmt.Errorf("no :status in %v", fields)
		}
	}
}

// TestClientNoCacheIgnoredByDefault: a client's no-cache, max-age=0 and
// Pragma: no-cache neither send the edge to the origin for a stored
// object (any client could otherwise force origin traffic for every URL)
// nor reach the origin on a fill.
func TestClientNoCacheIgnoredByDefault(t *testing.T) {
	ref, origin := newReflector(t, false)
	e := newCachingEdge(t, origin)
	_, body := untilHit(t, func() *http.Response {
		return e.do("GET", poisonHost, "/d", nil, "Cache-Control", "no-cache", "Pragma", "no-cache")
	})
	if !strings.Contains(body, "cc= pragma= ") {
		t.Errorf("the client's directives reached the origin: %s", body)
	}
	for _, kv := range [][2]string{{"Cache-Control", "no-cache"}, {"Cache-Control", "max-age=0"}, {"Pragma", "no-cache"}} {
		if r := e.do("GET", poisonHost, "/d", nil, kv[0], kv[1]); !isHit(r) {
			t.Errorf("%s: %s: Cache-Status %q, want a hit", kv[0], kv[1], r.Header.Get("Cache-Status"))
		}
	}
	if ref.hits.Load() != 1 {
		t.Errorf("origin reached %d times, want 1", ref.hits.Load())
	}
}

// TestClientNoCacheHonouredWhenSet: with cache.client_directives: honour,
// they revalidate and reach the origin.
func TestClientNoCacheHonouredWhenSet(t *testing.T) {
	ref, origin := newReflector(t, false)
	e := newCachingEdge(t, origin, "cache: {enabled: true, client_directives: honour}")
	untilHit(t, func() *http.Response { return e.do("GET", poisonHost, "/d", nil) })
	before := ref.hits.Load()
	for _, kv := range [][2]string{{"Cache-Control", "no-cache"}, {"Cache-Control", "max-age=0"}, {"Pragma", "no-cache"}} {
		r := e.do("GET", poisonHost, "/d", nil, kv[0], kv[1])
		want := "cc=" + kv[1]
		if kv[0] == "Pragma" {
			want = "pragma=" + kv[1]
		}
		if b := readBody(t, r); isHit(r) || !strings.Contains(b, want) {
			t.Errorf("%s: %s: Cache-Status %q, origin saw %s", kv[0], kv[1], r.Header.Get("Cache-Status"), b)
		}
	}
	if got := ref.hits.Load() - before; got != 3 {
		t.Errorf("origin reached %d times, want 3", got)
	}
}

// TestUnkeyedQueryNotForwarded: a query parameter the key ignores (cache.query
// none, or a list) never reaches the origin, so it cannot vary what is stored
// for everyone: the classic unkeyed-parameter poisoning (a reflected
// utm_content) finds nothing to reflect.
func TestUnkeyedQueryNotForwarded(t *testing.T) {
	for _, tc := range []struct{ query, sent, origin string }{
		{"[page]", "/q?utm_content=%3Cscript%3E&page=2", "/q?page=2"},
		{"none", "/q?utm_content=%3Cscript%3E", "/q"},
		{"sorted", "/q?b=2&a=1&utm_content=%3Cscript%3E", "/q?a=1&b=2&utm_content=%3Cscript%3E"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			_, origin := newReflector(t, false)
			e := newCachingEdge(t, origin, "cache: {enabled: true, query: "+tc.query+"}")
			_, body := untilHit(t, func() *http.Response { return e.do("GET", poisonHost, tc.sent, nil) })
			if !strings.Contains(body, "line=GET "+tc.origin+" ") {
				t.Errorf("origin got another query than the key's: %s", body)
			}
			if tc.query == "sorted" {
				return // every parameter is keyed: nothing to poison
			}
			clean := e.do("GET", poisonHost, tc.origin, nil)
			if b := readBody(t, clean); !isHit(clean) || strings.Contains(b, "script") {
				t.Errorf("clean client (%s) got %s", clean.Header.Get("Cache-Status"), b)
			}
		})
	}
}
