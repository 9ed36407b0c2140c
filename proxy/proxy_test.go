package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/property"
	"github.com/gorilla/websocket"
)

// edge is a proxy Server on a real socket, with its properties in dir.
type edge struct {
	t   *testing.T
	srv *Server
	dir string
	url string // the HTTP port
	tab *property.Table
}

func newEdge(t *testing.T, cfg Config, files map[string]string) *edge {
	t.Helper()
	e := &edge{t: t, srv: New(cfg), dir: t.TempDir()}
	t.Cleanup(e.srv.Close)
	e.write(files)
	hs := httptest.NewServer(e.srv.HTTPHandler())
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// write replaces the property files and loads them.
func (e *edge) write(files map[string]string) {
	e.t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(body), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	tab, err := property.LoadDir(e.dir, e.tab, property.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	if p := tab.Problems(); len(p) > 0 {
		e.t.Fatalf("properties rejected: %v", p)
	}
	e.tab = tab
	e.srv.Update(tab)
}

// do sends a request with Host host to the edge's HTTP port.
func (e *edge) do(method, host, path string, body io.Reader, hdr ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// origin is an httptest backend that echoes what it received.
func echoOrigin(t *testing.T, name string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Origin", name)
		w.Header().Set("Server", "origin-server")
		fmt.Fprintf(w, "%s %s %s host=%s xff=%s xfp=%s xfh=%s via=%s rid=%s edge=%s cookie=%s",
			name, r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("Via"), r.Header.Get("X-Request-Id"), r.Header.Get("X-Edge"), r.Header.Get("Cookie"))
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func prop(hosts, origins string, extra ...string) string {
	return fmt.Sprintf("hostnames: [%s]\norigins: [%s]\n%s", hosts, origins, strings.Join(extra, "\n"))
}

func TestRoutingAndHeaders(t *testing.T) {
	o1, _ := echoOrigin(t, "one")
	e := newEdge(t, Config{NodeName: "edge-test"}, map[string]string{
		"shop.yaml": prop("shop.example, '*.cdn.example'", "{url: "+o1.URL+"/base}",
			"origin_host: origin.internal",
			"headers:",
			"  request: {set: {X-Edge: yes}, remove: [Cookie]}",
			"  response: {set: {Cache-Control: public}, remove: [Server]}"),
	})
	r := e.do("GET", "Shop.Example:80", "/a/b?q=1", nil, "X-Forwarded-For", "203.0.113.9", "Cookie", "secret=1", "X-Request-Id", "client-chosen")
	body := readBody(t, r)
	for _, want := range []string{"one GET /base/a/b?q=1", "host=origin.internal", "xff=203.0.113.9, 127.0.0.1",
		"xfp=http", "xfh=shop.example", "via=1.1 edge-test", "edge=yes", "cookie= "} {
		if !strings.Contains(body+" ", want) {
			t.Errorf("origin saw %q; want it to contain %q", body, want)
		}
	}
	if strings.Contains(body, "client-chosen") {
		t.Errorf("client's X-Request-Id reached the origin: %s", body)
	}
	if got := r.Header.Get("X-Request-Id"); got == "" || !strings.Contains(body, "rid="+got) {
		t.Errorf("response request id %q not the one sent to the origin (%s)", got, body)
	}
	if r.Header.Get("Server") != "" || r.Header.Get("Cache-Control") != "public" || r.Header.Get("Via") != "1.1 edge-test" {
		t.Errorf("response headers: %v", r.Header)
	}
	// Wildcard hostnames route; one label only.
	if r := e.do("GET", "a.cdn.example", "/", nil); r.StatusCode != 200 {
		t.Errorf("wildcard: %d", r.StatusCode)
	}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"a.b.cdn.example", 421}, {"unknown.example", 421}, {"127.0.0.1", 421}, {"[::1]:80", 421},
		{"bad_host!.example", 400},
	} {
		if r := e.do("GET", tc.host, "/", nil); r.StatusCode != tc.want {
			t.Errorf("Host %q: %d, want %d", tc.host, r.StatusCode, tc.want)
		}
	}
}

func TestMissingHostIs421(t *testing.T) {
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: http://127.0.0.1:1}")})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 421 {
		t.Errorf("HTTP/1.0 without Host: %d, want 421", resp.StatusCode)
	}
}

func TestRedirectAndChallengePath(t *testing.T) {
	o, hits := echoOrigin(t, "o")
	e := newEdge(t, Config{HTTPSPort: 8443}, map[string]string{
		"auto.yaml":   prop("auto.example", "{url: "+o.URL+"}", "tls: {certificate: auto, renew_automation: true, redirect_http: true}"),
		"manual.yaml": prop("manual.example", "{url: "+o.URL+"}", "tls: {certificate: manual, redirect_http: true}"),
	})
	r := e.do("GET", "auto.example", "/p?x=1", nil)
	if r.StatusCode != 308 || r.Header.Get("Location") != "https://auto.example:8443/p?x=1" {
		t.Errorf("redirect: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// Renew automation on: unknown tokens are the edge's business: 404.
	if r := e.do("GET", "auto.example", "/.well-known/acme-challenge/tok", nil); r.StatusCode != 404 || hits.Load() != 0 {
		t.Errorf("challenge on automated property: %d, origin hits %d", r.StatusCode, hits.Load())
	}
	// Renew automation off: the customer's own ACME client gets it.
	if r := e.do("GET", "manual.example", "/.well-known/acme-challenge/tok", nil); r.StatusCode != 200 || hits.Load() != 1 {
		t.Errorf("challenge on manual property: %d, origin hits %d", r.StatusCode, hits.Load())
	}
	if r := e.do("GET", "unknown.example", "/.well-known/acme-challenge/tok", nil); r.StatusCode != 404 {
		t.Errorf("challenge for unknown host: %d", r.StatusCode)
	}
}

type fakeChallenges map[string]string

func (f fakeChallenges) ServeChallenge(w http.ResponseWriter, r *http.Request, host, token string) bool {
	if v, ok := f[host+"/"+token]; ok {
		io.WriteString(w, v)
		return true
	}
	return false
}

func TestChallengeResponder(t *testing.T) {
	e := newEdge(t, Config{Challenge: fakeChallenges{"not-a-property.example/tok": "tok.key"}},
		map[string]string{"a.yaml": prop("a.example", "{url: http://127.0.0.1:1}", "tls: {certificate: a, renew_automation: true, redirect_http: true}")})
	r := e.do("GET", "not-a-property.example", "/.well-known/acme-challenge/tok", nil)
	if b := readBody(t, r); r.StatusCode != 200 || b != "tok.key" {
		t.Errorf("challenge for a name no property uses: %d %q", r.StatusCode, b)
	}
}

func TestFailoverAndPassiveHealth(t *testing.T) {
	good, goodHits := echoOrigin(t, "good")
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connection refused from now on
	e := newEdge(t, Config{PassiveRest: time.Minute}, map[string]string{
		"a.yaml": prop("a.example", "{url: "+deadURL+", weight: 100}, {url: "+good.URL+"}"),
	})
	// POST is not idempotent, but a refused connection never reached the
	// origin: retried safely.
	for i := range 20 {
		r := e.do("POST", "a.example", "/", strings.NewReader("payload"))
		if b := readBody(t, r); r.StatusCode != 200 || !strings.HasPrefix(b, "good POST") {
			t.Fatalf("request %d: %d %q", i, r.StatusCode, b)
		}
	}
	if goodHits.Load() != 20 {
		t.Errorf("good origin served %d of 20", goodHits.Load())
	}
	// The dead origin is rested: it is not even tried now.
	site := e.srv.siteFor(e.tab.Lookup("a.example"))
	if site.origins[0].healthy(time.Now().UnixNano()) {
		t.Error("dead origin not rested after failing")
	}
}

func TestNoRetryOfUnsafeRequest(t *testing.T) {
	var hits atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.ReadAll(r.Body)
		time.Sleep(300 * time.Millisecond) // beyond response_header
	}))
	defer hang.Close()
	e := newEdge(t, Config{}, map[string]string{
		"a.yaml": prop("a.example", "{url: "+hang.URL+"}, {url: "+hang.URL+"/x}", "timeouts: {response_header: 100ms}"),
	})
	r := e.do("POST", "a.example", "/", strings.NewReader("once"))
	body := readBody(t, r)
	if r.StatusCode != 504 || !strings.Contains(body, "request id: "+r.Header.Get("X-Request-Id")) {
		t.Errorf("timeout: %d %q", r.StatusCode, body)
	}
	if hits.Load() != 1 {
		t.Errorf("POST reached origins %d times, want 1 (never retried once sent)", hits.Load())
	}
	hits.Store(0)
	if r := e.do("GET", "a.example", "/", nil); r.StatusCode != 504 || hits.Load() != 2 {
		t.Errorf("GET timeout: %d after %d tries, want 504 after 2 (idempotent: retried)", r.StatusCode, hits.Load())
	}
}

func TestBadGatewayBodyIsShort(t *testing.T) {
	garbage, _ := net.Listen("tcp", "127.0.0.1:0")
	defer garbage.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "NOT HTTP AT ALL\r\n\r\n")
			c.Close()
		}
	}()
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: http://"+garbage.Addr().String()+"}")})
	r := e.do("GET", "a.example", "/", nil)
	body := readBody(t, r)
	if r.StatusCode != 502 || strings.Contains(body, "NOT HTTP") || strings.Contains(body, garbage.Addr().String()) || len(body) > 200 {
		t.Errorf("502 body leaks detail or is long: %d %q", r.StatusCode, body)
	}
}

func TestWeightedChoice(t *testing.T) {
	a, aHits := echoOrigin(t, "a")
	b, bHits := echoOrigin(t, "b")
	e := newEdge(t, Config{}, map[string]string{"w.yaml": prop("w.example", "{url: "+a.URL+", weight: 3}, {url: "+b.URL+", weight: 1}")})
	for range 400 {
		readBody(t, e.do("GET", "w.example", "/", nil))
	}
	if ratio := float64(aHits.Load()) / float64(bHits.Load()); ratio < 2 || ratio > 4.5 {
		t.Errorf("a:b = %d:%d, want about 3:1", aHits.Load(), bHits.Load())
	}
}

func TestActiveHealthCheck(t *testing.T) {
	var sick atomic.Bool
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && sick.Load() {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "a")
	}))
	defer a.Close()
	b, _ := echoOrigin(t, "b")
	sick.Store(true)
	e := newEdge(t, Config{}, map[string]string{"h.yaml": prop("h.example", "{url: "+a.URL+"}, {url: "+b.URL+"}",
		"health_check: {path: /healthz, interval: 1s, timeout: 500ms}")})
	site := e.srv.siteFor(e.tab.Lookup("h.example"))
	testutil.WaitFor(t, "a marked down", func() bool { return site.origins[0].down.Load() })
	for range 20 {
		if b := readBody(t, e.do("GET", "h.example", "/", nil)); b == "a" {
			t.Fatal("request routed to an origin failing its health check")
		}
	}
	sick.Store(false)
	testutil.WaitFor(t, "a healthy again", func() bool { return !site.origins[0].down.Load() })
}

func TestWebsocketThrough(t *testing.T) {
	up := websocket.Upgrader{}
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, append([]byte("echo:"), m...))
		}
	}))
	defer o.Close()
	e := newEdge(t, Config{}, map[string]string{"ws.yaml": prop("ws.example", "{url: "+o.URL+"}")})
	d := websocket.Dialer{NetDial: func(network, _ string) (net.Conn, error) {
		return net.Dial(network, strings.TrimPrefix(e.url, "http://"))
	}}
	c, resp, err := d.Dial("ws://ws.example/socket", nil)
	if err != nil {
		t.Fatalf("dial through edge: %v (%v)", err, resp)
	}
	defer c.Close()
	for i := range 3 {
		msg := fmt.Sprintf("m%d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != "echo:"+msg {
			t.Fatalf("got %q, %v", got, err)
		}
	}
}

func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	}))
	defer o.Close()
	defer close(release)
	e := newEdge(t, Config{}, map[string]string{"sse.yaml": prop("sse.example", "{url: "+o.URL+"}")})
	r := e.do("GET", "sse.example", "/events", nil)
	line, err := bufio.NewReader(r.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event not delivered before the stream ended: %q %v", line, err)
	}
}

// TestStreamStallAfterAFullPiece: a streamed (chunked) response whose
// origin sends a burst of several copy buffers, then waits: the burst
// reaches the client whole, its chunk framing included, while the origin
// waits. Within the burst, flushes after full pieces are skipped while more
// of the body has arrived (TestPendingIgnoresChunkFraming: the framing
// alone does not count); the last piece is flushed.
func TestStreamStallAfterAFullPiece(t *testing.T) {
	release := make(chan struct{})
	piece := strings.Repeat("p", 3*64<<10) // three copy buffers (answerBuffers)
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, piece)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "end")
	}))
	defer o.Close()
	defer close(release)
	e := newEdge(t, Config{}, map[string]string{"s.yaml": prop("s.example", "{url: "+o.URL+"}")})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /s HTTP/1.1\r\nHost: s.example\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // the piece is due at once; this only ends a failing test
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || len(resp.TransferEncoding) == 0 {
		t.Fatalf("%v %v", resp, err)
	}
	// The chunks so far, framing and all, as the client's connection got
	// them: piece's bytes, each chunk closed by its CRLF.
	got := 0
	for got < len(piece) {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d bytes of the piece: %v", got, err)
		}
		var n int
		if _, err := fmt.Sscanf(line, "%x", &n); err != nil || n == 0 {
			t.Fatalf("chunk line %q after %d bytes", line, got)
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			t.Fatalf("chunk of %d after %d bytes: %v", n, got, err)
		}
		if crlf, err := br.Peek(2); err != nil || string(crlf) != "\r\n" {
			t.Fatalf("chunk of %d after %d bytes not closed while the origin waits: %q %v", n, got, crlf, err)
		}
		br.Discard(2)
		got += n
	}
}

func TestH2CUpgradeNotForwarded(t *testing.T) {
	var upgrade atomic.Value
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upgrade.Store(r.Header.Get("Upgrade") + "|" + r.Header.Get("Http2-Settings"))
	}))
	defer o.Close()
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}")})
	r := e.do("GET", "a.example", "/", nil, "Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAAQAAP__")
	if r.StatusCode != 200 || upgrade.Load() != "|" {
		t.Errorf("status %d, origin saw Upgrade|Settings = %q, want none", r.StatusCode, upgrade.Load())
	}
}

func TestChunkedRequests(t *testing.T) {
	var got atomic.Value
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(fmt.Sprintf("%s cl=%q", b, r.Header.Get("Content-Length")))
	}))
	defer o.Close()
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}")})
	raw := func(req string) (*http.Response, net.Conn) {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, c
	}
	// Content-Length beside Transfer-Encoding: read as chunked, the length
	// never forwarded, and the client connection closed after.
	resp, _ := raw("POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if resp.StatusCode != 200 || !resp.Close || got.Load() != `hello cl=""` {
		t.Errorf("CL+TE: status %d, close %v, origin got %v", resp.StatusCode, resp.Close, got.Load())
	}
	// A malformed chunk size: 400, and the connection closed.
	got.Store("")
	resp, _ = raw("POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
	if resp.StatusCode != 400 || !resp.Close {
		t.Errorf("bad chunk: status %d, close %v, want 400 and close", resp.StatusCode, resp.Close)
	}
	if s, _ := got.Load().(string); strings.Contains(s, "hello") {
		t.Errorf("origin received the malformed body: %q", s)
	}
}

func TestFileOrigin(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("home"), 0o644)
	os.Mkdir(filepath.Join(dir, "nolist"), 0o755)
	os.WriteFile(filepath.Join(dir, "nolist", "f.txt"), []byte("f"), 0o644)
	os.WriteFile(filepath.Join(dir, ".secret"), []byte("s"), 0o644)
	e := newEdge(t, Config{}, map[string]string{"f.yaml": prop("f.example", "{url: 'file://"+dir+"'}",
		"headers: {response: {set: {X-Static: '1'}}}")})
	for _, tc := range []struct {
		path string
		want int
	}{{"/", 200}, {"/nolist/f.txt", 200}, {"/nolist/", 404}, {"/.secret", 404}, {"/../../etc/passwd", 404}} {
		r := e.do("GET", "f.example", tc.path, nil)
		if r.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.path, r.StatusCode, tc.want)
		}
		if tc.path == "/" && r.Header.Get("X-Static") != "1" {
			t.Error("response header rule not applied to a file origin")
		}
	}
}

func TestReloadKeepsOriginState(t *testing.T) {
	o, _ := echoOrigin(t, "o")
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}")})
	first := e.srv.siteFor(e.tab.Lookup("a.example")).origins[0]
	e.write(map[string]string{"b.yaml": prop("b.example", "{url: "+o.URL+"}")})
	if again := e.srv.siteFor(e.tab.Lookup("a.example")).origins[0]; again != first {
		t.Error("an unchanged origin was rebuilt on reload")
	}
	e.write(map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}", "timeouts: {connect: 1s}")})
	if again := e.srv.siteFor(e.tab.Lookup("a.example")).origins[0]; again == first {
		t.Error("a changed origin was kept")
	}
	select {
	case <-first.done:
	default:
		t.Error("the replaced origin was not stopped")
	}
}

func TestStatusFor(t *testing.T) {
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name string
		err  error
		gone bool
		body *trackedBody
		want int
	}{
		{"refused", &net.OpError{Op: "dial", Err: fmt.Errorf("connection refused")}, false, nil, 502},
		{"timeout", timeout, false, nil, 504},
		{"client gone", io.ErrUnexpectedEOF, true, nil, 499},
		{"client body broken", io.ErrUnexpectedEOF, false, &trackedBody{err: io.ErrUnexpectedEOF}, 400},
	} {
		if got := statusFor(tc.err, tc.gone, tc.body); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
