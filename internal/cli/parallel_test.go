package cli

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain runs the package's tests with up to 8 at once unless
// -test.parallel says otherwise. Most tests here run whole nodes (with
// etcd and Pebble) and spend their time waiting on timers, leases and
// sockets, not on the CPU: with the default of GOMAXPROCS (2 on the
// machines the suite targets) the package took four minutes.
//
// Tests that cannot share the process stay serial, and Go runs them
// before the parallel ones: those that send SIGHUP to the process (every
// node in it would reload) and those that set environment variables.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	code := m.Run()
	if ownProcess && code == 0 {
		// Main marks the process as one node's own (binary upgrades take
		// its sockets): a test that calls it makes every later node of
		// this binary fail to start. Tests call run.
		fmt.Fprintln(os.Stderr, "a test called Main: call run instead")
		code = 1
	}
	os.Exit(code)
}
