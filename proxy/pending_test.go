package proxy

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestPendingIgnoresChunkFraming: pending, which lets a stream skip a flush
// because more of the body has arrived, does not count a chunk's framing
// (a CRLF and the next chunk's size line: the next read would still wait
// on the origin), and counts a body's worth of bytes once they arrived.
func TestPendingIgnoresChunkFraming(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pending counts socket bytes on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	p := &connPool{dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}}
	c, err := p.dialConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	origin, ok := <-accepted
	if !ok {
		t.Fatal("no connection accepted")
	}
	defer origin.Close()
	arrived := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never arrived", what)
			}
		}
	}
	if c.pending() {
		t.Fatal("pending on a quiet connection")
	}
	framing := "\r\n8000;ext=" + strings.Repeat("e", 4000) + "\r\n"
	origin.Write([]byte(framing))
	arrived("the framing", func() bool { c.readInqNow(); return c.inq == len(framing) })
	if c.pending() {
		t.Errorf("%d bytes of chunk framing counted as body waiting", len(framing))
	}
	origin.Write([]byte(strings.Repeat("b", pendingMin)))
	arrived("the body bytes", c.pending)
}

// readInqNow runs readInq on c's socket.
func (c *upConn) readInqNow() { _ = c.raw.Read(c.inqFn) }
