//go:build linux

package node

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// cork sets or clears TCP_CORK on the socket under an HTTPS connection.
func (h *holdConn) cork(on bool) {
	if h.raw == nil {
		sc, ok := h.Conn.(syscall.Conn)
		if !ok {
			return
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return
		}
		h.raw = raw
	}
	v := 0
	if on {
		v = 1
	}
	h.raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v) })
}
