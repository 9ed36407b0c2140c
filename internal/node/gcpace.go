package node

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The collector's pace follows what it scans (issue 22). GOGC 200 lets
// garbage grow to twice the live heap, goroutine stacks and globals
// before the next collection: right for a node whose live heap is a few
// MiB (under the HTTP/1.1 load test the collector took about 1 % of the
// edge's CPU at 200 and about 5 % at 100, its cycles' fixed costs
// dominating), but a node holding more pays twice that in resident
// memory. 500 concurrent proxied HTTP/2 streams of 100 KiB hold about
// 11 MiB live: at 200 the heap's goal was 31–39 MiB and the node peaked at
// 61–70 MiB RSS (cmd/bench h2-100k, GODEBUG=gctrace=1).
//
// After each collection the pacer sets GOGC so that the next one comes
// after at most gcGarbageMax of garbage, and never sooner than after as
// much garbage as the collector scanned (GOGC 100) nor later than after
// twice that (200, gcPercent): 200 up to 6 MiB scanned, falling to 100 at
// 12 MiB and above. A node with a large live heap (a full cache,
// thousands of certificates) runs at 100, where its soft memory limit
// (limits.memory_limit) usually decides first anyway. GOGC in the
// environment wins: then there is no pacer.
const (
	gcGarbageMax = 12 << 20
	gcPercentMin = 100
)

// gcPercentFor is the GOGC for a collector that scanned base bytes and
// lets garbageMax bytes of garbage grow.
func gcPercentFor(base, garbageMax uint64) int {
	if base == 0 {
		return gcPercent
	}
	return int(min(max(garbageMax*100/base, gcPercentMin), gcPercent))
}

// gcPacer runs after each collection (a cleanup of an object dropped at
// once, made again each time) while some node runs: no goroutine of its
// own. The collector's settings are the process's, so there is one pacer,
// shared by the nodes of a process (tests run several).
type gcPacer struct {
	garbageMax uint64 // gcGarbageMax (a test's may differ)

	mu      sync.Mutex // never held across I/O
	users   int        // nodes running; the chain of cleanups ends at 0
	armed   bool       // a cleanup waits for the next collection
	percent int        // what the pacer last set
	sample  []metrics.Sample
}

var pacer = newGCPacer(gcGarbageMax)

func newGCPacer(garbageMax uint64) *gcPacer {
	return &gcPacer{garbageMax: garbageMax, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
}

// startGCPacer starts pacing the collector, unless GOGC is set in the
// environment; the returned function stops it (the next collection's
// cleanup finds no user and ends the chain) and sets GOGC back to
// gcPercent.
func startGCPacer() (stop func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	return pacer.start()
}

func (p *gcPacer) start() (stop func()) {
	p.mu.Lock()
	p.users++
	if p.percent == 0 {
		p.percent = gcPercent
	}
	if !p.armed {
		p.arm()
	}
	p.mu.Unlock()
	return sync.OnceFunc(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.users--
		if p.users == 0 && p.percent != gcPercent {
			p.percent = gcPercent
			debug.SetGCPercent(gcPercent)
		}
	})
}

// gcMark is dropped as soon as it is made: its cleanup runs after the next
// collection. It holds a pointer so that it is never a tiny allocation
// (whose cleanups may not run).
type gcMark struct{ _ *gcPacer }

// arm makes the next collection run onCycle; p.mu is held.
func (p *gcPacer) arm() {
	p.armed = true
	runtime.AddCleanup(&gcMark{}, (*gcPacer).onCycle, p)
}

// onCycle sets GOGC for the collection after the one that just ended,
// from what it found live, and arms the next.
func (p *gcPacer) onCycle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = false
	if p.users == 0 {
		return
	}
	metrics.Read(p.sample)
	var base uint64
	for _, s := range p.sample {
		if s.Value.Kind() != metrics.KindUint64 {
			return // an unknown metric: leave GOGC as it is, stop pacing
		}
		base += s.Value.Uint64()
	}
	if want := gcPercentFor(base, p.garbageMax); want != p.percent {
		p.percent = want
		debug.SetGCPercent(want)
	}
	p.arm()
}

// gcPercentSet is what the pacer last set (for tests).
func (p *gcPacer) gcPercentSet() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.percent
}
