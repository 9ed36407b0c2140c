package node

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
)

// TestSIGHUPAtReadinessReloads: a SIGHUP sent at the moment the node says
// it is ready (systemd's reload right after READY=1, a test's first
// reload) reloads. The node used to register its handler in the loop
// after the announcement, so such a signal was lost, and in production
// Go's default action for SIGHUP ended the process.
func TestSIGHUPAtReadinessReloads(t *testing.T) {
	// The test's own registration keeps the test binary alive if the node
	// misses the signal, and tells when the signal has been dispatched.
	seen := make(chan os.Signal, 1)
	signal.Notify(seen, syscall.SIGHUP)
	defer signal.Stop(seen)
	n := runTestNodeReady(t, "", map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\n"}, func(Addrs) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Error(err)
			return
		}
		// Once this test's channel has it, os/signal has handed it to
		// every channel registered by then: the node's must be one.
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			t.Error("SIGHUP never dispatched")
		}
	})
	testutil.WaitFor(t, "a reload after the SIGHUP sent at readiness", func() bool {
		return strings.Contains(n.log.String(), `"msg":"SIGHUP: reloading properties"`)
	}, n.log.String)
}
