package node

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// writeLog is a listener whose connections record each Write the server
// makes on them (the bytes under TLS).
type writeLog struct {
	net.Listener
	mu     sync.Mutex
	writes [][]byte
	closed int // connections closed by the server
}

func (l *writeLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, l: l}, nil
}

func (l *writeLog) snapshot() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.writes...)
}

type loggedConn struct {
	net.Conn
	l *writeLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, bytes.Clone(p))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *loggedConn) Close() error {
	c.l.mu.Lock()
	c.l.closed++
	c.l.mu.Unlock()
	return c.Conn.Close()
}

func (l *writeLog) closedConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// tlsRecords counts the TLS records in b (each: 5-byte header with its
// length), or -1 when b does not end at a record's end.
func tlsRecords(b []byte) int {
	n := 0
	for len(b) > 0 {
		if len(b) < 5 {
			return -1
		}
		l := int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+l {
			return -1
		}
		b = b[5+l:]
		n++
	}
	return n
}

// holdFront is a tlsFront as the node runs it (the rejects watcher wraps
// its HTTP/1.1 connections) on a listener that logs the server's writes.
func holdFront(t *testing.T, h http.Handler, opts ...func(*tlsFront)) (*writeLog, string) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := &writeLog{Listener: inner}
	r := &rejects{log: zap.NewNop(), count: func(string, string) {}}
	testTLSFrontOn(t, wl, h, 10*time.Second, append(opts, func(f *tlsFront) { f.wrap = r.tlsConn })...)
	return wl, inner.Addr().String()
}

func holdDial(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestTLSFrontLastAnswerLeavesWithCloseNotify: the answer to a request
// the connection closes after and TLS's close_notify alert leave in one
// write (two records), after the handshake's one; the client reads the
// whole answer, then the alert (a clean end, not a cut).
func TestTLSFrontLastAnswerLeavesWithCloseNotify(t *testing.T) {
	t.Parallel()
	wl, addr := holdFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the last answer")
	}))
	c := holdDial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "the last answer" || !resp.Close {
		t.Fatalf("%q close=%v", b, resp.Close)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the answer: %d, %v; want the close_notify's io.EOF", n, err)
	}
	writes := wl.snapshot()
	if len(writes) != 2 {
		t.Fatalf("%d writes (%v records); want 2: the handshake's, then the answer with the alert", len(writes), recordCounts(writes))
	}
	if n := tlsRecords(writes[1]); n != 2 {
		t.Errorf("the last write holds %d records; want 2 (the answer, the close_notify)", n)
	}
}

func recordCounts(writes [][]byte) []int {
	var n []int
	for _, w := range writes {
		n = append(n, tlsRecords(w))
	}
	return n
}

// TestTLSFrontKeepAliveAnswerNotHeld: an answer on a connection that stays
// open is written at once (a hold would keep it until the connection
// closes: the client would wait for it until the idle timeout).
func TestTLSFrontKeepAliveAnswerNotHeld(t *testing.T) {
	t.Parallel()
	wl, addr := holdFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answer "+r.URL.Path)
	}))
	c := holdDial(t, addr)
	br := bufio.NewReader(c)
	for _, p := range []string{"/1", "/2"} {
		io.WriteString(c, "GET "+p+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v (the answer of an open connection was held)", p, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "answer "+p || resp.Close {
			t.Fatalf("%s: %q close=%v", p, b, resp.Close)
		}
	}
	if got := len(wl.snapshot()); got != 3 {
		t.Errorf("%d writes; want 3: the handshake's and one per answer", got)
	}
}

// TestTLSFrontLargeLastAnswerWhole: a last answer larger than a hold is
// written whole and in order, then the close_notify.
func TestTLSFrontLargeLastAnswerWhole(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("0123456789abcdef", 100<<10/16)
	_, addr := holdFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "102400")
		io.WriteString(w, body)
	}))
	c := holdDial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != body {
		t.Fatalf("%d bytes, %v; want the %d sent", len(b), err, len(body))
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the answer: %d, %v; want the close_notify's io.EOF", n, err)
	}
}

// TestTLSFrontHeldAnswerSentBeforeHalfCloseWait: when the front half-closes
// and waits for the client (a request body it did not read, as Go's
// server does, 500 ms), the held answer leaves with the alert at the
// half-close, not at the close after the wait (nor never).
func TestTLSFrontHeldAnswerSentBeforeHalfCloseWait(t *testing.T) {
	t.Parallel()
	wl, addr := holdFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "not read")
	}))
	c := holdDial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 100000000\r\n\r\nabc")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "not read" || !resp.Close {
		t.Fatalf("%q close=%v", b, resp.Close)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the answer: %d, %v; want the close_notify's io.EOF", n, err)
	}
	if n := wl.closedConns(); n != 0 {
		t.Errorf("the answer and its alert came once the server closed the connection, after the half-close's wait")
	}
}
