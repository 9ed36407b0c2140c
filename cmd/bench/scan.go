package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/property"
)

// scanObject is the body size of the cache scan's objects.
const scanObject = 64 << 10

// scanResult is what the cache scan measured.
type scanResult struct {
	memory   int64 // cache.memory_size
	objects  int
	errors   int64
	elapsed  time.Duration
	peakKB   int
	settleKB int
}

func (s scanResult) print() {
	bound := s.memory + 64<<20
	verdict := "within"
	if int64(s.peakKB)<<10 > bound {
		verdict = "OVER"
	}
	fmt.Printf("cache scan: %d distinct %d KiB objects (%.1f MiB, 10× cache.memory_size %d MiB) in %s, %d errors\n",
		s.objects, scanObject>>10, float64(s.objects*scanObject)/(1<<20), s.memory>>20, s.elapsed.Round(time.Millisecond), s.errors)
	fmt.Printf("  edge peak RSS %.1f MiB, %s the bound cache.memory_size + 64 MiB = %d MiB; RSS 5 s after %.1f MiB\n",
		float64(s.peakKB)/1024, verdict, bound>>20, float64(s.settleKB)/1024)
}

// runScan fetches 10× cache.memory_size of distinct cacheable objects
// through the edge's cached property (every one a miss that is stored,
// evicting the older ones) and reads the edge's peak RSS during the scan.
func runScan(pid, edgePort, originPort int) (scanResult, error) {
	size := cacheMemory
	if size == "" {
		size = "256MiB" // the node's default

	}
	mem, err := property.ParseSize(size)
	if err != nil {
		return scanResult{}, err
	}
	r := scanResult{memory: mem, objects: int(10 * mem / scanObject)}
	resetPeak(pid)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(r.objects); i = next.Add(1) {
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://localhost:%d/scan/%d", edgePort, i), nil)
				req.Host = cacheHost
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n != scanObject {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	r.elapsed, r.errors = time.Since(t0), errs.Load()
	r.peakKB = rssKBKey(pid, "VmHWM")
	time.Sleep(5 * time.Second)
	r.settleKB = rssKBKey(pid, "VmRSS")
	return r, nil
}
