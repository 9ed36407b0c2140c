//go:build linux

package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// rawLog is a writeLog whose connections also offer their socket
// (syscall.Conn), as a *net.TCPConn does: the writes made through Write
// are logged, those made on the socket directly (internal/h1's write
// with the wait for the next request) are not.
type rawLog struct{ writeLog }

type rawLoggedConn struct {
	*loggedConn
	sc syscall.Conn
}

func (c rawLoggedConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

func (l *rawLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return rawLoggedConn{&loggedConn{Conn: c, l: &l.writeLog}, c.(syscall.Conn)}, nil
}

func rawFront(t *testing.T, h http.Handler) (*rawLog, *tlsFront, string) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &rawLog{writeLog{Listener: inner}}
	r := &rejects{log: zap.NewNop(), count: func(string, string) {}}
	_, f, _ := testTLSFrontOn(t, rl, h, 10*time.Second, func(f *tlsFront) { f.wrap = r.tlsConn })
	return rl, f, inner.Addr().String()
}

// TestTLSFrontKeepAliveAnswersWrittenWithTheWait: on a keep-alive HTTPS
// connection each answer's last records are written by the front with
// its wait for the next request (on the socket, not through the
// connection's Write), and every answer arrives whole, whatever its size
// (its body partly written before, through Write); the connection's last
// answer still leaves through Write, with the close_notify alert, in one
// write. Records kept and never written, written twice or out of order
// fail here (the client's TLS authenticates each record in sequence).
func TestTLSFrontKeepAliveAnswersWrittenWithTheWait(t *testing.T) {
	t.Parallel()
	rl, _, addr := rawFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Write(recordBody(n))
	}))
	c := holdDial(t, addr)
	br := bufio.NewReader(c)
	sizes := []int{10, 100, 2048, 2049, 8000, 8192, 9000, 16384, 20000, 100 << 10, 5, 0, 300 << 10, 7}
	for i := 0; i < 3; i++ {
		for _, n := range sizes {
			io.WriteString(c, "GET /?n="+strconv.Itoa(n)+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%d: %v", n, err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(b, recordBody(n)) {
				t.Fatalf("%d: %d bytes, %v", n, len(b), err)
			}
		}
	}
	handshake := len(rl.snapshot())
	io.WriteString(c, "GET /?n=10 HTTP/1.1\r\nHost: a.example\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
	}
	if got := len(rl.snapshot()); got != handshake {
		t.Fatalf("a small keep-alive answer made %d writes through the connection; want none (written with the wait)", got-handshake)
	}
	io.WriteString(c, "GET /?n=10 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); !bytes.Equal(b, recordBody(10)) || !resp.Close {
		t.Fatalf("last answer %q close=%v", b, resp.Close)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the last answer: %d, %v; want the close_notify's io.EOF", n, err)
	}
	writes := rl.snapshot()[handshake:]
	if len(writes) != 1 || tlsRecords(writes[0]) != 2 {
		t.Errorf("the last answer: writes %v records; want one write of 2 (the answer, the close_notify)", recordCounts(writes))
	}
}

// batchConn is a client connection whose writes, while batching, wait
// for flush: what several Writes make (TLS records) leaves in one write.
type batchedConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
}

func (b *batchedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

func (b *batchedConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	_, err := b.Conn.Write(b.buf)
	b.buf = nil
	return err
}

// TestTLSFrontPipelinedRecordsAnswered: requests pipelined in records of
// their own that arrive together (TLS may read the second record with the
// first, so the socket under it has nothing left to wake the wait for the
// next request) are all answered, in order.
func TestTLSFrontPipelinedRecordsAnswered(t *testing.T) {
	t.Parallel()
	_, _, addr := rawFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answer "+r.URL.Path)
	}))
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	bc := &batchedConn{Conn: raw}
	c := tls.Client(bc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for round := 0; round < 3; round++ {
		bc.mu.Lock()
		bc.batching = true
		bc.mu.Unlock()
		for i := 0; i < 4; i++ {
			io.WriteString(c, "GET /"+strconv.Itoa(round)+"-"+strconv.Itoa(i)+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
		}
		if err := bc.flush(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			t0 := time.Now()
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d, answer %d: %v", round, i, err)
			}
			t.Logf("round %d answer %d after %v", round, i, time.Since(t0))
			b, _ := io.ReadAll(resp.Body)
			if want := "answer /" + strconv.Itoa(round) + "-" + strconv.Itoa(i); string(b) != want {
				t.Fatalf("got %q; want %q", b, want)
			}
		}
	}
}

// TestTLSFrontShutdownEndsTheWait: a keep-alive HTTPS connection waiting
// for its next request (its answer written with the wait) is idle:
// Shutdown closes it at once and returns, and the client reads the end.
func TestTLSFrontShutdownEndsTheWait(t *testing.T) {
	t.Parallel()
	_, f, addr := rawFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	c := holdDial(t, addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- f.Shutdown(ctx)
	}()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v (the waiting connection was not closed)", err)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("after Shutdown: %d, %v; want the connection's end", n, err)
	}
}
