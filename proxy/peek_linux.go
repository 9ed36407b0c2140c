package proxy

import (
	"syscall"
	"unsafe"
)

// peek sets peekOK when the socket has nothing to read and is not closed.
func (c *upConn) peek(fd uintptr) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	// EAGAIN: open and quiet. 0 bytes (EOF), a byte, or another error: not.
	c.peekOK = errno == syscall.EAGAIN
	return true // never wait for readiness
}
