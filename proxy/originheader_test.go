package proxy

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
)

// TestOriginFieldsNotCarriedToNextResponse: an origin connection keeps
// its header map from one response to the next (issue 22: two allocations
// fewer per proxied response). Responses on one keep-alive origin
// connection, with and without the cache: no field of one response
// reaches the client with another's answer — neither after a plain
// response, nor after a head the fast parser refused half-way (its first
// fields were in the map), nor in a stored response served later as a hit
// after other responses went through the same connection.
func TestOriginFieldsNotCarriedToNextResponse(t *testing.T) {
	defer func(d time.Duration) { fillMinIdle = d }(fillMinIdle)
	fillMinIdle = 0 // fills take the pooled connection too
	heads := map[string]string{
		"/one":   "HTTP/1.1 200 OK\r\nX-First: 1\r\nCache-Control: max-age=600\r\nContent-Length: 3\r\n\r\none",
		"/two":   "HTTP/1.1 200 OK\r\nX-Second: 2\r\nCache-Control: max-age=600\r\nContent-Length: 3\r\n\r\ntwo",
		"/half":  "HTTP/1.1 200 OK\r\nX-Half: 1\r\nPragma: x\r\nCache-Control: max-age=600\r\nContent-Length: 4\r\n\r\nhalf", // Pragma: Go's parser
		"/four":  "HTTP/1.1 200 OK\r\nX-Fourth: 4\r\nCache-Control: max-age=600\r\nContent-Length: 4\r\n\r\nfour",
		"/close": "HTTP/1.1 200 OK\r\nX-Close: 1\r\nConnection: close\r\nContent-Length: 5\r\n\r\nclose",
	}
	o := newRawOrigin(t, func(_ int64, r *http.Request, c net.Conn) {
		fmt.Fprint(c, heads[r.URL.Path])
	})
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := newEdge(t, Config{Cache: c}, map[string]string{
		"plain.yaml":  prop("plain.example", "{url: "+o.url()+"}"),
		"cached.yaml": prop("cached.example", "{url: "+o.url()+"}", "cache: {enabled: true}"),
	})
	own := map[string]string{"/one": "X-First", "/two": "X-Second", "/half": "X-Half", "/four": "X-Fourth", "/close": "X-Close"}
	check := func(host, path, want string) {
		t.Helper()
		resp := e.do("GET", host, path, nil)
		if b := readBody(t, resp); b != want {
			t.Fatalf("%s%s: body %q", host, path, b)
		}
		for p, k := range own {
			got := resp.Header.Get(k)
			if p == path && got == "" {
				t.Errorf("%s%s: its own %s missing", host, path, k)
			}
			if p != path && got != "" {
				t.Errorf("%s%s: has %s of %s's response", host, path, k, p)
			}
		}
	}
	for _, host := range []string{"plain.example", "cached.example"} {
		check(host, "/one", "one")
		check(host, "/two", "two")
		check(host, "/half", "half")
		check(host, "/four", "four")
		check(host, "/one", "one")
	}
	if n := o.conns.Load(); n != 2 {
		t.Fatalf("%d origin connections, want 2 (one per property: each one's responses on one)", n)
	}
	// The stored responses, served as hits after the others went by.
	for p, body := range map[string]string{"/one": "one", "/two": "two", "/four": "four"} {
		check("cached.example", p, body)
	}
	// A response that closes its connection: the next one on a new
	// connection has none of its fields either.
	check("plain.example", "/close", "close")
	check("plain.example", "/two", "two")
	if n := o.conns.Load(); n != 3 {
		t.Fatalf("%d origin connections, want 3", n)
	}
	if cs := e.do("GET", "cached.example", "/one", nil).Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
		t.Fatalf("/one not served from the cache: Cache-Status %q", cs)
	}
}
