package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The request to an HTTP origin without a body is written and its answer
// waited for in one step (upConn.sendRaw), with the pooled connection's
// liveness peek folded in. These tests drive it with byte-level origins
// on real sockets.

// clientConn is one keep-alive client connection to the edge.
type clientConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialEdge(t *testing.T, e *edge) *clientConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &clientConn{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends a request on the connection and reads the answer whole.
func (cc *clientConn) do(method, host, path, body string) (int, string) {
	cc.t.Helper()
	cc.c.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	if body == "" {
		req.Body = nil
		if method == "POST" {
			req.Header.Set("Content-Length", "0")
		}
	}
	if err := req.Write(cc.c); err != nil {
		cc.t.Fatal(err)
	}
	resp, err := http.ReadResponse(cc.br, req)
	if err != nil {
		cc.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		cc.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// answerKA writes a keep-alive 200 with body, in one write.
func answerKA(c net.Conn, body string) {
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// TestRawSendAnswerRightAway: an origin that answers the moment a request
// arrives (so the answer often lands before the edge has begun to wait)
// is read every time on one pooled connection: a lost wake-up would show
// as a 504 after the response-header timeout.
func TestRawSendAnswerRightAway(t *testing.T) {
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) { answerKA(c, fmt.Sprint(n)) })
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}", "timeouts: {response_header: 5s}")})
	cc := dialEdge(t, e)
	for i := 1; i <= 500; i++ {
		start := time.Now()
		code, body := cc.do("GET", "a.example", "/", "")
		if code != 200 || body != fmt.Sprint(i) {
			t.Fatalf("request %d: %d %q after %v", i, code, body, time.Since(start))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("request %d took %v: a wake-up was lost", i, d)
		}
	}
	if o.conns.Load() != 1 {
		t.Errorf("%d origin connections for 500 requests, want 1", o.conns.Load())
	}
}

// TestRawSendAnswerInManySegments: a response head and body that come in
// one-byte TCP segments, with pauses, are read whole (the first segment
// ends the wait; the rest are read the ordinary way).
func TestRawSendAnswerInManySegments(t *testing.T) {
	body := strings.Repeat("b", 300)
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		c.(*net.TCPConn).SetNoDelay(true)
		msg := fmt.Sprintf("HTTP/1.1 200 OK\r\nX-N: %d\r\nContent-Length: %d\r\n\r\n%s", n, len(body), body)
		for i := 0; i < len(msg); i++ {
			c.Write([]byte{msg[i]})
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	cc := dialEdge(t, e)
	for i := 0; i < 3; i++ {
		if code, got := cc.do("GET", "a.example", "/", ""); code != 200 || got != body {
			t.Fatalf("request %d: %d, %d bytes", i, code, len(got))
		}
	}
	if o.conns.Load() != 1 {
		t.Errorf("%d origin connections, want 1", o.conns.Load())
	}
}

// speakFirstOrigin writes a whole response as soon as it accepts a
// connection, before any request, tells wrote, then reads the request.
func speakFirstOrigin(t *testing.T, wrote chan<- struct{}) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				answerKA(c, "early")
				wrote <- struct{}{}
				http.ReadRequest(bufio.NewReader(c))
				io.Copy(io.Discard, c) // until the edge closes it
			})
		}
	})
	return ln
}

// TestRawSendOriginSpeaksFirst: bytes an origin sent on a new connection
// before the request, and whose readiness the runtime has already taken
// in (the edge dials, the bytes land, the poller runs, then the request
// goes), are seen by the peek, and the request takes the ordinary path,
// which reads them at once (as before sendRaw), instead of waiting out
// the response-header timeout for a wake-up that came before the wait.
func TestRawSendOriginSpeaksFirst(t *testing.T) {
	wrote := make(chan struct{}, 1)
	ln := speakFirstOrigin(t, wrote)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: http://"+ln.Addr().String()+"}", "timeouts: {response_header: 5s}")})
	// The exchange runs on this goroutine (st.forward), so the dial can be
	// wrapped without a race.
	st := e.srv.siteFor(e.tab.Lookup("a.example"))
	pool := st.origins[0].pool
	dial := pool.dial
	pool.dial = func(ctx context.Context) (net.Conn, error) {
		c, err := dial(ctx)
		if err == nil {
			<-wrote
			time.Sleep(20 * time.Millisecond) // the network poller sees the bytes
		}
		return c, err
	}
	rec := httptest.NewRecorder()
	start := time.Now()
	st.forward(rec, httptest.NewRequest("GET", "http://a.example/", nil))
	if rec.Code != 200 || rec.Body.String() != "early" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answer read after %v: the early bytes' wake-up was lost", d)
	}
}

// closingOrigin answers the first request on each connection with
// keep-alive and then closes the connection, as an origin whose idle
// timeout is shorter than the edge's. closed gets one value per
// connection closed.
func closingOrigin(t *testing.T) (*rawOrigin, chan struct{}, *atomic.Int64) {
	closed := make(chan struct{}, 100)
	var posts atomic.Int64
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		if r.Method == "POST" {
			posts.Add(1)
		}
		answerKA(c, r.Method+fmt.Sprint(n))
		c.Close()
		closed <- struct{}{}
	})
	return o, closed, &posts
}

// TestIdleClosedPooledConnGETNotAnError: a GET that takes a pooled
// connection the origin has closed meanwhile is answered by the origin
// over another connection, never with an error.
func TestIdleClosedPooledConnGETNotAnError(t *testing.T) {
	o, closed, _ := closingOrigin(t)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	cc := dialEdge(t, e)
	for i := 1; i <= 5; i++ {
		if code, body := cc.do("GET", "a.example", "/", ""); code != 200 || body != fmt.Sprint("GET", i) {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		<-closed // the pooled connection is closed before the next request
	}
	if o.conns.Load() != 5 || o.requests.Load() != 5 {
		t.Errorf("%d connections, %d requests; want 5 and 5", o.conns.Load(), o.requests.Load())
	}
}

// TestIdleClosedPooledConnPOSTSentOnce: a POST without a body that takes
// a pooled connection found closed before anything was written goes, once,
// on a new connection: nothing of it reached the origin before.
func TestIdleClosedPooledConnPOSTSentOnce(t *testing.T) {
	o, closed, posts := closingOrigin(t)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	cc := dialEdge(t, e)
	if code, _ := cc.do("GET", "a.example", "/", ""); code != 200 {
		t.Fatal(code)
	}
	<-closed
	if code, body := cc.do("POST", "a.example", "/", ""); code != 200 || body != "POST2" {
		t.Fatalf("POST: %d %q", code, body)
	}
	if posts.Load() != 1 {
		t.Errorf("origin got the POST %d times, want once", posts.Load())
	}
}

// TestPOSTNotResentAfterCloseCrossedIt: an origin that closes a pooled
// connection just as a request arrives on it (it read the request and
// dropped it, so it may have acted on it) gets a POST once: the client
// gets a 502, never a second POST. A GET in the same spot is sent again
// on a new connection and answered.
func TestPOSTNotResentAfterCloseCrossedIt(t *testing.T) {
	var posts atomic.Int64
	perConn := sync.Map{}
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		v, _ := perConn.LoadOrStore(c, new(int))
		k := v.(*int)
		*k++
		if r.Method == "POST" {
			posts.Add(1)
		}
		if *k == 2 {
			c.Close() // the second request on a connection: taken, dropped
			return
		}
		answerKA(c, r.Method)
	})
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	cc := dialEdge(t, e)
	for _, m := range []string{"GET", "POST"} {
		if code, _ := cc.do("GET", "a.example", "/", ""); code != 200 {
			t.Fatal(code)
		}
		code, body := cc.do(m, "a.example", "/", "")
		if m == "GET" && (code != 200 || body != "GET") {
			t.Errorf("GET after a crossed close: %d %q, want 200", code, body)
		}
		if m == "POST" && code != 502 {
			t.Errorf("POST after a crossed close: %d %q, want 502", code, body)
		}
	}
	if posts.Load() != 1 {
		t.Errorf("origin got the POST %d times, want once", posts.Load())
	}
}

// TestRawSendSlowOriginTimesOut: the wait of the raw call honours the
// response-header timeout: an origin that never answers gets a 504 in
// about that time.
func TestRawSendSlowOriginTimesOut(t *testing.T) {
	release := make(chan struct{})
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		if n == 1 {
			answerKA(c, "ok") // pools the connection first
			return
		}
		<-release
	})
	defer close(release)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}", "timeouts: {response_header: 200ms}")})
	cc := dialEdge(t, e)
	if code, _ := cc.do("GET", "a.example", "/", ""); code != 200 {
		t.Fatal(code)
	}
	start := time.Now()
	code, _ := cc.do("POST", "a.example", "/", "")
	if d := time.Since(start); code != 504 || d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("silent origin: %d after %v, want 504 after about 200ms", code, d)
	}
}
