//go:build linux

package node

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// tcpKeep is a listener that keeps the *net.TCPConn of each connection it
// accepts, unwrapped, so that a test can read the server socket's options.
type tcpKeep struct {
	net.Listener
	conns chan *net.TCPConn
}

func (l *tcpKeep) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	select {
	case l.conns <- tc:
	default:
	}
	return tc, nil
}

func corked(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	raw.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitUncorked waits until the server socket is uncorked after what. The
// reader got the whole answer, whose last partial segment the cork held
// until the uncork, so that is at once; the wait covers the one exception,
// the kernel's 200 ms cork timer sending it while the writer was
// descheduled before its uncork (a loaded machine). Left corked, the
// socket stays so, and the wait fails.
func waitUncorked(t *testing.T, server *net.TCPConn, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for v := corked(t, server); v != 0; v = corked(t, server) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s the socket stays corked (TCP_CORK %d)", what, v)
		}
		time.Sleep(time.Millisecond)
	}
}

// corkFront serves h on the node's TLS front (wrapped as the HTTPS port
// wraps its connections, so that its writes cork) and returns a client
// connection to it and the server's side of that connection.
func corkFront(t *testing.T, h http.Handler) (net.Conn, *net.TCPConn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kl := &tcpKeep{Listener: inner, conns: make(chan *net.TCPConn, 1)}
	r := &rejects{log: zap.NewNop(), count: func(string, string) {}}
	testTLSFrontOn(t, kl, h, 10*time.Second, func(f *tlsFront) { f.wrap = r.tlsConn })
	c := holdDial(t, inner.Addr().String())
	select {
	case server := <-kl.conns:
		return c, server
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
		return nil, nil
	}
}

// TestTLSFrontLargeAnswersWholeAndUncorked: answers of several TLS
// records leave corked (their records in as few segments as the kernel
// makes), and every one arrives whole, byte for byte, on a connection
// that stays open; once written, the socket is uncorked again (left
// corked, a keep-alive answer's last segment would wait for the kernel's
// 200 ms timer, and every small answer after it too).
func TestTLSFrontLargeAnswersWholeAndUncorked(t *testing.T) {
	t.Parallel()
	body := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + i*7%26)
		}
		return b
	}
	c, server := corkFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(body(n))
	}))
	br := bufio.NewReader(c)
	for _, n := range []int{16<<10 - 1, 16 << 10, 16<<10 + 1, 32<<10 + 1, 64<<10 + 3, 100 << 10, 1<<20 + 5, 10} {
		io.WriteString(c, "GET /?n="+strconv.Itoa(n)+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%d: %v", n, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(b, body(n)) {
			t.Fatalf("%d: %d bytes, %v; want the %d sent", n, len(b), err, n)
		}
		waitUncorked(t, server, fmt.Sprintf("the %d-byte answer", n))
	}
}

// TestBatchConnLargeWritesWholeAndUncorked: the HTTP/2 writer's batches
// of many records (large DATA frames) go out corked, arrive whole and in
// order, and the socket is uncorked after each.
func TestBatchConnLargeWritesWholeAndUncorked(t *testing.T) {
	sc, cc := tlsPair(t, false)
	server := sc.NetConn().(*holdConn).Conn.(*net.TCPConn)
	b := newBatchConn(sc)
	t.Cleanup(func() { b.Close() })
	var want bytes.Buffer
	for i, n := range []int{16<<10 + 1, 100 << 10, 10, 64<<10 + 7} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		want.Write(p)
		if _, err := b.Write(p); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, n)
		cc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(cc, got); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("write %d (%d bytes): read %v, equal %v", i, n, err, bytes.Equal(got, p))
		}
		waitUncorked(t, server, fmt.Sprintf("write %d", i))
	}
}

// TestTLSFrontStreamedPiecesWholeAndUncorked: answers written in pieces
// whose records the front writes corked (a piece of more than two records
// with the head or a chunk's size line before it) arrive whole, and the
// socket is uncorked once each is written, also when a piece's whole
// records make a corked write of their own inside the piece's cork.
func TestTLSFrontStreamedPiecesWholeAndUncorked(t *testing.T) {
	t.Parallel()
	c, server := corkFront(t, http.HandlerFunc(piecesHandler))
	br := bufio.NewReader(c)
	for _, q := range []string{"32768,32768,32768,4096", "32768,32768,32768,4096&cl=1", "1,102400", "100,65536,7", "32769&flush=1", "10,1048576&cl=1", "5"} {
		_, b, want, err := getPieces(t, c, br, "/?p="+q, strings.Split(q, "&")[0])
		if err != nil || !bytes.Equal(b, recordBody(want)) {
			t.Fatalf("%s: %d bytes, %v; want the %d sent", q, len(b), err, want)
		}
		waitUncorked(t, server, "the answer "+q)
	}
}

// TestCorkNested: a cork inside a cork (a piece's whole records written
// corked within the piece's cork) leaves the socket corked until the
// outer one ends; an uncork without a cork does nothing.
func TestCorkNested(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	h := &holdConn{Conn: tc}
	steps := []struct {
		on   bool
		want int
	}{{false, 0}, {true, 1}, {true, 1}, {false, 1}, {false, 0}, {false, 0}, {true, 1}, {false, 0}}
	for i, s := range steps {
		h.cork(s.on)
		if got := corked(t, tc); got != s.want {
			t.Fatalf("step %d (cork %v): TCP_CORK %d; want %d", i, s.on, got, s.want)
		}
	}
}

// corkLog is a listener whose connections note, for each write the server
// makes, whether the socket was corked then; they offer their socket
// (syscall.Conn) as a *net.TCPConn does, so that the front corks it.
type corkLog struct {
	net.Listener
	mu     sync.Mutex
	writes []corkedWriteNote
}

type corkedWriteNote struct {
	n      int
	corked bool
}

type corkLogConn struct {
	*net.TCPConn
	l *corkLog
}

func (l *corkLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return corkLogConn{c.(*net.TCPConn), l}, nil
}

func (c corkLogConn) Write(p []byte) (int, error) {
	raw, err := c.TCPConn.SyscallConn()
	if err != nil {
		return 0, err
	}
	v := -1
	raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK) })
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, corkedWriteNote{len(p), v == 1})
	c.l.mu.Unlock()
	return c.TCPConn.Write(p)
}

func (l *corkLog) since(i int) []corkedWriteNote {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]corkedWriteNote(nil), l.writes[i:]...)
}

// TestTLSFrontLargeAnswerEndsCorked: the records of a large answer of a
// declared length, on a connection that stays open, are all written
// while the socket is corked, its last bytes included (not kept in the
// write buffer for a final flush after the uncork, a segment of its own);
// the answer arrives whole and the socket is uncorked after it.
func TestTLSFrontLargeAnswerEndsCorked(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &corkLog{Listener: inner}
	r := &rejects{log: zap.NewNop(), count: func(string, string) {}}
	testTLSFrontOn(t, cl, http.HandlerFunc(piecesHandler), 10*time.Second, func(f *tlsFront) { f.wrap = r.tlsConn })
	c := holdDial(t, inner.Addr().String())
	br := bufio.NewReader(c)
	for _, q := range []string{"102400&cl=1", "50000,52400&cl=1", "1000,101400&cl=1"} {
		before := len(cl.since(0))
		io.WriteString(c, "GET /?p="+q+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if b, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(b, recordBody(100<<10)) {
			t.Fatalf("%s: %d bytes, %v", q, len(b), err)
		}
		for i, w := range cl.since(before) {
			if !w.corked {
				t.Fatalf("%s: write %d (%d bytes) of the answer was made uncorked: %v", q, i, w.n, cl.since(before))
			}
		}
	}
}
