package node

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcPercent is the collector's GOGC, chosen with cmd/bench/ (README,
// Performance): an edge's live heap is small while every request
// allocates. Under the HTTP/1.1 load test the collector took about 1 % of
// the edge's CPU at 200 and about 5 % at Go's default 100, for a peak RSS
// of 31–35 MiB against 28–31 MiB; 400 saved no measurable CPU more and
// peaked at 39–42 MiB. All three stay under the 64 MiB target; 200 buys
// back the CPU for a few MiB.
const gcPercent = 200

// The automatic memory limit (limits.memory_limit: auto) follows the heap:
// cache.memory_size, plus what the rest of the node holds live (certificates,
// properties, connections: the live heap less the cache's bytes) and half
// as much again for garbage, and at least autoHeadroom. Measured in cmd/bench/:
// under a scan of 10× cache.memory_size (64 MiB) the edge's RSS peaked at
// its soft limit plus about 17 MiB (the binary's mapped pages and what the
// runtime does not count): 232 MiB with the fixed 1 GiB limit of before,
// 129 MiB with 48 MiB of headroom, 120 MiB with 40, within
// cache.memory_size + 64 MiB. A node holding 100,000 certificates (about
// 470 MiB live) gets room for them and for collections that do not run
// back to back: settled after 10.8 s against 9.4 s with the fixed limit
// (certificates loading while the limit catches up), 487 MiB RSS.
const (
	autoHeadroom      = 40 << 20
	autoStartHeadroom = 768 << 20 // until the first look: certificates are being loaded
	autoInterval      = 2 * time.Second
)

// tuneGC sets the collector's pace and a first soft memory limit: a size
// (limits.memory_limit, resolved by the config checks), none (off, 0), or
// for auto (-1) cache.memory_size + 768 MiB until governMemory looks at
// the heap. It reports whether governMemory should run. GOGC and
// GOMEMLIMIT in the environment win.
func tuneGC(memoryLimit, cacheSize int64) (govern bool) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	switch {
	case memoryLimit > 0:
		debug.SetMemoryLimit(memoryLimit)
	case memoryLimit < 0:
		debug.SetMemoryLimit(cacheSize + autoStartHeadroom)
		return true
	}
	return false
}

// governMemory sets the automatic soft limit to autoLimit at once (the
// node has loaded its properties) and every autoInterval until ctx ends.
// cached reports the bytes the cache's memory tier holds.
func governMemory(ctx context.Context, cacheSize int64, cached func() int64) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(autoInterval)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // an unknown metric: keep the first limit
		}
		debug.SetMemoryLimit(autoLimit(cacheSize, int64(sample[0].Value.Uint64()), cached()))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// autoLimit is the automatic soft limit for a live heap of live bytes of
// which the cache holds cached.
func autoLimit(cacheSize, live, cached int64) int64 {
	other := max(live-cached, 0)
	return cacheSize + max(autoHeadroom, other+other/2)
}

// startMemoryGovernor runs governMemory when tuneGC asked for it; the
// returned function stops it and waits.
func (n *node) startMemoryGovernor(ctx context.Context, govern bool) (stop func()) {
	if !govern {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		governMemory(ctx, n.cfg.Cache.MemoryBytes, n.cachedBytes)
	}()
	return func() { cancel(); <-done }
}

// cachedBytes is what the cache's memory tier holds (0 with no cache).
func (n *node) cachedBytes() int64 {
	if n.cache == nil {
		return 0
	}
	return n.cache.MemoryBytes()
}
