package node

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// TestGCPercentFor: GOGC 200 while the collector scans little, room for
// 12 MiB of garbage in between, 100 once it scans 12 MiB or more.
func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		base uint64
		want int
	}{
		{0, 200},
		{2 * mib, 200},
		{6 * mib, 200},
		{8 * mib, 150},
		{11 * mib, 109},
		{12 * mib, 100},
		{500 * mib, 100},
	} {
		if got := gcPercentFor(tc.base, gcGarbageMax); got != tc.want {
			t.Errorf("gcPercentFor(%.1f MiB) = %d, want %d", float64(tc.base)/mib, got, tc.want)
		}
	}
}

// TestGCPacerFollowsLiveHeap: holding as much live as the pacer's
// garbage bound, it sets GOGC 100 after a collection; once that is
// garbage, the next collections set it back from what is live; stopping
// sets 200. The bound is made from what this test binary holds live
// before (twice that and 8 MiB), so that whatever other tests left, it
// starts at 200 and the held bytes take it to 100.
func TestGCPacerFollowsLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
	runtime.GC()
	p := newGCPacer(2 * (scanBase() + 4<<20))
	stop := p.start()
	defer stop()

	held := make([][]byte, p.garbageMax>>20+1)
	fill := func() {
		for i := range held {
			held[i] = make([]byte, 1<<20)
		}
	}
	fill()
	waitGCPercent(t, p, func() int { return gcPercentMin })
	if got := debug.SetGCPercent(gcPercentMin); got != gcPercentMin {
		t.Errorf("the runtime's GOGC is %d, the pacer says it set %d", got, gcPercentMin)
	}
	runtime.KeepAlive(held)
	clear(held)

	// What the collector scans once the held bytes are gone: the pacer
	// follows it.
	var want int
	waitGCPercent(t, p, func() int {
		want = gcPercentFor(scanBase(), p.garbageMax)
		return want
	})
	if want == gcPercentMin {
		t.Fatalf("the test binary's live heap grew past the bound: the pacer's return from 100 is not shown")
	}

	// Stopped while at 100: GOGC goes back to 200.
	fill()
	waitGCPercent(t, p, func() int { return gcPercentMin })
	runtime.KeepAlive(held)
	stop()
	if got := debug.SetGCPercent(gcPercent); got != gcPercent {
		t.Errorf("GOGC %d after the pacer stopped, want %d", got, gcPercent)
	}
}

// scanBase is what the collector scanned in its last cycle, as the pacer
// reads it.
func scanBase() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64()
}

// waitGCPercent runs collections until p has set want() (read
// after each collection), for at most 10 s.
func waitGCPercent(t *testing.T, p *gcPacer, want func() int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		w := want()
		// The cleanup runs after the collection, on a goroutine of the
		// runtime's: give it a moment.
		for range 100 {
			if p.gcPercentSet() == w {
				return
			}
			time.Sleep(time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pacer set GOGC %d, want %d", p.gcPercentSet(), w)
		}
	}
}
