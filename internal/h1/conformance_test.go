package h1_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/internal/h1"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/proxy"
)

// The suite's limits: small, so that the rows stay quick.
const (
	headLimit   = 16 << 10
	uriLimit    = 4 << 10
	headTimeout = 400 * time.Millisecond
	idleTimeout = 600 * time.Millisecond
)

// front is one HTTP/1.1 server serving the proxy's handler on a socket.
type front struct {
	name string
	addr string
}

// origin records what reached it, one line per request.
type origin struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func (o *origin) reset() {
	o.mu.Lock()
	o.seen = nil
	o.mu.Unlock()
}

func (o *origin) got() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.seen)
}

func newOrigin(t *testing.T) *origin {
	o := &origin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			buf := make([]byte, 4)
			if _, err := io.ReadFull(brw, buf); err == nil {
				c.Write(bytes.ToUpper(buf))
			}
			return
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
			return
		case "/cached":
			w.Header().Set("Cache-Control", "max-age=60")
			io.WriteString(w, "cached body")
			return
		case "/early":
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints")
			return
		case "/etag":
			w.Header().Set("ETag", `"v1"`)
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			io.WriteString(w, "tagged")
			return
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/big":
			w.Header().Set("Content-Length", "102400")
			w.Write(bytes.Repeat([]byte("b"), 100<<10))
			return
		case "/bigstream":
			for range 25 {
				w.Write(bytes.Repeat([]byte("s"), 4<<10))
				w.(http.Flusher).Flush()
			}
			return
		case "/nolength":
			w.(http.Flusher).Flush()
			io.WriteString(w, "streamed")
			return
		}
		b, _ := io.ReadAll(r.Body)
		var hdr []string
		for k, vv := range r.Header {
			if k == "X-Request-Id" {
				continue
			}
			hdr = append(hdr, k+"="+strings.Join(vv, "|"))
		}
		sort.Strings(hdr)
		var tr []string
		for k, vv := range r.Trailer {
			tr = append(tr, k+"="+strings.Join(vv, "|"))
		}
		sort.Strings(tr)
		line := fmt.Sprintf("%s %s host=%s body=%q hdr=%v trailers=%v", r.Method, r.RequestURI, r.Host, b, hdr, tr)
		o.mu.Lock()
		o.seen = append(o.seen, line)
		o.mu.Unlock()
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(b))
	}))
	t.Cleanup(o.Close)
	return o
}

// newProxy is the real proxy handler: a.example plain, c.example cached.
func newProxy(t *testing.T, o *origin) *proxy.Server {
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := proxy.New(proxy.Config{Cache: c, Limits: proxy.Limits{MaxHeaderBytes: headLimit, MaxURIBytes: uriLimit}})
	t.Cleanup(p.Close)
	dir := t.TempDir()
	files := map[string]string{
		"a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\n", o.URL),
		"c.yaml": fmt.Sprintf("hostnames: [c.example]\norigins: [{url: %s}]\ncache: {enabled: true}\n", o.URL),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := property.LoadDir(dir, nil, property.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pr := tab.Problems(); len(pr) > 0 {
		t.Fatalf("properties rejected: %v", pr)
	}
	p.Update(tab)
	return p
}

// startFronts serves h on Go's server (as internal/node sets it up: the
// head bound exact) and on h1.Server.
func startFronts(t *testing.T, h http.Handler) []front {
	goLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goSrv := &http.Server{Handler: h, ReadHeaderTimeout: headTimeout, IdleTimeout: idleTimeout,
		MaxHeaderBytes: headLimit - 4096}
	go goSrv.Serve(goLn)
	t.Cleanup(func() { goSrv.Close() })

	edgeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	edgeSrv := &h1.Server{Handler: h, ReadHeaderTimeout: headTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: headLimit}
	done := make(chan error, 1)
	go func() { done <- edgeSrv.Serve(edgeLn) }()
	t.Cleanup(func() {
		edgeSrv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("h1 Serve: %v", err)
		}
	})
	return []front{{"go", goLn.Addr().String()}, {"edge", edgeLn.Addr().String()}}
}

// headOf builds "GET / HTTP/1.1" with Host a.example padded to size bytes.
func headOf(size int) string {
	h := "GET / HTTP/1.1\r\nHost: a.example\r\n"
	pad := size - len(h) - len("X-Pad: \r\n\r\n")
	return h + "X-Pad: " + strings.Repeat("p", pad) + "\r\n\r\n"
}

// row is one raw exchange.
type row struct {
	name string
	req  string
	// want: the statuses of the answers in order ("" : none at all).
	want string
	// closed: the server closes the connection after them; else a probe
	// request on the same connection must get a 200 (kept, in sync).
	closed bool
	// origin: what must appear in the origin's record (each substring in
	// some line); noOrigin: the origin got nothing.
	origin   []string
	notSeen  []string // substrings no origin line may hold
	noOrigin bool
	// after: bytes written once the answers are read (an upgraded
	// connection), and what must come back.
	after, afterWant string
	// method of the request, for reading a HEAD answer.
	method string
	// wantHeader: fields (Name: value, or its start) the answers must carry.
	wantHeader []string
	// sameBytes: the answers must be byte-identical on both fronts
	// (but for Date and X-Request-Id, and field order).
	sameBytes bool
}

const probe = "GET /probe HTTP/1.1\r\nHost: a.example\r\n\r\n"

func rows() []row {
	return []row{
		{name: "plain GET", req: "GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /x host=a.example"}, sameBytes: true},
		{name: "HEAD", req: "HEAD /x HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", method: "HEAD", sameBytes: true},
		{name: "HTTP/1.0 closes", req: "GET /x HTTP/1.0\r\nHost: a.example\r\n\r\n", want: "200", closed: true, sameBytes: true},
		{name: "HTTP/1.0 keep-alive", req: "GET /x HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n", want: "200", wantHeader: []string{"Connection: keep-alive"}, sameBytes: true},
		{name: "HTTP/1.0 without Host", req: "GET /x HTTP/1.0\r\n\r\n", want: "421", closed: true, noOrigin: true},
		{name: "Connection close", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n", want: "200", closed: true, wantHeader: []string{"Connection: close"}, sameBytes: true},
		{name: "pipelining", req: "GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\nGET /2 HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200 200", origin: []string{"GET /1 ", "GET /2 "}, sameBytes: true},
		{name: "POST with length", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello", want: "200", origin: []string{`POST /p host=a.example body="hello"`}, sameBytes: true},
		{name: "POST then CRLF tolerated", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello\r\nGET /2 HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200 200", origin: []string{"GET /2 "}},
		{name: "POST chunked", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: "200", closed: true, origin: []string{`body="hello"`}},
		{name: "chunked in any case", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: "200", closed: true, origin: []string{`body="hello"`}},
		{name: "CL+TE smuggling", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", closed: true, notSeen: []string{"/smuggled", "Content-Length"}},
		{name: "TE gzip refused", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip\r\n\r\n", want: "501", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE list refused", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: "501", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE twice refused", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: "501", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE identity refused", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", want: "501", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE ignored on HTTP/1.0", req: "POST /p HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: "200 400", closed: true, origin: []string{`POST /p host=a.example body=""`}},
		{name: "CL twice same value", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", want: "200", origin: []string{`body="hello"`}},
		{name: "CL twice differing", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "CL list", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5, 5\r\n\r\nhello", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "CL signed", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: +5\r\n\r\nhello", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "CL negative", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: -1\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "CL empty", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: \r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "CL huge", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 99999999999999999999\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "whitespace before colon", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX-A : b\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "whitespace before colon in Host", req: "GET /x HTTP/1.1\r\nHost : a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "obs-fold folded", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Fold: a\r\n  b\r\n\r\n", want: "200", origin: []string{"X-Fold=a b"}},
		{name: "obs-fold first line", req: "GET /x HTTP/1.1\r\n Host: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "bare LF", req: "GET /x HTTP/1.1\nHost: a.example\nX-A: b\n\n", want: "200", origin: []string{"X-A=b"}},
		{name: "bare CR in value", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX-A: b\rc\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "NUL in value", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX-A: b\x00c\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "field without colon", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX-A\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "missing Host", req: "GET /x HTTP/1.1\r\nX-A: b\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "duplicate Host", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "malformed Host", req: "GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "empty Host", req: "GET /x HTTP/1.1\r\nHost:\r\n\r\n", want: "421", noOrigin: true},
		{name: "Host with port", req: "GET /x HTTP/1.1\r\nHost: a.example:80\r\n\r\n", want: "200", origin: []string{"GET /x host=a.example"}},
		{name: "absolute-form target", req: "GET http://a.example/abs HTTP/1.1\r\nHost: b.example\r\n\r\n", want: "200", origin: []string{"GET /abs host=a.example"}},
		{name: "absolute-form to unknown host", req: "GET http://b.example/abs HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "421", noOrigin: true},
		{name: "asterisk target", req: "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200"},
		{name: "space in target", req: "GET /a b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "control byte in target", req: "GET /a\x01b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "non-ASCII target", req: "GET /a\xffb HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a%FFb "}},
		{name: "fragment in target", req: "GET /a#frag HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200"},
		{name: "percent-encoded target", req: "GET /a%2Fb?q=%20x HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a%2Fb?q=%20x "}},
		{name: "invalid method", req: "G(T /x HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "lower-case method", req: "get /x HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"get /x "}},
		{name: "HTTP/2.0 line", req: "GET / HTTP/2.0\r\nHost: a.example\r\n\r\n", want: "505", closed: true, noOrigin: true, sameBytes: true},
		{name: "HTTP/0.9 line", req: "GET / HTTP/0.9\r\nHost: a.example\r\n\r\n", want: "505", closed: true, noOrigin: true, sameBytes: true},
		{name: "HTTP/1.2 line", req: "GET /x HTTP/1.2\r\nHost: a.example\r\n\r\n", want: "200"},
		{name: "lower-case version", req: "GET / http/1.1\r\nHost: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "empty request line", req: "\r\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "garbage line", req: "hello\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "expect 100-continue", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", want: "100 200", origin: []string{`body="hello"`}},
		{name: "unknown expectation", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\nhello", want: "417", closed: true, noOrigin: true, sameBytes: true},
		{name: "head at the limit", req: headOf(headLimit), want: "200"},
		{name: "head one byte over", req: headOf(headLimit + 1), want: "431", closed: true, noOrigin: true, sameBytes: true},
		{name: "head far over", req: headOf(4 * headLimit), want: "431", closed: true, noOrigin: true, sameBytes: true},
		{name: "URI over its limit", req: "GET /" + strings.Repeat("u", uriLimit) + " HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "414", noOrigin: true},
		{name: "underscore field dropped", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX_Foo: spoof\r\nContent_Length: 9\r\n\r\n", want: "200", notSeen: []string{"spoof", "Content_length"}},
		{name: "Pragma no-cache", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nPragma: no-cache\r\n\r\n", want: "200", origin: []string{"Pragma=no-cache"}},
		{name: "request trailers", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, Host\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nHost: evil.example\r\nContent-Length: 99\r\n\r\n", want: "200", closed: true, origin: []string{"trailers=[X-Checksum=abc]"}, notSeen: []string{"evil"}},
		{name: "request trailers not forwarded when caching", req: "POST /p HTTP/1.1\r\nHost: c.example\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n", want: "200", closed: true, origin: []string{"trailers=[]"}},
		{name: "bad chunk size", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", want: "400", closed: true},
		{name: "response trailers", req: "GET /trailer HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", sameBytes: true},
		{name: "early hints", req: "GET /early HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "103 200", sameBytes: true},
		{name: "streamed without length", req: "GET /nolength HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", sameBytes: true},
		{name: "not modified", req: "GET /etag HTTP/1.1\r\nHost: a.example\r\nIf-None-Match: \"v1\"\r\n\r\n", want: "304", sameBytes: true},
		{name: "no content", req: "GET /nocontent HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "204", sameBytes: true},
		{name: "100 KiB with length", req: "GET /big HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", sameBytes: true},
		{name: "100 KiB streamed", req: "GET /bigstream HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", wantHeader: []string{"Transfer-Encoding: chunked"}},
		{name: "HEAD on HTTP/1.0 keep-alive", req: "HEAD /x HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n", want: "200", method: "HEAD", sameBytes: true},
		{name: "keep-alive and close", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, close\r\n\r\n", want: "200", closed: true, sameBytes: true},
		{name: "expect 100-continue, answered unread", req: "POST /x HTTP/1.1\r\nHost: nowhere.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", want: "421", closed: true, noOrigin: true, sameBytes: true},
		{name: "bare LF in chunk line", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", want: "400", closed: true},
		{name: "h2c upgrade not forwarded", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", want: "200", notSeen: []string{"h2c", "Http2-Settings"}, sameBytes: true},
		{name: "HTTP/2 preface", req: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", want: "421", closed: true, noOrigin: true},
		{name: "cache hit", req: "GET /cached HTTP/1.1\r\nHost: c.example\r\n\r\nGET /cached HTTP/1.1\r\nHost: c.example\r\n\r\n", want: "200 200", wantHeader: []string{"Cache-Status: Edge; hit"}},
		{name: "unknown property", req: "GET /x HTTP/1.1\r\nHost: nowhere.example\r\n\r\n", want: "421", noOrigin: true, sameBytes: true},
		// reviewh1: attack classes (PortSwigger's desync list and more).
		{name: "pipelined after an error", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX-A : b\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "request after Connection close", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", closed: true, notSeen: []string{"/smuggled"}, sameBytes: true},
		{name: "CL.0 on GET", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 43\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{`body="GET /smuggled`}, notSeen: []string{"GET /smuggled host"}, sameBytes: true},
		{name: "CL.0 unread by the handler", req: "GET /x HTTP/1.1\r\nHost: nowhere.example\r\nContent-Length: 43\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "421", noOrigin: true, sameBytes: true},
		{name: "chunk size overflow", req: "POST /p HTTP/1.1\r\nHost: nowhere.example\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", want: "421", closed: true, noOrigin: true},
		{name: "chunk extension", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d\"\r\nhello\r\n0;z\r\n\r\n", want: "200", closed: true, origin: []string{`body="hello"`}},
		{name: "oversized chunk line", req: "POST /p HTTP/1.1\r\nHost: nowhere.example\r\nTransfer-Encoding: chunked\r\n\r\n5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n", want: "421", closed: true, noOrigin: true},
		{name: "bare LF after chunk data", req: "POST /p HTTP/1.1\r\nHost: nowhere.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", want: "421", closed: true, noOrigin: true},
		{name: "chunk data longer than its size", req: "POST /p HTTP/1.1\r\nHost: nowhere.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", want: "421", closed: true, noOrigin: true},
		{name: "trailer smuggles framing", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n", want: "200", closed: true, origin: []string{`body="hello"`}},
		{name: "bare CR ends no line", req: "GET /x HTTP/1.1\rHost: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "bare CR in field name line", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX-A\r: b\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "NUL in request line", req: "GET /x\x00y HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "NUL in field name", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nX-\x00A: b\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE with vertical tab", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE obs-folded", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", want: "200", closed: true, notSeen: []string{"Content-Length"}},
		{name: "TE xchunked", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello", want: "501", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE chunked with trailing space", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked \t\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: "200", closed: true, origin: []string{`body="hello"`}},
		{name: "TE then CL in lower case", req: "POST /p HTTP/1.1\r\nhost: a.example\r\ntransfer-encoding: chunked\r\ncontent-length: 100\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: "200", closed: true, origin: []string{`body="hello"`}},
		{name: "CL with leading zeros", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 005\r\n\r\nhello", want: "200", origin: []string{`body="hello"`}, sameBytes: true},
		{name: "CL 19 digits", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0000000000000000005\r\n\r\nhello", want: "200", origin: []string{`body="hello"`}, sameBytes: true},
		{name: "CL with tab", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length:\t5\t\r\n\r\nhello", want: "200", origin: []string{`body="hello"`}, sameBytes: true},
		{name: "many tiny fields", req: "GET /x HTTP/1.1\r\nHost: a.example\r\n" + strings.Repeat("a:\r\n", 3000) + "\r\n", want: "200"},
		{name: "many distinct tiny fields", req: "GET /x HTTP/1.1\r\nHost: a.example\r\n" + manyFields(1500) + "\r\n", want: "200"},
		{name: "unread body under 256 KiB kept", req: "POST /x HTTP/1.1\r\nHost: nowhere.example\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("b", 200000), want: "421", noOrigin: true, sameBytes: true},
		{name: "unread body over 256 KiB closes", req: "POST /x HTTP/1.1\r\nHost: nowhere.example\r\nContent-Length: 300000\r\n\r\n" + strings.Repeat("b", 300000), want: "421", closed: true, noOrigin: true, sameBytes: true},
		{name: "unread chunked body over 256 KiB closes", req: "POST /x HTTP/1.1\r\nHost: nowhere.example\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("8000\r\n"+strings.Repeat("c", 0x8000)+"\r\n", 9) + "0\r\n\r\n", want: "421", closed: true, noOrigin: true, sameBytes: true},
		{name: "expect 100-continue on HTTP/1.0", req: "POST /p HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", want: "200", origin: []string{`body="hello"`}},
		{name: "expect 100-continue without body", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nExpect: 100-continue\r\n\r\n", want: "200", sameBytes: true},
		{name: "expect twice, second unknown", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 100-continue\r\nExpect: teapot\r\n\r\nhello", want: "100 200", origin: []string{`body="hello"`}},
		{name: "absolute-form with userinfo", req: "GET http://evil@a.example/abs HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200"},
		{name: "CONNECT refused", req: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", want: "405", noOrigin: true},
		{name: "expect token after a space", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: x 100-Continue\r\n\r\nhello", want: "100 200", origin: []string{`body="hello"`}},
		{name: "expect token with parameter", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nExpect: 100-continue;a=b\r\n\r\nhello", want: "417", closed: true, noOrigin: true, sameBytes: true},
		{name: "target with { passes as on Go", req: "GET /a{b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a"}, sameBytes: true},
		{name: "target with \" passes as on Go", req: "GET /a\"b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a"}, sameBytes: true},
		{name: "target with < passes as on Go", req: "GET /a<b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a"}, sameBytes: true},
		{name: "target with \\ passes as on Go", req: "GET /a\\b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a"}, sameBytes: true},
		{name: "target with ^ passes as on Go", req: "GET /a^b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a"}, sameBytes: true},
		{name: "target with ` passes as on Go", req: "GET /a`b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a"}, sameBytes: true},
		{name: "target with | passes as on Go", req: "GET /a|b HTTP/1.1\r\nHost: a.example\r\n\r\n", want: "200", origin: []string{"GET /a"}, sameBytes: true},
		{name: "Host twice in odd case", req: "GET /x HTTP/1.1\r\nHost: a.example\r\nhOST: b.example\r\n\r\n", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "CL twice in odd case", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\ncONTENT-lENGTH: 6\r\n\r\nhello!", want: "400", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE twice in odd case", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\ntRANSFER-eNCODING: chunked\r\n\r\n0\r\n\r\n", want: "501", closed: true, noOrigin: true, sameBytes: true},
		{name: "TE and CL in odd case", req: "POST /p HTTP/1.1\r\nHost: a.example\r\ncONTENT-lENGTH: 3\r\ntRANSFER-eNCODING: cHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: "200", closed: true, origin: []string{`body="hello"`}, notSeen: []string{"Content-Length"}},
		{name: "Trailer declared in odd case", req: "POST /p HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\ntRAILER: X-A\r\n\r\n5\r\nhello\r\n0\r\nX-A: 1\r\n\r\n", want: "200", closed: true, origin: []string{`body="hello"`}},
		{name: "websocket upgrade with early bytes", req: "GET /ws HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\npong", want: "101", closed: true, afterWant: "PONG"},
		{name: "websocket upgrade", req: "GET /ws HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", want: "101", after: "ping", afterWant: "PING"},
	}
}

// exchange runs one row on one front: the answers' statuses, whether the
// connection stayed usable, and every byte received.
func exchange(t *testing.T, addr string, rw row) (statuses []string, kept bool, raw []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &got))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		c.Write([]byte(rw.req)) // the server may answer before it read it all
	}()
	defer func() { <-wrote }()
	method := rw.method
	if method == "" {
		method = "GET"
	}
	n := len(strings.Fields(rw.want))
	var last *http.Response
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return statuses, false, got.Bytes()
		}
		statuses = append(statuses, fmt.Sprint(resp.StatusCode))
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			continue // an interim answer: the final one follows
		}
		if resp.StatusCode == 101 {
			io.WriteString(c, rw.after)
			buf := make([]byte, len(rw.afterWant))
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != rw.afterWant {
				t.Errorf("after the upgrade: %q, %v; want %q", buf, err, rw.afterWant)
			}
			return statuses, false, got.Bytes()
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		last = resp
	}
	if last != nil {
		for _, f := range rw.wantHeader {
			if !bytes.Contains(got.Bytes(), []byte("\r\n"+f)) {
				t.Errorf("no %q in the answer:\n%s", f, got.Bytes())
			}
		}
	}
	// Kept: a next request is answered on the same connection.
	<-wrote
	if _, err := io.WriteString(c, probe); err != nil {
		return statuses, false, got.Bytes()
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return statuses, false, got.Bytes()
	}
	io.Copy(io.Discard, resp.Body)
	return statuses, resp.StatusCode == 200, got.Bytes()
}

var (
	volatileField = regexp.MustCompile(`(?m)^(Date: |X-Request-Id: |request id: )[^\r\n]*\r?\n`)
	responseHead  = regexp.MustCompile(`HTTP/1\.[01] \d{3}[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n`)
)

// normalise drops Date and X-Request-Id and sorts each head's fields.
func normalise(b []byte) string {
	b = volatileField.ReplaceAll(b, nil)
	return string(responseHead.ReplaceAllFunc(b, func(h []byte) []byte {
		m := responseHead.FindSubmatchIndex(h)
		fields := strings.SplitAfter(string(h[m[2]:m[3]]), "\r\n")
		sort.Strings(fields)
		return append(h[:m[2]:m[2]], strings.Join(fields, "")+"\r\n"...)
	}))
}

// TestConformance runs every raw request against Go's server and
// h1.Server, both serving the real proxy handler: the same statuses, the
// same connection behaviour, what the origin got (the same on both), and
// for most rows the same bytes.
func TestConformance(t *testing.T) {
	o := newOrigin(t)
	fronts := startFronts(t, newProxy(t, o).HTTPHandler())
	for _, rw := range rows() {
		t.Run(rw.name, func(t *testing.T) {
			var raws []string
			var origins [][]string
			for _, f := range fronts {
				o.reset()
				statuses, kept, raw := exchange(t, f.addr, rw)
				if got := strings.Join(statuses, " "); got != rw.want {
					t.Errorf("%s: statuses %q, want %q\n%s", f.name, got, rw.want, raw)
				}
				if rw.after == "" && kept == rw.closed {
					t.Errorf("%s: kept %v, want %v\n%s", f.name, kept, !rw.closed, raw)
				}
				seen := o.got()
				if !kept && rw.after == "" {
					// the probe never reached the origin
				} else if len(seen) > 0 && strings.HasPrefix(seen[len(seen)-1], "GET /probe ") {
					seen = seen[:len(seen)-1]
				}
				if rw.noOrigin && len(seen) > 0 {
					t.Errorf("%s: the origin got %q", f.name, seen)
				}
				for _, want := range rw.origin {
					if !slices.ContainsFunc(seen, func(l string) bool { return strings.Contains(l, want) }) {
						t.Errorf("%s: no origin request holds %q: %q", f.name, want, seen)
					}
				}
				for _, not := range rw.notSeen {
					if slices.ContainsFunc(seen, func(l string) bool { return strings.Contains(l, not) }) {
						t.Errorf("%s: an origin request holds %q: %q", f.name, not, seen)
					}
				}
				raws = append(raws, normalise(raw))
				origins = append(origins, seen)
			}
			if !slices.Equal(origins[0], origins[1]) {
				t.Errorf("the origin got\n go:   %q\n edge: %q", origins[0], origins[1])
			}
			if rw.sameBytes && raws[0] != raws[1] {
				t.Errorf("answers differ\n go:   %q\n edge: %q", raws[0], raws[1])
			}
		})
	}
}

// TestSlowlorisClosed: a head still incomplete after the read-header
// timeout gets no answer; the connection is closed (both fronts).
func TestSlowlorisClosed(t *testing.T) {
	o := newOrigin(t)
	for _, f := range startFronts(t, newProxy(t, o).HTTPHandler()) {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\nX-Slow: ")
		b, err := io.ReadAll(c)
		if err != nil || len(b) != 0 {
			t.Errorf("%s: read %q, %v; want a silent close", f.name, b, err)
		}
		// The server's clock starts at its accept, a little before ours.
		if d := time.Since(start); d < headTimeout-100*time.Millisecond || d > headTimeout+2*time.Second {
			t.Errorf("%s: closed after %v, want about %v", f.name, d, headTimeout)
		}
		c.Close()
	}
}

// TestIdleConnectionClosed: a kept connection with no next request is
// closed after the idle timeout (both fronts).
func TestIdleConnectionClosed(t *testing.T) {
	o := newOrigin(t)
	for _, f := range startFronts(t, newProxy(t, o).HTTPHandler()) {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, probe)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		start := time.Now()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: %v, want EOF", f.name, err)
		}
		if d := time.Since(start); d < idleTimeout-100*time.Millisecond || d > idleTimeout+2*time.Second {
			t.Errorf("%s: closed after %v, want about %v", f.name, d, idleTimeout)
		}
		c.Close()
	}
}

// TestClientGoneCancelsContext: the request's context ends when the
// client closes its connection while the handler waits (both fronts).
func TestClientGoneCancelsContext(t *testing.T) {
	cancelled := make(chan string, 2)
	started := make(chan struct{}, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- "cancelled"
		case <-time.After(5 * time.Second):
			cancelled <- "not cancelled"
		}
	})
	for _, f := range startFronts(t, h) {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, probe)
		<-started
		c.Close()
		if got := <-cancelled; got != "cancelled" {
			t.Errorf("%s: %s", f.name, got)
		}
	}
}

// TestShutdownWaitsForActiveRequest: Shutdown closes idle connections at
// once, answers the request in flight, then returns.
func TestShutdownWaitsForActiveRequest(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	s := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(ibr, nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	busy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF", err)
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done" || !resp.Close {
		t.Errorf("in-flight answer: %q, close %v", b, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// manyFields is n distinct fields "F<i>: v".
func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "F%d: v\r\n", i)
	}
	return b.String()
}
