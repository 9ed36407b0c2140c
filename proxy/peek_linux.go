package proxy

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peek sets peekOK when the socket has nothing to read and is not closed,
// and peekData when it has bytes to read.
func (c *upConn) peek(fd uintptr) bool {
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	// EAGAIN: open and quiet. 0 bytes (EOF), a byte, or another error: not.
	c.peekOK = errno == syscall.EAGAIN
	c.peekData = errno == 0 && n > 0
	return true // never wait for readiness
}

// readInq sets inq to the bytes waiting on the socket (0 on an error).
func (c *upConn) readInq(fd uintptr) bool {
	if n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil && n > 0 {
		c.inq = n
	}
	return true // never wait for readiness
}
