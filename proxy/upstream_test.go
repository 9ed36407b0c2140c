package proxy

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/property"
)

// rawOrigin is an origin on a real socket that answers each request with
// whatever respond writes on the connection, byte for byte: the faults
// are real bytes on a real connection. It counts connections and requests.
type rawOrigin struct {
	ln       net.Listener
	conns    atomic.Int64
	requests atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	open     []net.Conn
}

func newRawOrigin(t *testing.T, respond func(n int64, r *http.Request, c net.Conn)) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		o.mu.Lock()
		for _, c := range o.open {
			c.Close()
		}
		o.mu.Unlock()
		o.wg.Wait()
	})
	o.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.conns.Add(1)
			o.mu.Lock()
			o.open = append(o.open, c)
			o.mu.Unlock()
			o.wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, r.Body)
					respond(o.requests.Add(1), r, c)
				}
			})
		}
	})
	return o
}

func (o *rawOrigin) url() string { return "http://" + o.ln.Addr().String() }

// get sends a GET through the edge on a new client connection and returns
// the status and body, or the error reading them.
func (e *edge) get(host, path string) (int, string, error) {
	req, _ := http.NewRequest("GET", e.url+path, nil)
	req.Host = host
	req.Close = true
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestKeepAliveReuse: under steady keep-alive load almost every request
// reuses an origin connection (issue 12: at least 99.9 %).
func TestKeepAliveReuse(t *testing.T) {
	o, _ := echoOrigin(t, "o")
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}")})
	const workers, each = 4, 1500
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	for range workers {
		wg.Go(func() {
			for range each {
				req, _ := http.NewRequest("GET", e.url+"/", nil)
				req.Host = "a.example"
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	st := e.srv.OriginStats("a")[o.URL]
	reuse := 1 - float64(st.ConnsOpened)/float64(st.Requests)
	t.Logf("%d requests, %d origin connections opened: %.3f %% reuse", st.Requests, st.ConnsOpened, 100*reuse)
	if st.Requests != workers*each || st.ConnsOpened > workers || reuse < 0.999 {
		t.Errorf("stats %+v: reuse %.4f, want ≥ 0.999 and at most %d connections", st, reuse, workers)
	}
}

// TestIdleConnectionsExpire: an idle origin connection is closed after the
// idle timeout, by the edge.
func TestIdleConnectionsExpire(t *testing.T) {
	closed := make(chan struct{}, 1)
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	o.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	o.Start()
	defer o.Close()
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}", "timeouts: {idle: 300ms}")})
	if code, _, err := e.get("a.example", "/"); code != 200 || err != nil {
		t.Fatal(code, err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("idle origin connection still open 5 s after a 300 ms idle timeout")
	}
}

// TestExpectContinue: the body waits for the origin's 100; an origin that
// refuses at once never gets the body, and the client gets its answer.
func TestExpectContinue(t *testing.T) {
	var got atomic.Value
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusExpectationFailed)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		io.WriteString(w, "took "+string(b))
	}))
	defer o.Close()
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}")})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "POST /take HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("no 100 Continue relayed: %q %v", line, err)
	}
	br.ReadString('\n') // the blank line
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "took hello" {
		t.Errorf("after 100: %d %q", resp.StatusCode, b)
	}
	r := e.do("POST", "a.example", "/refuse", strings.NewReader("never"), "Expect", "100-continue")
	if r.StatusCode != http.StatusExpectationFailed {
		t.Errorf("refused expectation: %d", r.StatusCode)
	}
}

// TestTrailersAndHopByHop: response trailers reach the client; headers
// listed in Connection are dropped both ways.
func TestTrailersAndHopByHop(t *testing.T) {
	var seen atomic.Value
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(fmt.Sprintf("secret=%q keep=%q", r.Header.Get("X-Secret"), r.Header.Get("X-Keep")))
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc")
	}))
	defer o.Close()
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}")})
	r := e.do("GET", "a.example", "/", nil, "Connection", "X-Secret", "X-Secret", "s", "X-Keep", "k")
	if b := readBody(t, r); b != "body" || r.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("body %q trailer %v", b, r.Trailer)
	}
	if r.Header.Get("X-Internal") != "" || r.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers forwarded: %v", r.Header)
	}
	if s := seen.Load(); s != `secret="" keep="k"` {
		t.Errorf("origin saw %v", s)
	}
}

// TestDotSegmentsRefused: a path with dot-segments, however encoded, never
// reaches an origin whose URL has a path (issue 10 item 3).
func TestDotSegmentsRefused(t *testing.T) {
	o, hits := echoOrigin(t, "o")
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"/tenant-a}")})
	for _, p := range []string{"/../tenant-b/secret", "/%2e%2e/tenant-b/secret", "/%2E%2e/tenant-b/secret",
		"/x/..%2f..%2ftenant-b/secret", "/x/..%5c..%5ctenant-b", "/.%2e/tenant-b", "/..;x/tenant-b",
		"/%252e%252e/tenant-b", "/a/./b", "/a/.."} {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n", p)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", p, resp.StatusCode)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("origin reached %d times", hits.Load())
	}
	for _, p := range []string{"/a..b/c", "/...", "/.well-known/x", "/a%2eb"} {
		if r := e.do("GET", "a.example", p, nil); r.StatusCode != 200 {
			t.Errorf("%s: %d, want 200 (not a dot-segment)", p, r.StatusCode)
		}
	}
}

// TestFileOriginSymlinkEscape: a symlink inside a file origin's directory
// that points outside it serves nothing (issue 10 item 4).
func TestFileOriginSymlinkEscape(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644)
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("in"), 0o644)
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(outside, filepath.Join(dir, "leakdir"))
	os.Symlink("in.txt", filepath.Join(dir, "alias.txt"))
	e := newEdge(t, Config{}, map[string]string{"f.yaml": prop("f.example", "{url: 'file://"+dir+"'}")})
	for path, want := range map[string]int{"/leak.txt": 404, "/leakdir/secret.txt": 404, "/in.txt": 200, "/alias.txt": 200} {
		r := e.do("GET", "f.example", path, nil)
		if b := readBody(t, r); r.StatusCode != want || strings.Contains(b, "secret") {
			t.Errorf("%s: %d %q, want %d", path, r.StatusCode, b, want)
		}
	}
}

// TestHTTPSOriginMovesToSyncPath: an https origin that speaks HTTP/1.1
// only is served on the synchronous path after its first response, over
// verified TLS and reused connections; one that speaks HTTP/2 stays on the
// transport.
func TestHTTPSOriginMovesToSyncPath(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
			}))
			o.EnableHTTP2 = h2
			o.StartTLS()
			defer o.Close()
			ca := filepath.Join(t.TempDir(), "ca.pem")
			os.WriteFile(ca, pemCert(o.Certificate().Raw), 0o644)
			e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"/p, ca_file: "+ca+"}")})
			want := "HTTP/1.1 /p/x"
			if h2 {
				want = "HTTP/2.0 /p/x"
			}
			for i := range 20 {
				if b := readBody(t, e.do("GET", "a.example", "/x", nil)); b != want {
					t.Fatalf("request %d: %q, want %q", i, b, want)
				}
			}
			org := e.srv.siteFor(e.tab.Lookup("a.example")).origins[0]
			st := e.srv.OriginStats("a")[org.name]
			if h2 {
				if org.sync.Load() || st.Requests != 0 {
					t.Errorf("h2 origin on the synchronous path: %+v", st)
				}
				return
			}
			if !org.sync.Load() || st.Requests != 19 || st.ConnsOpened != 1 {
				t.Errorf("HTTP/1.1 https origin: sync %v, stats %+v; want 19 requests on 1 connection", org.sync.Load(), st)
			}
		})
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestHTTP2ClientToHTTPOrigin: an HTTP/2 client's request, its body of
// unknown length included, crosses the synchronous path (chunked to the
// origin) and its response comes back whole.
func TestHTTP2ClientToHTTPOrigin(t *testing.T) {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s te=%v cl=%d body=%s via=%s", r.Method, r.TransferEncoding, r.ContentLength, b, r.Header.Get("Via"))
	}))
	defer o.Close()
	e := newEdge(t, Config{NodeName: "n"}, map[string]string{"a.yaml": prop("a.example.com", "{url: "+o.URL+"}", "timeouts: {response_header: 2s}")})
	front := httptest.NewUnstartedServer(e.srv.HTTPSHandler())
	front.EnableHTTP2 = true
	front.StartTLS()
	defer front.Close()
	client := front.Client()
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "a.example.com"
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("streamed "))
		pw.Write([]byte("body"))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", front.URL+"/up", pr)
	req.Host = "a.example.com"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := readBody(t, resp)
	if resp.ProtoMajor != 2 || b != "POST te=[chunked] cl=-1 body=streamed body via=2 n" {
		t.Errorf("%s: %q", resp.Proto, b)
	}
	// A GET's stream ends with its headers: no body, no chunked framing
	// (an origin would wait for chunks that never come).
	for _, method := range []string{"GET", "POST"} {
		req, _ = http.NewRequest(method, front.URL+"/get", nil)
		req.Host = "a.example.com"
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		want := method + " te=[] cl=0 body= via=2 n"
		if b := readBody(t, resp); resp.StatusCode != 200 || b != want {
			t.Errorf("%s without a body: %d %q, want %q", method, resp.StatusCode, b, want)
		}
	}
}

// countingObserver implements Observer, PropertyObserver and ConnObserver.
type countingObserver struct {
	resolved, requests, originRequests, connsOpened, generic atomic.Int64
}

func (c *countingObserver) Request(string, int, time.Duration)                 { c.generic.Add(1) }
func (c *countingObserver) OriginRequest(string, string, error, time.Duration) { c.generic.Add(1) }
func (c *countingObserver) OriginHealth(string, string, bool)                  {}
func (c *countingObserver) OriginConnOpened(string, string)                    { c.connsOpened.Add(1) }
func (c *countingObserver) ForProperty(string) SiteObserver {
	c.resolved.Add(1)
	return siteCounter{c}
}

type siteCounter struct{ c *countingObserver }

func (s siteCounter) Request(int, time.Duration)                 { s.c.requests.Add(1) }
func (s siteCounter) OriginRequest(string, error, time.Duration) { s.c.originRequests.Add(1) }

// TestObserverResolvedPerProperty: a PropertyObserver is asked for a
// property's metrics once per update, then told about each request
// without label lookups; a ConnObserver counts origin connections.
func TestObserverResolvedPerProperty(t *testing.T) {
	o, _ := echoOrigin(t, "o")
	obs := &countingObserver{}
	e := newEdge(t, Config{Observer: obs}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}")})
	for range 10 {
		readBody(t, e.do("GET", "a.example", "/", nil))
	}
	e.do("GET", "unknown.example", "/", nil)
	if obs.resolved.Load() != 1 || obs.requests.Load() != 10 || obs.originRequests.Load() != 10 ||
		obs.connsOpened.Load() != 1 || obs.generic.Load() != 1 {
		t.Errorf("resolved %d, site requests %d, origin requests %d, conns %d, generic %d; want 1, 10, 10, 1, 1 (the 421)",
			obs.resolved.Load(), obs.requests.Load(), obs.originRequests.Load(), obs.connsOpened.Load(), obs.generic.Load())
	}
}

// TestOversizedResponseHead: an origin whose response head never ends is
// cut off at maxResponseHead: a 502, not unbounded memory.
func TestOversizedResponseHead(t *testing.T) {
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("f", 1000) + "\r\n"
		for range 2 * maxResponseHead / len(line) {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
		io.WriteString(c, "\r\n")
	})
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	if code, _, err := e.get("a.example", "/"); err != nil || code != 502 {
		t.Errorf("oversized head: %d %v, want 502", code, err)
	}
}

// TestExpectContinueOriginSilent: an origin that waits for the body without
// sending 100 gets it after expectContinueWait.
func TestExpectContinueOriginSilent(t *testing.T) {
	// rawOrigin reads the whole body before answering, and never sends a
	// 100: without the body the request would end in a 504.
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		io.WriteString(c, okResp)
	})
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	start := time.Now()
	r := e.do("PUT", "a.example", "/", strings.NewReader("payload"), "Expect", "100-continue")
	if b := readBody(t, r); r.StatusCode != 200 || b != "good" {
		t.Errorf("%d %q", r.StatusCode, b)
	}
	if d := time.Since(start); d < expectContinueWait/2 {
		t.Errorf("body sent after %v, before the origin could answer the expectation", d)
	}
}

// TestUpstreamBesideAFill: the upstream called twice at once for one client
// request, the second time with a derived context as a cache fill does
// (context.WithoutCancel): both succeed, the fill keeps the client's
// request id, and the race detector finds no shared state written. The
// calls come from a Cache in front of the upstream, the seam a cache fill
// uses.
func TestUpstreamBesideAFill(t *testing.T) {
	o, hits := echoOrigin(t, "o")
	c := &besideFillCache{}
	e := newEdge(t, Config{AccessLog: true, Cache: c},
		map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}", "cache: {enabled: true}")})
	r := e.do("GET", "a.example", "/", nil)
	b := readBody(t, r)
	fill, _ := c.fillBody.Load().(string)
	id := r.Header.Get("X-Request-Id")
	if r.StatusCode != 200 || hits.Load() != 2 || !strings.Contains(b, "rid="+id) || !strings.Contains(fill, "rid="+id) {
		t.Errorf("client %d %q, fill %q, origin hits %d", r.StatusCode, b, fill, hits.Load())
	}
}

// besideFillCache calls the upstream for the client and, at the same time,
// for a fill with a context derived from the client's.
type besideFillCache struct{ fillBody atomic.Value }

func (c *besideFillCache) Serve(w http.ResponseWriter, r *http.Request, _ *property.Property, upstream http.Handler) {
	var wg sync.WaitGroup
	wg.Go(func() {
		rec := httptest.NewRecorder()
		upstream.ServeHTTP(rec, r.Clone(context.WithoutCancel(r.Context())))
		c.fillBody.Store(rec.Body.String())
	})
	upstream.ServeHTTP(w, r)
	wg.Wait()
}
