package node

import (
	"os"
	"runtime/debug"
)

// tuneGC makes the collector run less often than Go's default (GOGC=100):
// an edge's live heap is small while every request allocates, so the
// default collects many times a second under load. 200 halves that for a
// little memory; the soft limit (1 GiB) only bounds a runaway, and sits far
// above the heap of 100,000 certificates so it never forces constant
// collections. GOGC and GOMEMLIMIT in the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}
