package node

import (
	"context"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// keepAliveOf reads c's TCP keep-alive options: on, idle, interval, count.
func keepAliveOf(t *testing.T, c net.Conn) [4]int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got [4]int
	var gerr error
	rc.Control(func(fd uintptr) {
		for i, o := range []struct{ level, opt int }{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
		} {
			if got[i], err = unix.GetsockoptInt(int(fd), o.level, o.opt); err != nil {
				gerr = err
			}
		}
	})
	if gerr != nil {
		t.Fatal(gerr)
	}
	return got
}

func acceptOne(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAcceptedConnectionsKeepTCPKeepAlive: a connection accepted on the
// node's listener has TCP keep-alive on with Go's values (a dead client
// of an idle connection, a WebSocket, is still found out), though Go no
// longer sets them per connection: it inherits them from the listener.
func TestAcceptedConnectionsKeepTCPKeepAlive(t *testing.T) {
	goLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer goLn.Close()
	want := keepAliveOf(t, acceptOne(t, goLn))
	if want != [4]int{1, keepAliveIdle, keepAliveInterval, keepAliveCount} {
		t.Fatalf("Go's own keep-alive on an accepted connection: %v; the node's constants differ", want)
	}
	var h *Handover
	ln, err := h.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := keepAliveOf(t, acceptOne(t, ln)); got != want {
		t.Errorf("keep-alive of a connection accepted by the node: %v (on, idle s, interval s, probes); want Go's %v", got, want)
	}
}

// TestListenConfigUDP: the node's listen configuration also makes the
// HTTP/3 port's UDP socket (an upgrade's registry uses it for both): the
// TCP options are not set on it.
func TestListenConfigUDP(t *testing.T) {
	pc, err := listenConfig().ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("a UDP socket from the node's listen configuration: %v", err)
	}
	pc.Close()
}
