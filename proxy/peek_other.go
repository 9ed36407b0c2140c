//go:build !linux || 386

package proxy

// peek cannot look at the socket here: an idle connection is assumed good
// and a stale one shows as an error on its next request.
func (c *upConn) peek(fd uintptr) bool {
	c.peekOK, c.peekData = true, false
	return true
}

// readInq cannot count the bytes on the socket here: none, so streams are
// flushed after every piece.
func (c *upConn) readInq(fd uintptr) bool {
	c.inq = 0
	return true
}

// rawSend: sendRaw is not used here (the socket's descriptor is not a
// Unix one): requests are written by nc.Write.
const rawSend = false

func (c *upConn) sendWait(fd uintptr) bool { c.peekOK = true; return true }
