package node

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/edge-cdn/edge/internal/testutil"

	"golang.org/x/net/http2"
)

// TestH2IdleConnectionsKeepNoHandlerGoroutines: the HTTP/2 server keeps
// handler goroutines per connection for its next requests, but not once
// the connection has had no stream open for a while (h2srv's
// workerLinger, 1 s): clients that once had 8 proxied
// requests in flight on each of 20 connections, then keep them idle (up
// to limits.idle_timeout), hold no handler goroutine and no stack.
// (Found by review: before, 8 goroutines per idle connection stayed.)
func TestH2IdleConnectionsKeepNoHandlerGoroutines(t *testing.T) {
	const conns, streams = 20, 8
	var arrived atomic.Int64
	var release atomic.Pointer[chan struct{}] // the current connection's requests wait on it
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch := *release.Load()
		arrived.Add(1)
		<-ch // every request of a connection in flight at once
		io.WriteString(w, "proxied")
	}))
	t.Cleanup(origin.Close)
	n := runTestNode(t, "", map[string]string{"p.yaml": fmt.Sprintf(
		"hostnames: [p.example]\norigins: [{url: %s}]\ntls: {certificate: p}\n", origin.URL)})
	workers := func() int {
		buf := make([]byte, 16<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return bytes.Count(buf, []byte("h2srv.(*serverConn).handlerWorker("))
	}
	before := workers()
	for i := range conns {
		ch := make(chan struct{})
		release.Store(&ch)
		h := dialH2(t, n.addrs.HTTPS, "p.example")
		for range streams {
			h.send("p.example", "GET", "/x", nil)
		}
		want := int64((i + 1) * streams)
		testutil.WaitFor(t, "the connection's requests at the origin", func() bool { return arrived.Load() == want })
		if got := workers() - before; got < streams {
			t.Fatalf("%d requests in flight on %d handler goroutines: the test measures nothing", streams, got)
		}
		close(ch)
		for left := streams; left > 0; {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
				left--
			}
		}
	}
	testutil.WaitFor(t, "no handler goroutine on idle connections", func() bool { return workers() <= before },
		func() string { return strconv.Itoa(workers()-before) + " left" })
}
