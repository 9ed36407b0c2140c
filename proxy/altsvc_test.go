package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
)

// altSvcEdge is an edge with a memory cache and HTTP/3 on port 8443, whose
// TLS port is front; the origin sends an Alt-Svc of its own.
func altSvcEdge(t *testing.T, extra ...string) (*edge, *http.Client, *httptest.Server) {
	t.Helper()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Alt-Svc", `h3=":9999"; ma=2592000, h2="origin.example:443"`)
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "origin")
	}))
	t.Cleanup(origin.Close)
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lines := append([]string{"cache: {enabled: true}", "tls: {certificate: a}"}, extra...)
	e := newEdge(t, Config{Cache: c, HTTP3Port: 8443}, map[string]string{"a.yaml": prop(poisonHost, "{url: "+origin.URL+"}", lines...)})
	front := httptest.NewUnstartedServer(e.srv.HTTPSHandler())
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(front.Close)
	cl := front.Client()
	cl.Transport.(*http.Transport).TLSClientConfig.ServerName = poisonHost
	return e, cl, front
}

func getAltSvc(t *testing.T, cl *http.Client, url string) (altSvc []string, cacheStatus string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = poisonHost
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	resp.Body.Close()
	return resp.Header.Values("Alt-Svc"), resp.Header.Get("Cache-Status")
}

// TestOriginAltSvcNotPassedThroughOrCached: an origin's Alt-Svc (which
// would send clients to the origin's own alternatives for the edge's
// names) reaches no client, on a miss or a hit; the edge's own offer is on
// every HTTPS answer and never on plain HTTP.
func TestOriginAltSvcNotPassedThroughOrCached(t *testing.T) {
	e, cl, front := altSvcEdge(t)
	want := `h3=":8443"; ma=86400`
	for i, wantStatus := range []string{"fwd=", "hit"} {
		got, status := getAltSvc(t, cl, front.URL+"/x")
		if len(got) != 1 || got[0] != want {
			t.Errorf("HTTPS answer %d: Alt-Svc %q, want only %q", i, got, want)
		}
		if !strings.Contains(status, wantStatus) {
			t.Errorf("HTTPS answer %d: Cache-Status %q, want %s", i, status, wantStatus)
		}
	}
	resp := e.do("GET", poisonHost, "/x", nil)
	readBody(t, resp)
	if v := resp.Header.Values("Alt-Svc"); len(v) != 0 {
		t.Errorf("plain HTTP answer: Alt-Svc %q, want none", v)
	}
	resp = e.do("GET", poisonHost, "/y", nil) // a miss over plain HTTP
	readBody(t, resp)
	if v := resp.Header.Values("Alt-Svc"); len(v) != 0 {
		t.Errorf("plain HTTP miss: Alt-Svc %q, want none", v)
	}
}

// TestAltSvcClearWhenHTTP3TurnedOff: a property that had HTTP/3 on and
// turns it off sends Alt-Svc: clear on HTTPS answers, for AltSvcMaxAge
// (the longest a client remembers the offer), then nothing; one that never
// offered it sends nothing.
func TestAltSvcClearWhenHTTP3TurnedOff(t *testing.T) {
	e, cl, front := altSvcEdge(t)
	e.write(map[string]string{"a.yaml": prop(poisonHost, "{url: http://127.0.0.1:1}", "cache: {enabled: true}", "tls: {certificate: a}", "http3: false")})
	if got, _ := getAltSvc(t, cl, front.URL+"/x"); len(got) != 1 || got[0] != "clear" {
		t.Errorf("after http3: false, Alt-Svc %q, want clear", got)
	}
	// A later reload keeps the withdrawal running from when it began.
	e.write(map[string]string{"a.yaml": prop(poisonHost, "{url: http://127.0.0.1:1}", "cache: {enabled: true}", "tls: {certificate: a}", "http3: false", "# touched")})
	st := e.srv.siteFor(e.tab.ByName("a"))
	if st.altSvcUntil.IsZero() || time.Until(st.altSvcUntil) > AltSvcMaxAge {
		t.Fatalf("clear until %v", st.altSvcUntil)
	}
	h := http.Header{}
	st.setAltSvc(h, st.altSvcUntil)
	if len(h) != 0 {
		t.Errorf("Alt-Svc %q sent after the withdrawal ended", h)
	}
	e.srv.mu.Lock()
	v, _ := e.srv.altSvc(st.prop, st.altSvcUntil.Add(time.Second))
	e.srv.mu.Unlock()
	if v != nil {
		t.Errorf("an update after the withdrawal ended: Alt-Svc %q", v)
	}

	// Never offered: nothing.
	fresh := newEdge(t, Config{HTTP3Port: 8443}, map[string]string{"b.yaml": prop("b.example", "{url: http://127.0.0.1:1}", "tls: {certificate: b}", "http3: false")})
	if st := fresh.srv.siteFor(fresh.tab.ByName("b")); st.altSvc != nil {
		t.Errorf("never offered: Alt-Svc %q", st.altSvc)
	}
}
