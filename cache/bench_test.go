package cache

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/property"
)

// nopWriter is a ResponseWriter that allocates nothing, so that the
// benchmark counts the cache's own allocations only.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

func benchHit(b *testing.B, size int) {
	c, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := strings.Repeat("x", size)
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, body)
	})
	p := testProperty("bench")
	r := httptest.NewRequest("GET", "http://bench.test/object?id=1", nil)
	c.Serve(httptest.NewRecorder(), r, p, upstream)
	for c.mem.get(primaryKeyOf("bench", "/object?id=1")) == nil {
		runtime.Gosched()
	}
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		c.Serve(w, r, p, upstream)
	}
}

// BenchmarkHit is the hit path: key, lookup, freshness, head and body.
func BenchmarkHit100B(b *testing.B)   { benchHit(b, 100) }
func BenchmarkHit100KiB(b *testing.B) { benchHit(b, 100<<10) }

// lru is a plain LRU of the same byte budget, as the baseline of the hit
// ratio comparison.
type lru struct {
	max, used int64
	items     map[int]*lruNode
	head      lruNode // sentinel: head.next is the most recent
}

type lruNode struct {
	key        int
	size       int64
	prev, next *lruNode
}

func newLRU(max int64) *lru {
	l := &lru{max: max, items: map[int]*lruNode{}}
	l.head.next, l.head.prev = &l.head, &l.head
	return l
}

func (l *lru) unlink(n *lruNode) { n.prev.next, n.next.prev = n.next, n.prev }
func (l *lru) front(n *lruNode) {
	n.next, n.prev = l.head.next, &l.head
	l.head.next.prev = n
	l.head.next = n
}

// access returns whether key was held, and inserts it.
func (l *lru) access(key int, size int64) bool {
	if n, ok := l.items[key]; ok {
		l.unlink(n)
		l.front(n)
		return true
	}
	n := &lruNode{key: key, size: size}
	l.items[key] = n
	l.front(n)
	l.used += size
	for l.used > l.max {
		old := l.head.prev
		l.unlink(old)
		delete(l.items, old.key)
		l.used -= old.size
	}
	return false
}

// TestZipfHitRatio compares the memory tier's hit ratio under a Zipf(1.0)
// key distribution with an LRU of the same byte size (issue 9: at least as
// good).
func TestZipfHitRatio(t *testing.T) {
	keys, requests := 100000, 300000
	if raceEnabled {
		requests = 60000 // the race detector makes each access ~50x slower
	}
	const (
		objSize  = 1024
		capacity = 2000 * (objSize + 200)
	)
	c, err := New(Config{MemorySize: capacity})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := make([]byte, objSize)
	l := newLRU(capacity)
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.0001, 1, uint64(keys-1))
	var hits, lruHits int
	for i := range requests {
		k := int(zipf.Uint64())
		key := fmt.Sprintf("p\x00h\x00/%d", k)
		if c.mem.get(key) != nil {
			hits++
		} else {
			c.mem.put(&object{Key: key, body: body})
		}
		if l.access(k, (&object{Key: key, body: body}).size()) {
			lruHits++
		}
		if i%10000 == 0 {
			c.mem.c.CleanUp()
		}
	}
	ratio, lruRatio := float64(hits)/float64(requests), float64(lruHits)/float64(requests)
	t.Logf("Zipf(1.0) over %d keys, room for ~2000: otter W-TinyLFU hit ratio %.3f, LRU %.3f", keys, ratio, lruRatio)
	if ratio < lruRatio {
		t.Errorf("hit ratio %.3f below LRU's %.3f", ratio, lruRatio)
	}
}

// TestScanStaysBounded: a scan of ten times the memory size keeps the heap
// within memory_size plus a margin, and the popular object stays.
func TestScanStaysBounded(t *testing.T) {
	const memSize = 8 << 20
	c, err := New(Config{MemorySize: memSize})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := &property.Property{Name: "scan", Cache: property.Cache{Enabled: true, MaxObjectSize: 1 << 20}}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(make([]byte, 64<<10))
	})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	hot := httptest.NewRequest("GET", "http://scan.test/hot", nil)
	for i := range 10 * memSize / (64 << 10) {
		for range 3 {
			c.Serve(&nopWriter{h: http.Header{}}, hot, p, upstream)
		}
		r := httptest.NewRequest("GET", fmt.Sprintf("http://scan.test/cold/%d", i), nil)
		c.Serve(&nopWriter{h: http.Header{}}, r, p, upstream)
	}
	c.mem.c.CleanUp()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew %d KiB for a %d KiB memory tier (weighted size %d KiB)", grew>>10, memSize>>10, c.mem.bytes()>>10)
	if grew > memSize+16<<20 {
		t.Errorf("heap grew %d bytes, bound %d", grew, memSize+16<<20)
	}
	if c.mem.bytes() > memSize {
		t.Errorf("tier weighs %d, bound %d", c.mem.bytes(), memSize)
	}
	if c.mem.get(primaryKeyOf("scan", "/hot")) == nil {
		t.Error("the scan flushed the popular object")
	}
}

// benchHTTP measures requests over a real keep-alive HTTP/1.1 connection,
// either to the origin directly or to the cache in front of it (all hits).
func benchHTTP(b *testing.B, size int, direct bool) {
	body := strings.Repeat("x", size)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	defer origin.Close()
	c, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	u, _ := url.Parse(origin.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := testProperty("bench")
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Serve(w, r, p, rp)
	}))
	defer edge.Close()
	target := edge.URL + "/obj"
	if direct {
		target = origin.URL + "/obj"
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func() {
		resp, err := client.Get(target)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get()
	time.Sleep(10 * time.Millisecond)
	b.SetBytes(int64(size))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			get()
		}
	})
}

func BenchmarkHTTPOrigin100B(b *testing.B)   { benchHTTP(b, 100, true) }
func BenchmarkHTTPHit100B(b *testing.B)      { benchHTTP(b, 100, false) }
func BenchmarkHTTPOrigin100KiB(b *testing.B) { benchHTTP(b, 100<<10, true) }
func BenchmarkHTTPHit100KiB(b *testing.B)    { benchHTTP(b, 100<<10, false) }
