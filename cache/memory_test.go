package cache

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fillCount is the number of fills registered.
func (e *env) fillCount() int {
	e.c.fillsMu.Lock()
	defer e.c.fillsMu.Unlock()
	return len(e.c.fills)
}

// waitFill waits up to 5 s for a fill of path (property "site") whose
// reservation reached res bytes.
func (e *env) waitFill(path string, res int64) bool {
	key := primaryKeyOf("site", path)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		e.c.fillsMu.Lock()
		f := e.c.fills[key]
		e.c.fillsMu.Unlock()
		if f != nil {
			f.mu.Lock()
			got := f.res
			f.mu.Unlock()
			if got >= res {
				return true
			}
		}
	}
	return false
}

// TestRangeMissNoFullFetchAmplification: Range requests for an object too
// large to be stored pass the range to the origin and never start a full
// fetch (three "bytes=0-0" once cost three full downloads of 100 MB); for
// an object that will be stored, concurrent Range misses start one full
// fetch between them, and the next range is a hit.
func TestRangeMissNoFullFetchAmplification(t *testing.T) {
	big := strings.Repeat("B", 4<<20) // over the object bound of an 8 MiB cache (512 KiB)
	small := strings.Repeat("s", 100<<10)
	var full atomic.Int64 // origin requests without a Range
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	e := newEnv(t, Config{MemorySize: 8 << 20}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"v1"`)
		body := small
		switch {
		case strings.HasPrefix(r.URL.Path, "/big"):
			body = big
		case r.URL.Path == "/unknown" && r.Header.Get("Range") != "":
			// A range of a representation of unknown length.
			w.Header().Set("Content-Range", "bytes 0-0/*")
			w.WriteHeader(http.StatusPartialContent)
			w.Write([]byte("u"))
			return
		}
		if r.Header.Get("Range") == "" {
			full.Add(1)
			<-release // a full fetch stays registered until the test lets it go
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
	})
	t.Cleanup(free) // runs before the env's cleanup, which waits for the origin
	for i := range 3 {
		resp, body := e.get("/big", "Range", "bytes=0-0")
		if resp.StatusCode != http.StatusPartialContent || body != "B" {
			t.Fatalf("range %d: %d %q", i, resp.StatusCode, body)
		}
		// A full fetch would be registered before the client got its head.
		if n := e.fillCount(); n != 0 {
			t.Fatalf("range %d of an object too large to store started %d full fetch(es)", i, n)
		}
	}
	if resp, body := e.get("/unknown", "Range", "bytes=0-0"); resp.StatusCode != http.StatusPartialContent || body != "u" {
		t.Fatalf("range of unknown length: %d %q", resp.StatusCode, body)
	}
	if n := e.fillCount(); n != 0 {
		t.Fatalf("a range of unknown full length started %d full fetch(es)", n)
	}
	if full.Load() != 0 {
		t.Fatalf("the origin served %d full copies behind ranges", full.Load())
	}

	// A storable object: the three ranges share one full fetch.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, body := e.get("/small", "Range", "bytes=0-0")
			if resp.StatusCode != http.StatusPartialContent || body != "s" {
				t.Errorf("range of a small object: %d %q", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if n := e.fillCount(); n != 1 {
		t.Fatalf("%d full fetches behind three ranges of a storable object, want 1", n)
	}
	free()
	e.settle()
	resp, body := e.get("/small", "Range", "bytes=1-2")
	if resp.StatusCode != http.StatusPartialContent || body != "ss" || !strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("range after the fill: %d %q %q", resp.StatusCode, body, resp.Header.Get("Cache-Status"))
	}
	if full.Load() != 1 {
		t.Fatalf("%d full fetches of the small object, want 1", full.Load())
	}
}

// TestPassMarkersBoundedMemory: a flood of uncacheable responses with long
// URLs leaves hit-for-pass markers that weigh a fixed few bytes each (a
// hash, not the URL) within their share of cache.memory_size, evicted as
// objects are (70,000 of them with 8 KiB URLs once held 986 MB).
func TestPassMarkersBoundedMemory(t *testing.T) {
	e := newEnv(t, Config{MemorySize: 1 << 20}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("x"))
	})
	long := strings.Repeat("u", 8<<10)
	const n = 1000
	for i := range n {
		resp, _ := e.get(fmt.Sprintf("/%d/%s", i, long))
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	e.c.pass.c.CleanUp()
	budget := int64(1<<20) / passShare
	if got := e.c.pass.bytes(); got > budget || got == 0 {
		t.Fatalf("pass markers weigh %d bytes, want (0, %d]", got, budget)
	}
	if got := e.c.pass.c.EstimatedSize(); got > int(budget/passEntryWeight) {
		t.Fatalf("%d pass markers kept, more than their budget holds (%d)", got, budget/passEntryWeight)
	}
	if max, want := int64(e.c.mem.c.GetMaximum()), int64(1<<20)-budget-(1<<20)/fillShare; max != want {
		t.Fatalf("memory tier bounded at %d bytes, want memory_size less the markers' and fills' shares (%d)", max, want)
	}
	// The latest marker still works: the key goes straight to the origin.
	if !e.c.pass.has(primaryKeyOf("site", fmt.Sprintf("/%d/%s", n-1, long))) {
		t.Fatal("the newest pass marker was not kept")
	}
}

// TestFillBudgetStreamsThrough: fills being stored reserve their declared
// bytes from a budget of memory_size/8; a miss that finds it full streams
// its response through, uncached, and says so in Cache-Status; the budget
// is given back when the fills end.
func TestFillBudgetStreamsThrough(t *testing.T) {
	const size = 900 << 10 // within the 1 MiB object bound of a 16 MiB cache; two fill the 2 MiB budget
	body := strings.Repeat("f", size)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	e := newEnv(t, Config{MemorySize: 16 << 20}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(200)
		w.Write([]byte(body[:10]))
		w.(http.Flusher).Flush()
		if r.URL.Path != "/c" {
			<-release
		}
		w.Write([]byte(body[10:]))
	})
	t.Cleanup(free) // runs before the env's cleanup, which waits for the origin
	var wg sync.WaitGroup
	for _, p := range []string{"/a", "/b"} {
		wg.Go(func() {
			resp, got := e.get(p)
			if got != body || !strings.Contains(resp.Header.Get("Cache-Status"), "stored") {
				t.Errorf("%s: %d bytes, %q", p, len(got), resp.Header.Get("Cache-Status"))
			}
		})
		if !e.waitFill(p, size) {
			t.Fatalf("%s did not reserve its %d bytes", p, size)
		}
	}
	if got := e.c.fillBytes.Load(); got != 2*size {
		t.Fatalf("fills in flight reserve %d bytes, want %d", got, 2*size)
	}
	resp, got := e.get("/c")
	if got != body || !strings.Contains(resp.Header.Get("Cache-Status"), "detail=fill-budget-full") {
		t.Fatalf("/c with the budget full: %d bytes, Cache-Status %q", len(got), resp.Header.Get("Cache-Status"))
	}
	free()
	wg.Wait()
	e.settle()
	if got := e.c.fillBytes.Load(); got != 0 {
		t.Fatalf("%d bytes of the fill budget still reserved after the fills ended", got)
	}
	hits := e.hits.Load()
	for _, p := range []string{"/a", "/b"} {
		if resp, _ := e.get(p); !strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
			t.Errorf("%s was not stored: %q", p, resp.Header.Get("Cache-Status"))
		}
	}
	// /c was not stored, nor marked hit-for-pass: the next miss stores it.
	if resp, _ := e.get("/c"); !strings.Contains(resp.Header.Get("Cache-Status"), "stored") {
		t.Errorf("/c after the budget freed: %q", resp.Header.Get("Cache-Status"))
	}
	e.wantHits(hits + 1)
}

// TestHugeObjectNotBufferedWhole: an object larger than the memory tier
// takes (memory_size/16) streams through: the fill keeps a window of it, not
// the whole body (a 200 MiB object was held whole and never stored), with
// or without a Content-Length, and says so in Cache-Status.
func TestHugeObjectNotBufferedWhole(t *testing.T) {
	const size = 24 << 20
	chunk := []byte(strings.Repeat("h", 32<<10))
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("content-length=%v", declared), func(t *testing.T) {
			e := newEnv(t, Config{MemorySize: 8 << 20}, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=600")
				if declared {
					w.Header().Set("Content-Length", strconv.Itoa(size))
				}
				for n := 0; n < size; n += len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
			started := make(chan *fill, 1)
			e.c.onStart = func(f *fill) { started <- f }
			req, _ := http.NewRequest("GET", e.edge.URL+"/huge", nil)
			req.Host = "site.test"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if declared && !strings.Contains(resp.Header.Get("Cache-Status"), "detail=too-large") {
				t.Errorf("Cache-Status %q, want detail=too-large", resp.Header.Get("Cache-Status"))
			}
			// Read slowly and look at what the fill holds meanwhile.
			var read, most int64
			buf := make([]byte, 64<<10)
			key := primaryKeyOf("site", "/huge")
			f := <-started
			for {
				n, err := resp.Body.Read(buf)
				read += int64(n)
				{
					f.mu.Lock()
					most = max(most, int64(len(f.buf)))
					f.mu.Unlock()
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d bytes: %v", read, err)
				}
			}
			if read != size {
				t.Fatalf("read %d bytes, want %d", read, size)
			}
			// The window, a trim step, a write and the object bound reached
			// before a body without a length was known to be too large.
			limit := int64(passWindow + trimStep + 64<<10)
			if !declared {
				limit += e.c.objectMax
			}
			if most > limit {
				t.Fatalf("the fill held %d bytes of the body at once, more than %d", most, limit)
			}
			e.settle()
			if got := e.c.fillBytes.Load(); got != 0 {
				t.Fatalf("%d bytes of the fill budget still reserved", got)
			}
			if o := e.c.get(key); o != nil {
				t.Fatalf("an object over the bound was stored (%d bytes)", len(o.body))
			}
		})
	}
}

// TestSmallObjectsWeighWhatTheyHold: a tier of small objects holds no more
// heap than their weights say (200,000 small URLs once held 188 MB with 64
// MiB of cache: each object weighed half of what it held).
func TestSmallObjectsWeighWhatTheyHold(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what allocations hold")
	}
	c, err := New(Config{MemorySize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 20000
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	var weight int64
	now := time.Now()
	for i := range n {
		h := http.Header{}
		h.Set("Cache-Control", "max-age=3600")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Date", now.UTC().Format(http.TimeFormat))
		h.Set("Content-Length", "100")
		o := c.newObject(fmt.Sprintf("http\x00m1.bench\x00/m/small/%d", i), 200, h, make([]byte, 100), now, now,
			Decision{Store: true, Lifetime: time.Hour}, nil)
		c.put(o)
		weight += o.size()
	}
	c.mem.c.CleanUp()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	held := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	if held > weight {
		t.Fatalf("%d small objects hold %d bytes of heap but weigh %d", n, held, weight)
	}
}
