package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/property"
)

// The cache-memory scenario (issue 17 §3): loads that once pushed a node
// with cache.memory_size 64 MiB past 1.8 GB. Each runs against the same
// edge, on the hosts of memoryProps cached properties; the edge's peak RSS
// (VmHWM, reset before each load) less its RSS before the first load is
// compared with the goal cache.memory_size + 64 MiB.
//
//	go run ./bench -scenarios cache-memory -cache-memory 64MiB
//	go run ./bench -scenarios cache-memory -cache-memory 64MiB -memory-scale 0.1   # smaller and quicker

// memoryProps is the number of cached properties the loads spread over.
const memoryProps = 4

// memoryScale shrinks the loads' counts and big sizes (1: the issue's).
var memoryScale = 1.0

func memoryHost(i int) string { return fmt.Sprintf("m%d.bench", i%memoryProps) }

// writeMemoryProps writes the properties of the cache-memory loads.
func writeMemoryProps(dir string, originPort int) {
	for i := range memoryProps {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%d.yaml", i)), []byte(fmt.Sprintf(
			"hostnames: [%s]\norigins: [{url: http://127.0.0.1:%d}]\ncache: {enabled: true}\n", memoryHost(i), originPort)), 0o644)
	}
}

// memoryLoad is one load of the scenario.
type memoryLoad struct {
	name     string
	requests int
	conns    int
	// req returns request i's path and extra header (name, value).
	req func(i int) (path, hk, hv string)
	// want is the body length every answer must have.
	want int64
}

func memoryLoads() []memoryLoad {
	n := func(x int) int { return max(1, int(float64(x)*memoryScale)) }
	mib := func(x int) int64 { return max(1<<20, int64(float64(x)*memoryScale)<<20) }
	long := strings.Repeat("u", 8<<10-40) // the URL just within limits.max_uri_bytes (8 KiB)
	big, huge := mib(100), mib(200)
	return []memoryLoad{
		{"200,000 distinct small URLs", n(200000), 16, func(i int) (string, string, string) {
			return fmt.Sprintf("/m/small/%d", i), "", ""
		}, 100},
		{"70,000 no-store responses, 8 KiB URLs", n(70000), 16, func(i int) (string, string, string) {
			return fmt.Sprintf("/m/nostore/%d/%s", i, long), "", ""
		}, 100},
		{"20,000 Vary'd 60 KB values", n(20000), 16, func(i int) (string, string, string) {
			return "/m/vary", "X-Variant", strconv.Itoa(i)
		}, 60000},
		{fmt.Sprintf("10 concurrent %d MiB misses", big>>20), 10, 10, func(i int) (string, string, string) {
			return fmt.Sprintf("/m/big/%d?size=%d", i, big), "", ""
		}, big},
		{fmt.Sprintf("one %d MiB object, 3 requests", huge>>20), 3, 1, func(int) (string, string, string) {
			return fmt.Sprintf("/m/huge?size=%d", huge), "", ""
		}, huge},
	}
}

type memoryResult struct {
	name     string
	requests int
	errors   int64
	elapsed  time.Duration
	peakKB   int
	status   map[string]int // Cache-Status, numbers dropped
}

// runMemory runs the loads and returns what each measured.
func runMemory(pid, edgePort int) ([]memoryResult, error) {
	var out []memoryResult
	for _, l := range memoryLoads() {
		resetPeak(pid)
		r := memoryResult{name: l.name, requests: l.requests, status: map[string]int{}}
		var mu sync.Mutex
		client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: l.conns}}
		var next, errs atomic.Int64
		var wg sync.WaitGroup
		t0 := time.Now()
		for range l.conns {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(l.requests); i = next.Add(1) - 1 {
					path, hk, hv := l.req(int(i))
					req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", edgePort, path), nil)
					req.Host = memoryHost(int(i))
					if hk != "" {
						req.Header.Set(hk, hv)
					}
					resp, err := client.Do(req)
					if err != nil {
						errs.Add(1)
						continue
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || n != l.want {
						errs.Add(1)
					}
					st := statusKind(resp.Header.Get("Cache-Status"))
					mu.Lock()
					r.status[st]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		client.CloseIdleConnections()
		r.elapsed, r.errors = time.Since(t0), errs.Load()
		r.peakKB = rssKBKey(pid, "VmHWM")
		out = append(out, r)
		fmt.Printf("  %s: peak RSS %.1f MiB, %s\n", r.name, float64(r.peakKB)/1024, r.elapsed.Round(time.Millisecond))
	}
	return out, nil
}

// statusKind is a Cache-Status value without its numbers (ttl=…).
func statusKind(s string) string {
	var parts []string
	for _, p := range strings.Split(s, ";") {
		p = strings.TrimSpace(p)
		if strings.HasPrefix(p, "ttl=") || p == "Edge" {
			continue
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func printMemory(results []memoryResult, beforeKB int) {
	mem, err := property.ParseSize(cacheMemory)
	if cacheMemory == "" || err != nil {
		mem = 256 << 20
	}
	goal := mem + 64<<20
	fmt.Printf("\ncache memory (issue 17 §3): cache.memory_size %d MiB, %d cached properties, RSS before the loads %.1f MiB; goal: peak − before ≤ %d MiB\n",
		mem>>20, memoryProps, float64(beforeKB)/1024, goal>>20)
	for _, r := range results {
		delta := int64(r.peakKB-beforeKB) << 10
		verdict := "within"
		if delta > goal {
			verdict = "OVER"
		}
		kinds := make([]string, 0, len(r.status))
		for k, n := range r.status {
			kinds = append(kinds, fmt.Sprintf("%d× %q", n, k))
		}
		sort.Strings(kinds)
		fmt.Printf("  %-40s %8d req %9s %4d errors  peak %7.1f MiB  peak−before %7.1f MiB  %s\n      Cache-Status: %s\n",
			r.name, r.requests, r.elapsed.Round(time.Millisecond), r.errors, float64(r.peakKB)/1024, float64(delta)/(1<<20), verdict, strings.Join(kinds, ", "))
	}
}

// memoryOrigin adds the cache-memory loads' paths to the bench origin:
// /m/small/* (100 B), /m/nostore/* (100 B, no-store), /m/vary (60 KB,
// Vary: X-Variant), /m/big/* and /m/huge (?size= bytes, with a
// Content-Length), all but no-store cacheable for an hour.
func memoryOrigin(mux *http.ServeMux) {
	small := []byte(strings.Repeat("m", 100))
	vary := []byte(strings.Repeat("v", 60000))
	block := []byte(strings.Repeat("B", 64<<10))
	mux.HandleFunc("/m/small/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(small)
	})
	mux.HandleFunc("/m/nostore/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Write(small)
	})
	mux.HandleFunc("/m/vary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Vary", "X-Variant")
		w.Write(vary)
	})
	sized := func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		for size > 0 {
			n := min(size, int64(len(block)))
			if _, err := w.Write(block[:n]); err != nil {
				return
			}
			size -= n
		}
	}
	mux.HandleFunc("/m/big/", sized)
	mux.HandleFunc("/m/huge", sized)
}
