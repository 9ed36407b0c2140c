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

	"github.com/edge-cdn/edge/internal/h2srv"
	"github.com/edge-cdn/edge/internal/testutil"

	"golang.org/x/net/http2"
)

// handlerWorkers counts the HTTP/2 handler goroutines: all of them, and
// those waiting for the connection's next request.
func handlerWorkers() (all, idle int) {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte("h2srv.(*serverConn).handlerWorker(")) {
			continue
		}
		all++
		if !bytes.Contains(g, []byte("h2srv.(*serverConn).runHandler(")) {
			idle++
		}
	}
	return all, idle
}

// heldOrigin is an origin whose requests wait until the test releases
// them, one at a time (release) or all (releaseAll).
type heldOrigin struct {
	*httptest.Server
	arrived atomic.Int64
	gate    chan struct{}
}

func newHeldOrigin(t *testing.T) *heldOrigin {
	o := &heldOrigin{gate: make(chan struct{}, 1000)}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.arrived.Add(1)
		<-o.gate
		io.WriteString(w, "proxied")
	}))
	t.Cleanup(func() { close(o.gate); o.Close() })
	return o
}

func (o *heldOrigin) release(n int) {
	for range n {
		o.gate <- struct{}{}
	}
}

// readEnds reads frames until n streams ended and returns their ids.
func (h *h2Conn) readEnds(n int) []uint32 {
	h.t.Helper()
	var ids []uint32
	for len(ids) < n {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			ids = append(ids, d.StreamID)
		}
	}
	return ids
}

// TestH2NextBatchReusesHandlerGoroutines: a client that sends its next
// requests as soon as its last answers came (h2load; a page's next
// subresources) finds the connection's handler goroutines still waiting,
// although the connection had no stream open in between: its requests
// run on them, no goroutine is started (each new one grows its stack
// again, copying it). Before, the goroutines were retired the moment the
// last stream closed: bench h2-small started 67,524 goroutines for
// 72,000 requests.
func TestH2NextBatchReusesHandlerGoroutines(t *testing.T) {
	const streams = 10
	o := newHeldOrigin(t)
	n := runTestNode(t, "", map[string]string{"p.yaml": fmt.Sprintf(
		"hostnames: [p.example]\norigins: [{url: %s}]\ntls: {certificate: p}\n", o.URL)})
	h := dialH2(t, n.addrs.HTTPS, "p.example")
	beforeAll, _ := handlerWorkers()
	batch := func(round int) {
		for range streams {
			h.send("p.example", "GET", "/x", nil)
		}
		testutil.WaitFor(t, "the batch at the origin", func() bool { return o.arrived.Load() == int64(round*streams) })
		o.release(streams)
		h.readEnds(streams)
	}
	batch(1)
	testutil.WaitFor(t, "the handler goroutines waiting for the next request", func() bool {
		all, idle := handlerWorkers()
		return all-beforeAll == streams && idle-beforeAll >= streams
	}, func() string { all, idle := handlerWorkers(); return fmt.Sprintf("%d, %d idle", all-beforeAll, idle) })
	started := h2srv.HandlerGoroutinesStarted()
	for round := 2; round <= 4; round++ {
		batch(round)
		testutil.WaitFor(t, "the handler goroutines waiting again", func() bool {
			_, idle := handlerWorkers()
			return idle-beforeAll >= streams
		})
	}
	if got := h2srv.HandlerGoroutinesStarted() - started; got != 0 {
		t.Errorf("%d handler goroutines started for 3 more batches of %d on the same connection; want 0", got, streams)
	}
}

// TestH2SlowStreamAfterBurstKeepsBoundedWorkers: a client that opens many
// streams at once, lets all but one finish and keeps that one open (a
// slow origin answer, a long poll) keeps the connection from ever having
// no stream open, so its idle handler goroutines are never retired for
// idleness: at most maxIdleWorkers of them stay, the others end with
// their request. Once the last stream closes, none stays.
func TestH2SlowStreamAfterBurstKeepsBoundedWorkers(t *testing.T) {
	const streams = 60
	o := newHeldOrigin(t)
	n := runTestNode(t, "", map[string]string{"p.yaml": fmt.Sprintf(
		"hostnames: [p.example]\norigins: [{url: %s}]\ntls: {certificate: p}\n", o.URL)})
	h := dialH2(t, n.addrs.HTTPS, "p.example")
	before, _ := handlerWorkers()
	for range streams {
		h.send("p.example", "GET", "/x", nil)
	}
	testutil.WaitFor(t, "the burst at the origin", func() bool { return o.arrived.Load() == streams })
	if all, _ := handlerWorkers(); all-before != streams {
		t.Fatalf("%d handler goroutines for %d requests in flight: the test measures nothing", all-before, streams)
	}
	o.release(streams - 1)
	h.readEnds(streams - 1)
	wantAll := 1 + h2srv.MaxIdleHandlers
	testutil.WaitFor(t, "the goroutines past the bound to end", func() bool {
		all, _ := handlerWorkers()
		return all-before <= wantAll
	}, func() string {
		all, idle := handlerWorkers()
		return fmt.Sprintf("%d, %d idle", all-before, idle-before)
	})
	all, idle := handlerWorkers()
	if all-before != wantAll || idle-before != wantAll-1 {
		t.Errorf("%d handler goroutines, %d idle; want %d, %d", all-before, idle-before, wantAll, wantAll-1)
	}
	o.release(1)
	h.readEnds(1)
	testutil.WaitFor(t, "no handler goroutine once the connection is idle", func() bool {
		all, _ := handlerWorkers()
		return all <= before
	}, func() string { all, _ := handlerWorkers(); return strconv.Itoa(all-before) + " left" })
}
