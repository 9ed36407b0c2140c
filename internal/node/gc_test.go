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
		go func() { defer close(done); governMemory(ctx, size, func() int64 { return 0 }) }()
		synctest.Wait() // the governor set the limit and waits for its ticker
		got = debug.SetMemoryLimit(-1)
		cancel()
		<-done
	})
	if got < size+autoHeadroom || got > size+1<<30 {
		t.Errorf("limit %d, want %d plus the headroom", got, int64(size))
	}
}
