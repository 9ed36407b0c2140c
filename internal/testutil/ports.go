package testutil

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// FreePort returns a loopback TCP port that was free a moment ago, for a
// server whose address must be known before it starts (Pebble's peers, an
// embedded etcd that restarts on the same ports). It is drawn from below
// Linux's ephemeral range (32768 and up): a port the kernel handed out for
// ":0" goes back to that pool when its listener closes, and the next ":0"
// or outgoing connection anywhere on the machine (another test binary's)
// may take it before the server binds it. A port is handed out once per
// process: tests running in parallel never share one.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		if portsGiven[port] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		portsGiven[port] = true
		return port
	}
	t.Fatal("no loopback port free between 20000 and 32000")
	return 0
}
