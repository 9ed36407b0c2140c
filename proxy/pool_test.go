package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOriginBurstKeepsItsConnections: two bursts of concurrent requests,
// more than the old idle cap (256) and each held at the origin until all
// of it arrived, so that every request needs a connection of its own. The
// second burst reuses the first's connections (the pool keeps them all)
// and the idle ones hold no buffers. With a cap below the burst, the
// connections beyond it were closed on return and dialled again (issue 22:
// origin connection churn under 500 concurrent HTTP/2 streams).
func TestOriginBurstKeepsItsConnections(t *testing.T) {
	const n = 300
	var mu sync.Mutex
	arrived, release := 0, make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		ch := release
		if arrived == n {
			close(release)
			arrived, release = 0, make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-ch:
		case <-time.After(10 * time.Second): // a burst that never filled: the test fails below
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.test", "{url: "+origin.URL+"}")})
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	t.Cleanup(client.CloseIdleConnections)
	pool := func() *connPool { return e.srv.builtSite("a").origins[0].pool }
	burst := func() {
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for range n {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", e.url+"/x", nil)
				req.Host = "a.test"
				resp, err := client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					errs <- resp.Status + " " + string(b)
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatal(e)
		}
		// The edge puts a connection back after the client has its
		// response: wait until all n are idle.
		for deadline := time.Now().Add(10 * time.Second); ; {
			p := pool()
			p.mu.Lock()
			idle := len(p.idle)
			var buffered []string
			for _, c := range p.idle {
				if c.br != nil || c.bw != nil {
					buffered = append(buffered, c.nc.LocalAddr().String())
				}
			}
			p.mu.Unlock()
			if len(buffered) > 0 {
				t.Fatalf("idle connections hold buffers: %s", strings.Join(buffered, ", "))
			}
			if idle == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d idle origin connections after a burst of %d, want %d", idle, n, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	burst()
	burst()
	st := e.srv.OriginStats("a")[origin.URL]
	if st.Requests != 2*n || st.ConnsOpened != n {
		t.Errorf("%d requests opened %d origin connections, want %d for %d", st.Requests, st.ConnsOpened, n, 2*n)
	}
}
