package node

import (
	"context"
	"runtime/debug"
	"testing"
	"testing/synctest"
)

// TestAutoLimit: the automatic limit is the cache's size plus 40 MiB for a
// small node, and grows with what the rest of the node holds live.
func TestAutoLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct{ size, live, cached, want int64 }{
		{64 * mib, 10 * mib, 0, 64*mib + autoHeadroom},        // an empty cache
		{64 * mib, 80 * mib, 64 * mib, 64*mib + autoHeadroom}, // a full cache, a small node
		{256 * mib, 726 * mib, 256 * mib, 256*mib + 705*mib},  // 100,000 certificates (470 MiB)
		{64 * mib, 60 * mib, 70 * mib, 64*mib + autoHeadroom}, // the cache's count ahead of the heap's
	} {
		if got := autoLimit(tc.size, tc.live, tc.cached); got != tc.want {
			t.Errorf("autoLimit(%d MiB, live %d MiB, cached %d MiB) = %d MiB, want %d MiB",
				tc.size/mib, tc.live/mib, tc.cached/mib, got/mib, tc.want/mib)
		}
	}
}

// TestGovernMemory: the governor sets the automatic limit from the live
// heap within an interval, and returns when its context ends.
func TestGovernMemory(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const size = 1 << 40 // far above anything live here: the limit shows it was set
	debug.SetMemoryLimit(size * 4)
	var got int64
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); governMemory(ctx, true, size, func() int64 { return 0 }) }()
		synctest.Wait() // the governor set the limit and waits for its ticker
		got = debug.SetMemoryLimit(-1)
		cancel()
		<-done
	})
	if got < size+autoHeadroom || got > size+1<<30 {
		t.Errorf("limit %d, want %d plus the headroom", got, int64(size))
	}
}

// TestAfterBurstReleasesOnce: the end of a burst is reported in the first
// quiet interval after a collection under load, once; a node that stays
// busy, or quiet, is not reported.
func TestAfterBurstReleasesOnce(t *testing.T) {
	const mib = 1 << 20
	type tick struct {
		allocs, cycles uint64
		want           bool
	}
	for _, tc := range []struct {
		name  string
		ticks []tick
	}{
		{"burst then quiet", []tick{
			{0, 0, false},
			{200 * mib, 5, false}, // under load
			{200*mib + 1000, 5, true},
			{200*mib + 2000, 5, false}, // once
			{200*mib + 3000, 5, false},
		}},
		{"busy without collecting", []tick{
			{0, 0, false},
			{200 * mib, 5, false},
			{202 * mib, 5, false}, // still allocating
			{202*mib + 1, 5, true},
		}},
		{"a quiet collection refreshed the goal", []tick{
			{0, 0, false},
			{200 * mib, 5, false},
			{200*mib + 10, 6, false},
			{200*mib + 20, 6, false},
		}},
		{"always quiet", []tick{
			{0, 0, false},
			{10, 0, false},
			{20, 1, false},
			{30, 1, false},
		}},
	} {
		var b afterBurst
		for i, tk := range tc.ticks {
			if got := b.observe(tk.allocs, tk.cycles); got != tk.want {
				t.Errorf("%s: tick %d: burst over %v, want %v", tc.name, i, got, tk.want)
			}
		}
	}
}
