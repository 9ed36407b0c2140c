package cache

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCollapsing: concurrent misses make one origin request; every client
// gets the same bytes, streamed as they arrive.
func TestCollapsing(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte("first;"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte(strings.Repeat("z", 100000)))
	})
	const n = 20
	var wg sync.WaitGroup
	bodies := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, bodies[i] = e.get("/big")
		}()
	}
	// Wait until all are queued on the one fill before the origin finishes.
	if !e.waitReaders("site", "/big", n) {
		t.Fatal("clients did not join one fill")
	}
	close(release)
	wg.Wait()
	want := "first;" + strings.Repeat("z", 100000)
	for i, b := range bodies {
		if b != want {
			t.Fatalf("client %d got %d bytes, want %d", i, len(b), len(want))
		}
	}
	e.wantHits(1)
}

// waitReaders waits up to 5 s until n clients follow the fill of path on
// prop's property, and reports whether they did.
func (e *env) waitReaders(prop, path string, n int) bool {
	key := primaryKeyOf(prop, path)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		e.c.fillsMu.Lock()
		f := e.c.fills[key]
		e.c.fillsMu.Unlock()
		if f != nil {
			f.mu.Lock()
			k := len(f.readers)
			f.mu.Unlock()
			if k == n {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func primaryKeyOf(prop, path string) string {
	r, _ := http.NewRequest("GET", "http://"+prop+".test"+path, nil)
	return string(primaryKey(nil, testProperty(prop), r))
}

// TestStreamingFirstByte: a client gets the first bytes of a miss before the
// origin has sent the whole body.
func TestStreamingFirstByte(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "head\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "tail\n")
	})
	req, _ := http.NewRequest("GET", e.edge.URL+"/s", nil)
	req.Host = "site.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "head\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "tail\n" {
		t.Fatalf("rest %q", rest)
	}
	e.settle()
	if _, body := e.get("/s"); body != "head\ntail\n" {
		t.Errorf("stored %q", body)
	}
	e.wantHits(1)
}

// TestClientLeavingDoesNotAbortFill: the client that started a fill goes
// away; the fill completes and is stored.
func TestClientLeavingDoesNotAbortFill(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "part1-")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "part2")
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.edge.URL+"/l", nil)
	req.Host = "site.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	io.ReadFull(resp.Body, buf)
	cancel()
	resp.Body.Close()
	close(release)
	e.settle()
	if _, body := e.get("/l"); body != "part1-part2" {
		t.Fatalf("got %q", body)
	}
	e.wantHits(1)
}

// TestHitForPass: an uncacheable response releases the waiters to the
// origin and later requests do not queue behind one another.
func TestHitForPass(t *testing.T) {
	var inFlight, peak atomic.Int64
	gate := make(chan struct{})
	e := newEnv(t, Config{WaitTimeout: 10 * time.Second}, func(w http.ResponseWriter, r *http.Request) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		<-gate
		w.Header().Set("Cache-Control", "private")
		fmt.Fprint(w, "mine")
	})
	close(gate) // the first response is uncacheable at once
	e.get("/p")
	gate = make(chan struct{})
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, b := e.get("/p"); b != "mine" {
				t.Errorf("got %q", b)
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inFlight.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if peak.Load() < 5 {
		t.Errorf("peak concurrency at the origin %d, want 5: hit-for-pass requests queued", peak.Load())
	}
}

// TestOverMaxObjectSizeStreamsThrough: a larger body reaches the client
// whole and is not stored.
func TestOverMaxObjectSizeStreamsThrough(t *testing.T) {
	p := testProperty("site")
	p.Cache.MaxObjectSize = 1000
	big := strings.Repeat("b", 5<<20)
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Path == "/chunked" {
			for i := 0; i < len(big); i += 64 << 10 {
				w.Write([]byte(big[i : i+64<<10]))
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		io.WriteString(w, big)
	}, p)
	for _, path := range []string{"/length", "/chunked"} {
		for range 2 {
			if _, b := e.get(path); b != big {
				t.Fatalf("%s: got %d bytes, want %d", path, len(b), len(big))
			}
			e.settle()
		}
	}
	e.wantHits(4)
	if st := e.c.Stats().Properties["site"]; st.Memory.Objects != 0 {
		t.Errorf("stored %d objects", st.Memory.Objects)
	}
}

// TestShortBodyIsNeverStored: a Content-Length that lies is not stored and
// the client sees the error.
func TestShortBodyIsNeverStored(t *testing.T) {
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		conn, bw, _ := http.NewResponseController(w).Hijack()
		defer conn.Close()
		bw.WriteString("HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\nonly this")
		bw.Flush()
	})
	for range 2 {
		req, _ := http.NewRequest("GET", e.edge.URL+"/short", nil)
		req.Host = "site.test"
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("a cut body reached the client as a whole one")
		}
		e.settle()
	}
	e.wantHits(2)
}

// TestCollapsedOriginErrorNotShared: an origin error is the answer to the
// request that made it; each waiter asks the origin on its own and gets its
// own answer, never another client's.
func TestCollapsedOriginErrorNotShared(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int64
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		<-release
		id := n.Add(1)
		w.Header().Set("Set-Cookie", fmt.Sprintf("sid=%d", id))
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "down %d", id)
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := e.get("/err")
			if resp.StatusCode != 503 || resp.Header.Get("Set-Cookie") != "sid="+strings.TrimPrefix(b, "down ") {
				t.Errorf("got %d %q with Set-Cookie %q", resp.StatusCode, b, resp.Header.Get("Set-Cookie"))
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[b] {
				t.Errorf("two clients got %q", b)
			}
			seen[b] = true
		}()
	}
	if !e.waitReaders("site", "/err", 10) {
		t.Fatal("clients did not join one fill")
	}
	close(release)
	wg.Wait()
	e.wantHits(10)
}

// TestOverMaxWithManyReaders: clients following a fill that grows past
// max_object_size all get the whole body intact while it is trimmed.
func TestOverMaxWithManyReaders(t *testing.T) {
	p := testProperty("site")
	p.Cache.MaxObjectSize = 1000
	var big strings.Builder
	for i := 0; big.Len() < 4<<20; i++ {
		fmt.Fprintf(&big, "%08d", i)
	}
	want := big.String()
	release := make(chan struct{})
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
		for i := 0; i < len(want); i += 32 << 10 {
			w.Write([]byte(want[i:min(i+32<<10, len(want))]))
		}
	}, p)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, b := e.get("/big"); b != want {
				t.Errorf("got %d bytes, intact %v", len(b), b == want)
			}
		}()
	}
	e.waitReaders("site", "/big", 4) // at worst, the test goes on after 5 s
	close(release)
	wg.Wait()
	e.wantHits(1)
}

// TestEventStreamPassesThrough: server-sent events reach the client as they
// are sent, and each client gets its own stream from the origin.
func TestEventStreamPassesThrough(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "data: two\n\n")
	})
	open := func() (*http.Response, *bufio.Reader) {
		req, _ := http.NewRequest("GET", e.edge.URL+"/events", nil)
		req.Host = "site.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, bufio.NewReader(resp.Body)
	}
	r1, b1 := open()
	defer r1.Body.Close()
	if line, _ := b1.ReadString('\n'); line != "data: one\n" {
		t.Fatalf("first event %q", line)
	}
	r2, b2 := open()
	defer r2.Body.Close()
	if line, _ := b2.ReadString('\n'); line != "data: one\n" {
		t.Fatalf("second client's first event %q", line)
	}
	close(release)
	e.wantHits(2)
}
