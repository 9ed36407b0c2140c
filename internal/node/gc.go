package node

import (
	"os"
	"runtime/debug"
)

// gcPercent is the collector's GOGC, chosen with bench/ (README,
// Performance): an edge's live heap is small while every request
// allocates. Under the HTTP/1.1 load test the collector took about 1 % of
// the edge's CPU at 200 and about 5 % at Go's default 100, for a peak RSS
// of 31–35 MiB against 28–31 MiB; 400 saved no measurable CPU more and
// peaked at 39–42 MiB. All three stay under the 64 MiB target; 200 buys
// back the CPU for a few MiB.
const gcPercent = 200

// tuneGC sets the collector's pace and the soft memory limit
// (limits.memory_limit, resolved by the config checks: 0 is off; the
// default is cache.memory_size + 768 MiB). The limit bounds a runaway and
// makes the collector work harder near it instead of growing past it.
// GOGC and GOMEMLIMIT in the environment win.
func tuneGC(memoryLimit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && memoryLimit > 0 {
		debug.SetMemoryLimit(memoryLimit)
	}
}
