package h2srv

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestClosedWithOpenStreamsNotKeptByIdleTimer: a client that closes its
// connection while a stream is open leaves nothing armed behind it. x/net
// stops the idle timer before closing the streams, and closing the last
// stream re-armed it: every such connection (its buffers, HPACK tables,
// the streams' writers) stayed in memory for IdleTimeout after it closed.
// Edge's timer retiring idle handler goroutines is stopped too, and the
// goroutines are retired.
func TestClosedWithOpenStreamsNotKeptByIdleTimer(t *testing.T) {
	scs := make(chan *serverConn, 1)
	testHookGetServerConn = func(sc *serverConn) { scs <- sc }
	t.Cleanup(func() { testHookGetServerConn = nil })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	started := make(chan struct{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-r.Context().Done() // open until the connection goes
		})
		s := &Server{IdleTimeout: time.Hour}
		s.ServeConn(c, &ServeConnOpts{Handler: h, BaseConfig: &http.Server{}})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	sendGet(t, fr, 1, "/open")
	<-started
	c.Close()
	<-served
	sc := <-scs
	if sc.idleTimer.Stop() {
		t.Fatal("the idle timer is armed after the connection closed: it keeps the connection for IdleTimeout")
	}
	// The same for the timer that retires idle handler goroutines
	// (noteNoStreams), armed when the last stream closed.
	if sc.retireTimer == nil {
		t.Fatal("closing the last stream armed no retire timer: the test measures nothing")
	}
	if sc.retireTimer.Stop() {
		t.Fatal("the retire timer is armed after the connection closed: it keeps the connection for workerLinger")
	}
	// And the connection's handler goroutines were told to end with it,
	// not left waiting for a request that cannot come.
	if !sc.idleClosed {
		t.Fatal("the connection ended without retiring its idle handler goroutines")
	}
}
