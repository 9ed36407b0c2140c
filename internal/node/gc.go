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
// the heap. It reports whether governMemory should set the limit. GOGC and
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

// governMemory runs every autoInterval until ctx ends. With govern it sets
// the automatic soft limit to autoLimit (at once: the node has loaded its
// properties); cached reports the bytes the cache's memory tier holds. It
// always gives the memory of a burst back once the node is quiet
// (afterBurst): the heap's free pages, and the binary's pages the burst
// touched (releaseBinaryPages).
func governMemory(ctx context.Context, govern bool, cacheSize int64, cached func() int64) {
	sample := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	var burst afterBurst
	t := time.NewTicker(autoInterval)
	defer t.Stop()
	for {
		metrics.Read(sample)
		known := true
		for _, s := range sample {
			known = known && s.Value.Kind() == metrics.KindUint64
		}
		if !known {
			return // an unknown metric: keep the first limit, release nothing
		}
		live := sample[0].Value.Uint64()
		if govern {
			debug.SetMemoryLimit(autoLimit(cacheSize, int64(live), cached()))
		}
		retained := sample[3].Value.Uint64() + sample[4].Value.Uint64() + sample[5].Value.Uint64()
		if burst.observe(sample[1].Value.Uint64(), sample[2].Value.Uint64()) {
			if retained >= live+minRelease {
				debug.FreeOSMemory()
				// Its own collection is not one of the load's.
				metrics.Read(sample)
				burst.cycles = sample[2].Value.Uint64()
				burst.allocs = sample[1].Value.Uint64()
			}
			_ = releaseBinaryPages() // best effort: nothing to do if it cannot
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// After a burst of load the runtime keeps the heap the burst needed: the
// goal of its last collection, made under load, is several times what is
// live once the load is gone (GOGC 200), and with nothing allocated no
// collection comes to lower it (the runtime forces one every 2 minutes).
// Measured in cmd/bench/ (issue 22): 500 concurrent proxied HTTP/2
// streams (a live heap of about 14 MiB under the load) left 45–63 MiB of
// heap mapped, 5 s after the load as during it, and each later
// scenario's peak started from there: the node's RSS climbed from 35 to
// 89 MiB over the table.
//
// afterBurst decides, once per interval, when a burst is over: after an
// interval that ran a collection while allocating at least quietAllocs
// (a collection under load), the first interval that allocates less and
// runs none. Then governMemory releases the heap (debug.FreeOSMemory: a
// collection and the return of every free page) if at least minRelease
// more than the live heap is mapped, and the binary's pages
// (releaseBinaryPages). Once per burst: its own collection, or one in a
// quiet interval, leaves a goal made from the quiet heap, which the
// runtime's scavenger follows.
type afterBurst struct {
	allocs, cycles uint64 // at the last observation
	pending        bool   // a collection ran under load since the burst's end was last reported
	started        bool
}

const (
	quietAllocs = 1 << 20 // bytes allocated per autoInterval: 0.5 MiB/s, ~100 requests/s
	minRelease  = 8 << 20
)

// observe takes the runtime's counters at the end of an interval: bytes
// allocated and collections completed since the start. It reports whether
// a burst just ended.
func (b *afterBurst) observe(allocs, cycles uint64) bool {
	if !b.started {
		b.started = true
		b.allocs, b.cycles = allocs, cycles
		return false
	}
	quiet := allocs-b.allocs < quietAllocs
	collected := cycles != b.cycles
	b.allocs, b.cycles = allocs, cycles
	switch {
	case collected:
		b.pending = !quiet
		return false
	case quiet && b.pending:
		b.pending = false
		return true
	}
	return false
}

// autoLimit is the automatic soft limit for a live heap of live bytes of
// which the cache holds cached.
func autoLimit(cacheSize, live, cached int64) int64 {
	other := max(live-cached, 0)
	return cacheSize + max(autoHeadroom, other+other/2)
}

// startMemoryGovernor runs governMemory, which sets the automatic limit
// when tuneGC asked for it; the returned function stops it and waits.
func (n *node) startMemoryGovernor(ctx context.Context, govern bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		governMemory(ctx, govern, n.cfg.Cache.MemoryBytes, n.cachedBytes)
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
