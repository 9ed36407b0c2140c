package h1_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

// On a plain TCP connection the end of a keep-alive response is written
// and the next request waited for in one step (conn.sendAndWait). These
// tests drive it with byte-level clients over real sockets.

// serveRaw serves h on an h1.Server with the given idle timeout and
// ConnState hook (may be nil); its address.
func serveRaw(t *testing.T, h http.Handler, idle time.Duration, hook func(net.Conn, http.ConnState)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idle}
	srv.ConnState = hook
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

func readAnswer(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func countHandler() http.Handler {
	n := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++ // one connection at a time in these tests
		fmt.Fprintf(w, "%s %d", r.URL.Path, n)
	})
}

// TestRawWaitNextRequestRightAway: a client that sends its next request
// the moment it has read an answer is served at once every time. The
// ConnState hook takes 2 ms on "idle": a server that wrote the answer,
// went idle and then began to wait (instead of writing inside the raw
// call) would see the request land and the poller take it in before the
// wait, and lose its wake-up: the request then waits for the raw wait's
// bound (10 ms). A connection stops the raw wait after one such wait, so
// each connection here carries two requests and the second is timed:
// with the wake-up lost, nearly every one of them takes 10 ms.
func TestRawWaitNextRequestRightAway(t *testing.T) {
	addr := serveRaw(t, countHandler(), 10*time.Second, func(c net.Conn, s http.ConnState) {
		if s == http.StateIdle {
			time.Sleep(2 * time.Millisecond)
		}
	})
	slow := 0
	const n = 100
	for i := 1; i <= n; i++ {
		c, br := dialRaw(t, addr)
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		if got := readAnswer(t, br); got != fmt.Sprint("/x ", 2*i-1) {
			t.Fatalf("connection %d, request 1: %q", i, got)
		}
		start := time.Now()
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		if got := readAnswer(t, br); got != fmt.Sprint("/x ", 2*i) {
			t.Fatalf("connection %d, request 2: %q", i, got)
		}
		if time.Since(start) >= 8*time.Millisecond {
			slow++
		}
		c.Close()
	}
	if slow > n/4 {
		t.Errorf("%d of %d next requests took 8 ms or more: wake-ups were lost", slow, n)
	}
}

// TestRawWaitIdleHookMayClose: a ConnState hook that closes the
// connection when it goes idle (as a server keeping few idle connections
// might) closes it; it is not run under the socket's read lock, where
// the close would wait for that lock forever.
func TestRawWaitIdleHookMayClose(t *testing.T) {
	addr := serveRaw(t, countHandler(), 10*time.Second, func(c net.Conn, s http.ConnState) {
		if s == http.StateIdle {
			c.Close()
		}
	})
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if got := readAnswer(t, br); got != "/x 1" {
		t.Fatal(got)
	}
	io.WriteString(c, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := br.ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection was not closed: its hook hung")
	}
	if err == nil {
		t.Error("a second answer on a connection its hook closed")
	}
}

// TestRawWaitPipelined: requests sent together are answered in order on
// one connection, each without a wait (the next one is buffered already;
// waiting for the socket instead would cost each the raw wait's bound,
// 10 ms: 2 s over these 100 rounds).
func TestRawWaitPipelined(t *testing.T) {
	addr := serveRaw(t, countHandler(), 10*time.Second, nil)
	c, br := dialRaw(t, addr)
	start := time.Now()
	n := 0
	for range 100 {
		io.WriteString(c, strings.Repeat("GET /p HTTP/1.1\r\nHost: a\r\n\r\n", 3))
		for range 3 {
			n++
			if got := readAnswer(t, br); got != fmt.Sprint("/p ", n) {
				t.Fatalf("answer %d: %q", n, got)
			}
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("100 rounds of 3 pipelined requests took %v: buffered requests waited", d)
	}
	io.WriteString(c, "GET /q HTTP/1.1\r\nHost: a\r\n")
	time.Sleep(20 * time.Millisecond) // the head's end comes late
	io.WriteString(c, "\r\n")
	if got := readAnswer(t, br); got != fmt.Sprint("/q ", n+1) {
		t.Fatalf("last answer: %q", got)
	}
}

// TestRawWaitPipelinedWhileHandlerRuns: a next request sent while a slow
// handler runs is partly read by the watch for the client leaving (one
// byte); the rest is on the socket before the server writes the answer.
// The server must not wait for readiness then (it came before the wait
// and would not come again): the request is answered at once.
func TestRawWaitPipelinedWhileHandlerRuns(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	})
	addr := serveRaw(t, h, 10*time.Second, nil)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the watch (after 2 ms) reads the next request's first byte
	close(release)
	start := time.Now()
	if got := readAnswer(t, br); got != "/slow" {
		t.Fatalf("first answer: %q", got)
	}
	if got := readAnswer(t, br); got != "/next" {
		t.Fatalf("second answer: %q", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("pipelined request answered after %v: its wake-up was lost", d)
	}
}

// TestRawWaitSlowReader: a response's end larger than the socket takes at
// once, to a client that reads late, is written whole (the raw write is
// partial or would block; the rest goes the ordinary way), and the
// connection serves the next request. Three requests come at once; the
// client reads nothing until the server has had time to write: the
// answers to the first two fill the socket, the third's raw write finds
// it full.
func TestRawWaitSlowReader(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 500) // 8,000 B: each response is held whole
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	addr := serveRaw(t, h, 10*time.Second, func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.(*net.TCPConn).SetWriteBuffer(4096) // the kernel's smallest: writes would block soon
		}
	})
	c, br := dialRaw(t, addr)
	c.(*net.TCPConn).SetReadBuffer(4096)
	for round := range 3 {
		io.WriteString(c, strings.Repeat("GET /small HTTP/1.1\r\nHost: a\r\n\r\n", 3))
		time.Sleep(20 * time.Millisecond) // the server writes before the client reads
		for i := range 3 {
			if got := readAnswer(t, br); got != body {
				t.Fatalf("round %d, answer %d: %d bytes, want %d", round, i, len(got), len(body))
			}
		}
	}
}

// TestRawWaitIdleTimeout: the idle timeout bounds the wait that follows
// the answer: a client that sends nothing more is closed after it.
func TestRawWaitIdleTimeout(t *testing.T) {
	addr := serveRaw(t, countHandler(), 200*time.Millisecond, nil)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if got := readAnswer(t, br); got != "/x 1" {
		t.Fatal(got)
	}
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("%v, want EOF", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v, want about 200ms", d)
	}
}

// TestRawWaitClientCloses: a client that closes after its answer ends the
// wait at once (the server closes too), and a client that half-closes
// after sending a request still gets the answer.
func TestRawWaitClientCloses(t *testing.T) {
	addr := serveRaw(t, countHandler(), 10*time.Second, nil)
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if got := readAnswer(t, br); got != "/x 1" {
		t.Fatal(got)
	}
	io.WriteString(c, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	if got := readAnswer(t, br); got != "/y 2" {
		t.Fatal(got)
	}
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("%v, want EOF", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed %v after the client's close", d)
	}
}

// TestRawWaitPipeliningClientDelayedOnce: a client that writes each
// pipelined request on its own, while the handler of the one before still
// runs (shorter than the client-gone watch's 2 ms), can have its wake-up
// taken by the raw wait's readiness reset; that request is then read at
// rawWaitMax. The connection stops the raw wait after the first such
// delay: 20 rounds cost about one rawWaitMax, not 20.
func TestRawWaitPipeliningClientDelayedOnce(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/held" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	})
	addr := serveRaw(t, h, 10*time.Second, nil)
	c, br := dialRaw(t, addr)
	const rounds = 20
	start := time.Now()
	for i := range rounds {
		io.WriteString(c, "GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
		<-started
		io.WriteString(c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
		// The request reaches the server's socket and its readiness the
		// runtime while the handler still runs (well under the 2 ms after
		// which the client-gone watch would read it).
		time.Sleep(300 * time.Microsecond)
		release <- struct{}{}
		for _, want := range []string{"/held", "/next"} {
			if got := readAnswer(t, br); got != want {
				t.Fatalf("round %d: answer %q, want %q", i, got, want)
			}
		}
	}
	t.Logf("%d rounds: %v", rounds, time.Since(start))
	if d := time.Since(start); d > rounds*10*time.Millisecond/2 {
		t.Errorf("%d rounds took %v: a client that sends during the handler waits the raw wait's bound (10 ms) again and again", rounds, d)
	}
}
