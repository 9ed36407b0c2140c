package node

import (
	"net"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenConfig makes the node's TCP listeners. Go turns TCP keep-alive on
// for every accepted connection with four setsockopt calls (15 s idle,
// 15 s between probes, 9 probes); on Linux a connection inherits these
// options from its listening socket, so they are set once there, with
// the same values, and Go's per-connection calls are turned off
// (KeepAlive < 0): four system calls fewer per new connection. A
// listener inherited from the old process of an upgrade is Go's
// (net.FileListener): its connections get the options set per
// connection, as before.
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{KeepAlive: -1, Control: keepAliveOnListener}
}

// The values are Go's defaults (net.KeepAliveConfig's zero values).
const (
	keepAliveIdle     = 15 // seconds
	keepAliveInterval = 15 // seconds
	keepAliveCount    = 9
)

func keepAliveOnListener(network, address string, c syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return nil // the HTTP/3 port's UDP socket (tableflip's ListenPacket)
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		for _, o := range []struct{ level, opt, v int }{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, keepAliveIdle},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, keepAliveInterval},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
		} {
			if serr = unix.SetsockoptInt(int(fd), o.level, o.opt, o.v); serr != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
