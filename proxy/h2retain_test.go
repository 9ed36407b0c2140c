package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/property"
)

// grabCache passes every request upstream and keeps the request state of
// the last one.
type grabCache struct {
	mu  sync.Mutex
	req *request
}

func (g *grabCache) Serve(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler) {
	g.mu.Lock()
	g.req = requestOf(r.Context())
	g.mu.Unlock()
	upstream.ServeHTTP(w, r)
}

// TestHTTP2HPACKTableKeepsNoRequestState: Go's HTTP/2 server puts every
// response field in the connection's HPACK table, the X-Request-Id too,
// and keeps it while the connection lives (and for limits.idle_timeout
// after it closed with streams open). The id's string must not be the one
// inside the request state, which would keep that state and the stream's
// context reachable through the table: 64 of them per connection (issue
// 22). With the connection still open, the request state is collected.
func TestHTTP2HPACKTableKeepsNoRequestState(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(origin.Close)
	g := &grabCache{}
	e := newEdge(t, Config{Cache: g}, map[string]string{"a.yaml": prop(poisonHost, "{url: "+origin.URL+"}", "cache: {enabled: true}", "tls: {certificate: a}")})
	front := httptest.NewUnstartedServer(e.srv.HTTPSHandler())
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(front.Close)
	cl := front.Client()
	cl.Transport.(*http.Transport).TLSClientConfig.ServerName = poisonHost
	req, _ := http.NewRequest("GET", front.URL+"/x", nil)
	req.Host = poisonHost
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != 200 || body != "ok" || resp.ProtoMajor != 2 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%s %s %q, X-Request-Id %q", resp.Proto, resp.Status, body, resp.Header.Get("X-Request-Id"))
	}
	resp.Body.Close()
	freed := make(chan struct{})
	g.mu.Lock()
	if g.req == nil {
		g.mu.Unlock()
		t.Fatal("the cache saw no request")
	}
	runtime.AddCleanup(g.req, func(ch chan struct{}) { close(ch) }, freed)
	g.req = nil
	g.mu.Unlock()
	// The client's connection stays open (front.Close ends it): its HPACK
	// table holds the id. Pools hold objects for two collections.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		select {
		case <-freed:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("the request state is still reachable 5 s after its response, its connection open")
}
