package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowOrigin never answers within a response_header timeout of 50ms.
func slowOrigin(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	release := make(chan struct{})
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-time.After(2 * time.Second):
		}
	}))
	t.Cleanup(func() { close(release); o.Close() })
	return o, &hits
}

// TestTimeoutRetriedAtMostOnce: an idempotent request whose origin does
// not answer in time goes to a second origin, never a third (issue 10
// item 5: a client no longer waits three timeouts, a slow pool no longer
// gets three times the load).
func TestTimeoutRetriedAtMostOnce(t *testing.T) {
	o, hits := slowOrigin(t)
	e := newEdge(t, Config{}, map[string]string{
		"a.yaml": prop("a.example", "{url: "+o.URL+"/a}, {url: "+o.URL+"/b}, {url: "+o.URL+"/c}", "timeouts: {response_header: 50ms}"),
	})
	r := e.do("GET", "a.example", "/", nil)
	if r.StatusCode != 504 || hits.Load() != 2 {
		t.Errorf("status %d after %d tries, want 504 after 2", r.StatusCode, hits.Load())
	}
}

// TestResetNotRetried: an origin that takes the request and drops the
// connection is not sent the request again by another origin: only a
// dial error or one timeout is.
func TestResetNotRetried(t *testing.T) {
	var hits atomic.Int64
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		panic(http.ErrAbortHandler) // closes the connection, no response
	}))
	defer o.Close()
	e := newEdge(t, Config{}, map[string]string{
		"a.yaml": prop("a.example", "{url: "+o.URL+"/a}, {url: "+o.URL+"/b}, {url: "+o.URL+"/c}"),
	})
	if r := e.do("GET", "a.example", "/", nil); r.StatusCode != 502 || hits.Load() != 1 {
		t.Errorf("status %d after %d tries, want 502 after 1", r.StatusCode, hits.Load())
	}
}

// TestRetryBudget: when every origin times out, retries stay within the
// budget: about 20 % of the requests plus a small burst, not one per
// request.
func TestRetryBudget(t *testing.T) {
	o, hits := slowOrigin(t)
	e := newEdge(t, Config{}, map[string]string{
		"a.yaml": prop("a.example", "{url: "+o.URL+"/a}, {url: "+o.URL+"/b}", "timeouts: {response_header: 20ms}"),
	})
	const n = 60
	for range n {
		r := e.do("GET", "a.example", "/", nil)
		io.Copy(io.Discard, r.Body)
		if r.StatusCode != 504 {
			t.Fatalf("status %d", r.StatusCode)
		}
	}
	retries := hits.Load() - n
	limit := int64(n*budgetPerRequest/budgetPerRetry + budgetCap/budgetPerRetry)
	t.Logf("%d requests, %d retries (budget allows %d)", n, retries, limit)
	if retries > limit || retries < budgetCap/budgetPerRetry {
		t.Errorf("%d retries for %d requests, want between %d and %d", retries, n, budgetCap/budgetPerRetry, limit)
	}
}

// TestClientLeavesMidStream: a client that goes away during a streamed
// response frees the origin connection at once: it is closed, not reused.
func TestClientLeavesMidStream(t *testing.T) {
	left, originClosed := make(chan struct{}, 1), make(chan struct{}, 1)
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := io.WriteString(w, strings.Repeat("x", 1024)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
	}))
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			originClosed <- struct{}{}
		}
	}
	o.Start()
	defer o.Close()
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.URL+"}")})
	go func() {
		req, _ := http.NewRequest("GET", e.url+"/", nil)
		req.Host = "a.example"
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			io.CopyN(io.Discard, resp.Body, 4096)
			resp.Body.Close() // leaves mid-stream
		}
		left <- struct{}{}
	}()
	<-left
	select {
	case <-originClosed:
	case <-time.After(5 * time.Second):
		t.Fatal("origin connection still open 5 s after the client left")
	}
}
