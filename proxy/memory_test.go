package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
)

// newCachedEdge is an edge with a cache in front of origin url for host
// c.example, with extra property lines.
func newCachedEdge(t *testing.T, url string, extra ...string) *edge {
	t.Helper()
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return newEdge(t, Config{Cache: c}, map[string]string{
		"c.yaml": prop("c.example", "{url: "+url+"}", append([]string{"cache: {enabled: true}"}, extra...)...)})
}

// idleConns is the number of idle connections the edge keeps to its
// property's first origin.
func (e *edge) idleConns() int {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	for _, st := range e.srv.built {
		p := st.origins[0].pool
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.idle)
	}
	return 0
}

// TestKeepAliveStrayBytesNotCached: an origin sends a second response on a
// keep-alive connection after its first one ended, timed to arrive after
// the next request took the connection (a body sent 300 ms–1 s late once
// reached the next request and was cached: POISONED). A fill does not take
// a connection idle for less than fillMinIdle, and a fill whose response is
// followed by more bytes on its connection is never stored.
func TestKeepAliveStrayBytesNotCached(t *testing.T) {
	const (
		first = "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nhi"
		stray = "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 8\r\n\r\nPOISONED"
		good  = "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 4\r\n\r\ngood"
	)
	for _, tc := range []struct {
		name    string
		minIdle time.Duration
	}{
		{"a fill takes no freshly idle connection", time.Hour},
		{"stray bytes after a fill's response", 0}, // the connection is reused: the second defence
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(d time.Duration) { fillMinIdle = d }(fillMinIdle)
			fillMinIdle = tc.minIdle
			var mu sync.Mutex
			var firstConn net.Conn
			o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
				switch n {
				case 1:
					mu.Lock()
					firstConn = c
					mu.Unlock()
					io.WriteString(c, first)
				case 2:
					// The late response reaches the first connection just
					// before this request's answer is written: on the same
					// connection, it is read as this request's response.
					mu.Lock()
					fc := firstConn
					mu.Unlock()
					if fc == c {
						io.WriteString(c, stray+good)
					} else {
						io.WriteString(fc, stray)
						io.WriteString(c, good)
					}
				default:
					io.WriteString(c, good)
				}
			})
			e := newCachedEdge(t, o.url())
			if code, body, err := e.get("c.example", "/a"); err != nil || code != 200 || body != "hi" {
				t.Fatalf("first: %d %q %v", code, body, err)
			}
			for deadline := time.Now().Add(5 * time.Second); e.idleConns() == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the first connection never went back to the pool")
				}
			}
			_, body, _ := e.get("c.example", "/b") // cut (an error) or good, never stored when poisoned
			if tc.minIdle > 0 && body != "good" {
				t.Fatalf("the fill got %q, want the origin's answer", body)
			}
			for i := range 2 {
				code, body, err := e.get("c.example", "/b")
				if err != nil || code != 200 || body != "good" {
					t.Fatalf("request %d for /b: %d %q %v: the stray response was stored", i, code, body, err)
				}
			}
			if tc.minIdle == 0 && o.conns.Load() != 2 {
				t.Fatalf("%d origin connections: the fill did not reuse the first one, so the test proved nothing", o.conns.Load())
			}
		})
	}
}

// TestStalledOriginBodyEndsFill: an origin that stops sending mid-body of
// a response being stored ends the fill after timeouts.body_idle: the
// clients that followed it are cut (never handed a short body as whole),
// and the key is free again for the next request (three clients once hung
// on such a fill forever).
func TestStalledOriginBodyEndsFill(t *testing.T) {
	stop := make(chan struct{})
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		if n == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 100\r\n\r\nonly ten b")
			<-stop // stalls until the test ends
			c.Close()
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 4\r\n\r\ngood")
	})
	e := newCachedEdge(t, o.url(), "timeouts: {body_idle: 200ms}")
	t.Cleanup(func() { close(stop) }) // first: the edge's and the origin's cleanups wait for it
	var wg sync.WaitGroup
	results := make([]string, 3)
	for i := range results {
		wg.Go(func() {
			code, body, err := e.get("c.example", "/s")
			switch {
			case err != nil:
				results[i] = "cut"
			case code == 200 && body == "good":
				results[i] = "good" // came after the fill had ended: a new one
			default:
				results[i] = "bad: " + body
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("clients still hang on a stalled fill after 10s (body_idle 200ms)")
	}
	cut := 0
	for i, r := range results {
		if r != "cut" && r != "good" {
			t.Fatalf("client %d: %s", i, r)
		}
		if r == "cut" {
			cut++
		}
	}
	if cut == 0 {
		t.Fatal("nobody followed the stalled fill")
	}
	if code, body, err := e.get("c.example", "/s"); err != nil || code != 200 || body != "good" {
		t.Fatalf("after the stall: %d %q %v (the key is not free)", code, body, err)
	}
}

// TestBodyIdleNotOnStreamedThrough: a response that is not stored (server-
// sent events) may pause longer than timeouts.body_idle: its client gets
// every event.
func TestBodyIdleNotOnStreamedThrough(t *testing.T) {
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for i := range 3 {
			io.WriteString(c, "9\r\ndata: "+string(rune('a'+i))+"\n\n\r\n")
			time.Sleep(150 * time.Millisecond) // three times body_idle
		}
		io.WriteString(c, "0\r\n\r\n")
	})
	e := newCachedEdge(t, o.url(), "timeouts: {body_idle: 50ms}")
	code, body, err := e.get("c.example", "/events")
	if err != nil || code != 200 || strings.Count(body, "data: ") != 3 {
		t.Fatalf("events: %d %q %v", code, body, err)
	}
}
