//go:build linux && !386

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

// rawSend: sendRaw may write to the socket itself.
const rawSend = true

// sendWait, sendRaw's function: on its first call it peeks at the
// socket, and when it is open and quiet (peekOK) writes the held request
// and asks the runtime to wait for readability (false); a later call,
// after the wait, ends it. A socket that is not quiet, and a write that
// is partial, would block or fails end it at once: sendRaw finishes or
// reports it.
func (c *upConn) sendWait(fd uintptr) bool {
	if c.waiting {
		return true // woken: the answer (or the peer's close) is there
	}
	c.peek(fd)
	if !c.peekOK {
		return true
	}
	wrote, err := c.wr.WriteHeld(fd)
	c.sentSome = c.sentSome || wrote
	if err != nil {
		c.sendErr = err
		return true
	}
	c.waiting = len(c.wr.Held) == 0
	if c.waiting {
		// All written: the write buffer (which held the bytes) goes back
		// before the wait for the answer, most of an exchange's life
		// (issue 22: 500 proxied HTTP/2 streams held 2.5 MB).
		c.wr.Held = nil
		c.releaseWriteBuffer()
	}
	return !c.waiting // all written: wait for the answer
}
