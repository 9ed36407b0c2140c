package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
)

// collapseRig is an edge with a cache in front of an origin whose answers
// wait for release, so that clients can be queued on one fill first.
type collapseRig struct {
	t       *testing.T
	e       *edge
	c       *cache.Cache
	release chan struct{}
	hits    atomic.Int64
}

func newCollapseRig(t *testing.T, handler func(n int64, w http.ResponseWriter, r *http.Request)) *collapseRig {
	t.Helper()
	g := &collapseRig{t: t, release: make(chan struct{})}
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := g.hits.Add(1)
		handler(n, w, r)
	}))
	t.Cleanup(o.Close)
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g.c = c
	g.e = newEdge(t, Config{Cache: c},
		map[string]string{"c.yaml": prop("c.example", "{url: "+o.URL+"}", "cache: {enabled: true}")})
	return g
}

// answer is one client's response.
type answer struct {
	status int
	header http.Header
	body   string
	err    error
}

// get sends a GET from a goroutine (no t.Fatal there).
func (g *collapseRig) get(path string, hdr ...string) answer {
	req, err := http.NewRequest("GET", g.e.url+path, nil)
	if err != nil {
		return answer{err: err}
	}
	req.Host = "c.example"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// collapse sends n GETs of path at once, waits until all follow one fill
// (with ahead clients already following it), releases the origin and
// returns the answers.
func (g *collapseRig) collapse(n, ahead int, path string, hdr ...string) []answer {
	g.t.Helper()
	out := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = g.get(path, hdr...)
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.c.Waiting() < n+ahead && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if w := g.c.Waiting(); w != n+ahead {
		g.t.Errorf("%d of %d clients followed the fill", w, n+ahead)
	}
	close(g.release)
	wg.Wait()
	for i, a := range out {
		if a.err != nil {
			g.t.Fatalf("client %d: %v", i, a.err)
		}
	}
	return out
}

// TestCollapsedPrivate5xxNotShared: a 500 with private and a session
// cookie, made by one client's request, reaches that client alone; every
// collapsed waiter asks the origin on its own and gets its own answer.
func TestCollapsedPrivate5xxNotShared(t *testing.T) {
	var g *collapseRig
	g = newCollapseRig(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		<-g.release
		w.Header().Set("Cache-Control", "private")
		w.Header().Set("Set-Cookie", fmt.Sprintf("sid=secret-%d", n))
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "page of user %d", n)
	})
	answers := g.collapse(4, 0, "/account")
	seen := map[string]bool{}
	for i, a := range answers {
		var n int
		if _, err := fmt.Sscanf(a.body, "page of user %d", &n); err != nil || a.status != 500 {
			t.Fatalf("client %d: %d %q", i, a.status, a.body)
		}
		if got, want := a.header.Get("Set-Cookie"), fmt.Sprintf("sid=secret-%d", n); got != want {
			t.Errorf("client %d got body of user %d with cookie %q", i, n, got)
		}
		if seen[a.body] {
			t.Errorf("client %d got another client's response %q", i, a.body)
		}
		seen[a.body] = true
	}
	if h := g.hits.Load(); h != 4 {
		t.Errorf("origin saw %d requests, want 4 (one per client)", h)
	}
}

// TestCollapsedAuthorizationAnswerNotShared: the answer to a request with
// Authorization (no public, no s-maxage) is not given to the clients that
// collapsed onto it.
func TestCollapsedAuthorizationAnswerNotShared(t *testing.T) {
	var g *collapseRig
	g = newCollapseRig(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		<-g.release
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "for %q", r.Header.Get("Authorization"))
	})
	first := make(chan answer, 1)
	go func() { first <- g.get("/me", "Authorization", "Bearer alice") }()
	for g.c.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	answers := g.collapse(4, 1, "/me")
	if a := <-first; a.body != `for "Bearer alice"` {
		t.Errorf("alice got %q", a.body)
	}
	for i, a := range answers {
		if a.body != `for ""` {
			t.Errorf("anonymous client %d got %q", i, a.body)
		}
	}
}

// TestCollapsed304SetCookieNotShared: a stale object revalidated for five
// collapsed clients: the 304's Set-Cookie goes to the client whose request
// was revalidated alone, the others get the stored response without it, and
// the cookie is never stored.
func TestCollapsed304SetCookieNotShared(t *testing.T) {
	var g *collapseRig
	g = newCollapseRig(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("Etag", `"v1"`)
		if n == 1 {
			fmt.Fprint(w, "shared page")
			return
		}
		<-g.release
		w.Header().Set("Set-Cookie", fmt.Sprintf("session=u%d", n))
		w.WriteHeader(http.StatusNotModified)
	})
	if a := g.get("/page"); a.body != "shared page" {
		t.Fatalf("first fetch: %q", a.body)
	}
	answers := g.collapse(5, 0, "/page")
	withCookie := 0
	for i, a := range answers {
		if a.status != 200 || a.body != "shared page" {
			t.Errorf("client %d: %d %q", i, a.status, a.body)
		}
		if c := a.header.Get("Set-Cookie"); c != "" {
			withCookie++
			if c != "session=u2" {
				t.Errorf("client %d got cookie %q", i, c)
			}
		}
	}
	if withCookie != 1 {
		t.Errorf("%d clients got the 304's Set-Cookie, want exactly the one revalidated", withCookie)
	}
	if h := g.hits.Load(); h != 2 {
		t.Errorf("origin saw %d requests, want 2", h)
	}
}

// TestEarlyHintsReachInitiatorOnly: an origin's 103 Early Hints on a cache
// miss reaches the client whose request made the fill (the conformance
// suite's interim-not-cached), never a collapsed waiter (its links would be
// another client's) and never a later hit: nothing 1xx is stored.
func TestEarlyHintsReachInitiatorOnly(t *testing.T) {
	var g *collapseRig
	g = newCollapseRig(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", fmt.Sprintf("</user-%d.css>; rel=preload", n))
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		<-g.release
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "page")
	})
	type got struct {
		hints []string
		body  string
		err   error
	}
	get := func() got {
		var out got
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			if code == http.StatusEarlyHints {
				out.hints = append(out.hints, h.Get("Link"))
			}
			return nil
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", g.e.url+"/hinted", nil)
		if err != nil {
			return got{err: err}
		}
		req.Host = "c.example"
		resp, err := noRedirect.Do(req)
		if err != nil {
			return got{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out.body, out.err = string(b), err
		return out
	}
	first := make(chan got, 1)
	go func() { first <- get() }()
	for g.c.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	waiters := make(chan got, 2)
	for range 2 {
		go func() { waiters <- get() }()
	}
	for g.c.Waiting() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	if a := <-first; a.err != nil || a.body != "page" || len(a.hints) != 1 || a.hints[0] != "</user-1.css>; rel=preload" {
		t.Errorf("initiator: %+v, want the 103 with its own link", a)
	}
	for range 2 {
		if a := <-waiters; a.err != nil || a.body != "page" || len(a.hints) != 0 {
			t.Errorf("collapsed waiter: %+v, want the page without another client's hints", a)
		}
	}
	if a := get(); a.body != "page" || len(a.hints) != 0 {
		t.Errorf("hit: %+v, want no 103 (1xx is never stored)", a)
	}
}

// TestCollapsedCredentialedStaleAnswerNotShared: the answer to a request
// with a cookie that the origin made stale at once (max-age=0 with a
// validator: stored for revalidation only) is not handed to the clients
// that collapsed onto its fill, even those that accept any stale answer
// (max-stale); each asks the origin and gets its own page. (Found as a
// rare failure of TestCacheDeceptionMaxStale: a request that joined the
// fill just before it ended got the victim's page.)
func TestCollapsedCredentialedStaleAnswerNotShared(t *testing.T) {
	var g *collapseRig
	g = newCollapseRig(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		<-g.release
		user := "anonymous"
		if c, err := r.Cookie("sid"); err == nil {
			user = c.Value
		}
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("Etag", `"`+user+`"`)
		fmt.Fprintf(w, "page of %s", user)
	})
	aliceThenAnonymousMaxStale(t, g)
}

// TestCollapsedCredentialedRevalidationNotShared: the same answer, stored
// for revalidation only, refreshed by a 304 to its owner's revalidation:
// the clients collapsed onto that revalidation (max-stale) do not get the
// owner's page either.
func TestCollapsedCredentialedRevalidationNotShared(t *testing.T) {
	var g *collapseRig
	g = newCollapseRig(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		user := "anonymous"
		if c, err := r.Cookie("sid"); err == nil {
			user = c.Value
		}
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("Etag", `"`+user+`"`)
		if r.Header.Get("If-None-Match") == `"`+user+`"` {
			<-g.release
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprintf(w, "page of %s", user)
	})
	if a := g.get("/account", "Cookie", "sid=alice"); a.body != "page of alice" {
		t.Fatalf("alice's first fetch: %q", a.body)
	}
	aliceThenAnonymousMaxStale(t, g)
}

// aliceThenAnonymousMaxStale sends alice's request for /account (with her
// cookie), then four anonymous ones that accept any stale answer, which
// collapse onto alice's fill; alice must get her page and each anonymous
// client its own.
func aliceThenAnonymousMaxStale(t *testing.T, g *collapseRig) {
	t.Helper()
	first := make(chan answer, 1)
	go func() { first <- g.get("/account", "Cookie", "sid=alice") }()
	for g.c.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	answers := g.collapse(4, 1, "/account", "Cache-Control", "max-stale")
	if a := <-first; a.body != "page of alice" {
		t.Errorf("alice got %q", a.body)
	}
	for i, a := range answers {
		if a.body != "page of anonymous" {
			t.Errorf("anonymous client %d (max-stale) got %q (Cache-Status %q)", i, a.body, a.header.Get("Cache-Status"))
		}
	}
}
