//go:build linux

package node

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// cork sets or clears TCP_CORK on the socket under an HTTPS connection;
// nested calls set it once, and the outermost clears it (only the
// connection's writing goroutine corks).
func (h *holdConn) cork(on bool) {
	if on {
		h.corks++
		if h.corks > 1 {
			return
		}
	} else {
		if h.corks == 0 {
			return
		}
		h.corks--
		if h.corks > 0 {
			return
		}
	}
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
