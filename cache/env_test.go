package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/property"
)

// env is a cache served over a real socket in front of a real origin,
// through a plain ReverseProxy as the upstream.
type env struct {
	t      *testing.T
	c      *Cache
	origin *httptest.Server
	edge   *httptest.Server
	hits   atomic.Int64 // requests the origin saw
	props  map[string]*property.Property
	now    atomic.Int64 // fake clock, Unix nanoseconds; 0: real time
}

func testProperty(name string) *property.Property {
	return &property.Property{Name: name, Cache: property.Cache{Enabled: true,
		MaxObjectSize: property.DefaultMaxObjectSize, Query: property.QueryAll}}
}

// honouring is testProperty with cache.client_directives: honour.
func honouring(name string) *property.Property {
	p := testProperty(name)
	p.Cache.HonourClientDirectives = true
	return p
}

// newEnv starts origin (counting its requests) and an edge whose Host
// "<name>.test" selects property name (default: "site").
func newEnv(t *testing.T, cfg Config, origin http.HandlerFunc, props ...*property.Property) *env {
	t.Helper()
	e := &env{t: t, props: map[string]*property.Property{}}
	e.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		w.Header().Set("Date", e.clock().UTC().Format(http.TimeFormat))
		origin(w, r)
	}))
	t.Cleanup(e.origin.Close)
	if len(props) == 0 {
		props = []*property.Property{testProperty("site")}
	}
	for _, p := range props {
		e.props[p.Name+".test"] = p
	}
	if cfg.Now == nil {
		cfg.Now = e.clock
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	u, _ := url.Parse(e.origin.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
	}, ErrorLog: nil}
	e.edge = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := e.props[r.Host]
		if p == nil {
			p = e.props["site.test"]
		}
		c.Serve(w, r, p, rp)
	}))
	t.Cleanup(func() {
		e.edge.Close()
		c.Close()
	})
	return e
}

func (e *env) clock() time.Time {
	if n := e.now.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Now()
}

// advance moves the fake clock on (starting it at the real time).
func (e *env) advance(d time.Duration) {
	if e.now.Load() == 0 {
		e.now.Store(time.Now().UnixNano())
	}
	e.now.Add(int64(d))
}

// get makes a request through the edge and returns the response with its
// body read.
func (e *env) do(method, path string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.edge.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = "site.test"
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, string(b)
}

func (e *env) get(path string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	return e.do(http.MethodGet, path, hdr...)
}

// wantHits checks how many requests the origin has seen.
func (e *env) wantHits(want int64) {
	e.t.Helper()
	if got := e.hits.Load(); got != want {
		e.t.Fatalf("origin saw %d requests, want %d", got, want)
	}
}

// settle waits until the cache's fills and background refreshes are done.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e.c.fillsMu.Lock()
		n := len(e.c.fills)
		e.c.fillsMu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	e.t.Fatal("fills still running after 5s")
}
