package node

import (
	"os"
	"runtime/pprof"

	"go.uber.org/zap"
)

// startProfileEnv names a file to which the node writes a CPU profile of
// its start, from Run's first line to readiness. It is for cmd/bench
// -properties -startprofile and for tests: an operator profiles a running
// node through the admin API's /debug/pprof instead.
const startProfileEnv = "EDGE_BENCH_START_CPUPROFILE"

// startCPUProfile starts the start's CPU profile when startProfileEnv is
// set; the returned function stops it (idempotent), nil-safe to call.
func startCPUProfile(log *zap.Logger) func() {
	path := os.Getenv(startProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Warn("start CPU profile", zap.Error(err))
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		log.Warn("start CPU profile", zap.Error(err))
		return func() {}
	}
	done := false
	return func() {
		if done {
			return
		}
		done = true
		pprof.StopCPUProfile()
		f.Close()
	}
}
