package h1_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

// A body larger than the connection's 8 KiB write buffer goes out with the
// buffered head in one writev on the TCP connection (connWriter). These
// tests pin what that must never change: every byte, in order, at every
// size and framing; slow readers; clients that leave; deadlines; and TLS.

// bodySizes straddle the 2 KiB sniffing buffer, the 8 KiB write buffer and
// loopback's 64 KiB segments.
var bodySizes = []int{0, 1, 100, 2047, 2048, 2049, 4095, 7900, 8191, 8192, 8193, 16384, 65535, 65536, 65537, 100 << 10, 1<<20 + 3}

// patterned is n bytes no shift, duplication or loss can keep equal.
func patterned(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// bodyHandler answers /<mode>/<size> with patterned(size): "declared"
// with Content-Length in one Write (a cache hit), "undeclared" in one
// Write (chunked past 2 KiB), "pieces" with Content-Length in uneven
// writes (a proxied body).
func bodyHandler(w http.ResponseWriter, r *http.Request) {
	i := strings.LastIndexByte(r.URL.Path, '/')
	mode := r.URL.Path[1:max(i, 1)]
	size, _ := strconv.Atoi(r.URL.Path[i+1:])
	body := patterned(size, 7)
	w.Header().Set("Content-Type", "application/octet-stream")
	switch mode {
	case "declared":
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	case "undeclared":
		w.Write(body)
	case "pieces":
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for _, n := range []int{1000, 9000, 3, 70000} {
			n = min(n, len(body))
			w.Write(body[:n])
			body = body[n:]
		}
		w.Write(body)
	}
}

// countConn is a wrapper that names the connection under it (as the
// node's rejects watcher does) and counts the bytes written through it.
type countConn struct {
	net.Conn
	wrote *atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.wrote.Add(int64(len(p)))
	return c.Conn.Write(p)
}

func (c *countConn) NetConn() net.Conn { return c.Conn }

type countListener struct {
	net.Listener
	wrote *atomic.Int64
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countConn{c, l.wrote}, nil
}

// serveOn serves h on ln with h1.Server until the test ends.
func serveOn(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &h1.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// checkAllSizes asks for every size and framing on one keep-alive
// connection and compares each answer byte for byte.
func checkAllSizes(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for _, mode := range []string{"declared", "undeclared", "pieces"} {
		for _, size := range bodySizes {
			for _, method := range []string{"GET", "HEAD"} {
				path := fmt.Sprintf("/%s/%d", mode, size)
				fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: a.example\r\n\r\n", method, path)
				resp, err := http.ReadResponse(br, &http.Request{Method: method})
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("%s %s: body: %v", method, path, err)
				}
				want := patterned(size, 7)
				if method == "HEAD" {
					want = nil
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s %s: %d bytes, want %d (first difference at %d)", method, path, len(got), len(want), firstDiff(got, want))
				}
				if resp.Close {
					t.Fatalf("%s %s: connection not kept", method, path)
				}
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestBodyIntactEverySize: answers of every size class, declared, chunked
// or written in pieces, arrive whole and in order over a real socket, and
// the connection carries the next request — on a bare TCP connection, on
// one under a wrapper (the writev goes to the TCP connection under it),
// and over TLS (no writev).
func TestBodyIntactEverySize(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		ln := listen(t)
		serveOn(t, ln, http.HandlerFunc(bodyHandler))
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		checkAllSizes(t, c)
	})
	t.Run("wrapped", func(t *testing.T) {
		var wrote atomic.Int64
		ln := listen(t)
		serveOn(t, countListener{ln, &wrote}, http.HandlerFunc(bodyHandler))
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		checkAllSizes(t, c)
	})
	t.Run("tls", func(t *testing.T) {
		ts := httptest.NewUnstartedServer(nil)
		ts.StartTLS()
		defer ts.Close()
		ln := listen(t)
		serveOn(t, tls.NewListener(ln, ts.TLS), http.HandlerFunc(bodyHandler))
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		checkAllSizes(t, c)
	})
}

// TestLargeBodyOneWriteOnTCP: a 100 KiB declared answer (a cache hit)
// goes around the wrapper in one writev — its head and body are not
// written through the wrapper — yet arrives intact. (Proves the path the
// other tests exercise is taken.)
func TestLargeBodyOneWriteOnTCP(t *testing.T) {
	var wrote atomic.Int64
	ln := listen(t)
	serveOn(t, countListener{ln, &wrote}, http.HandlerFunc(bodyHandler))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /declared/%d HTTP/1.1\r\nHost: a.example\r\n\r\n", 100<<10)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, patterned(100<<10, 7)) {
		t.Fatalf("body: %d bytes, %v", len(got), err)
	}
	if n := wrote.Load(); n != 0 {
		t.Errorf("%d bytes written through the wrapper, want 0 (head and body in one writev)", n)
	}
}

// TestWrappedTLSConnNotWrittenAround: a wrapper over a *tls.Conn that
// does not show the TLS state (so the server takes the connection for
// plain) must still never have the answer written to the TCP connection
// under TLS — plaintext a TLS client would reject, or a body sent
// unencrypted. The client reads every size intact over TLS.
func TestWrappedTLSConnNotWrittenAround(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	defer ts.Close()
	var wrote atomic.Int64
	ln := listen(t)
	serveOn(t, countListener{tls.NewListener(ln, ts.TLS), &wrote}, http.HandlerFunc(bodyHandler))
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkAllSizes(t, c)
	if wrote.Load() == 0 {
		t.Error("nothing written through the wrapper")
	}
}

// smallBuffers sets tiny kernel buffers on a socket: a receive window of a
// few KiB, so that a large write is taken in many small parts.
func smallBuffers(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
		tc.SetWriteBuffer(4096)
	}
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		smallBuffers(c)
	}
	return c, err
}

// TestSlowReaderSmallWindow: with small send and receive buffers on both
// ends and a client reading 512 bytes at a time, a large answer is taken
// in many partial writes and still arrives whole, and the connection
// serves the next request.
func TestSlowReaderSmallWindow(t *testing.T) {
	ln := listen(t)
	serveOn(t, smallBufListener{ln}, http.HandlerFunc(bodyHandler))
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(c, 512)
	for _, path := range []string{"/declared/2097152", "/undeclared/300000", "/declared/100"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a.example\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var got bytes.Buffer
		buf := make([]byte, 512)
		_, err = io.CopyBuffer(&got, struct{ io.Reader }{resp.Body}, buf)
		resp.Body.Close()
		size, _ := strconv.Atoi(path[strings.LastIndexByte(path, '/')+1:])
		if err != nil || !bytes.Equal(got.Bytes(), patterned(size, 7)) {
			t.Fatalf("%s: %d bytes, %v; want %d intact", path, got.Len(), err, size)
		}
	}
}

// TestClientGoneMidBodyCutsConnection: a client that resets its
// connection after the first 64 KiB of an 8 MiB answer: the handler's
// Write fails, and the server closes the connection — it never goes on
// as if the answer had been whole.
func TestClientGoneMidBodyCutsConnection(t *testing.T) {
	const size = 8 << 20
	body := patterned(size, 3)
	writeErr := make(chan error, 1)
	closed := make(chan struct{})
	ln := listen(t)
	srv := &h1.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			_, err := w.Write(body)
			writeErr <- err
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateClosed {
				close(closed)
			}
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(smallBufListener{ln}) }()
	defer func() { srv.Close(); <-done }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0) // a reset, as a client that crashed
	c.Close()
	select {
	case err := <-writeErr:
		if err == nil {
			t.Fatal("Write of the body reported success after the client reset")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write did not return after the client reset")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept the connection after a failed body write")
	}
}

// TestWriteDeadlineMidBody: a client that stops reading: the handler's
// write deadline ends the 8 MiB write with a timeout, and the client,
// reading on, gets fewer bytes than the Content-Length, then the end of
// the connection (never a next answer that would make the cut body look
// whole).
func TestWriteDeadlineMidBody(t *testing.T) {
	const size = 8 << 20
	body := patterned(size, 5)
	writeErr := make(chan error, 1)
	ln := listen(t)
	serveOn(t, smallBufListener{ln}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, err := w.Write(body)
		writeErr <- err
	}))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	smallBuffers(c)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
	select {
	case err := <-writeErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write: %v, want the deadline's timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write deadline did not end the body's write")
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil || len(got) >= size {
		t.Fatalf("read %d of %d bytes, %v: a cut body must end in an error", len(got), size, err)
	}
	if !bytes.Equal(got, body[:len(got)]) {
		t.Fatalf("the %d bytes read differ from the body's start", len(got))
	}
}
