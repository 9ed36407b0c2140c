//go:build !linux

package h1

// rawWait: sendAndWait is not used here; responses are written by
// rwc.Write.
const rawWait = false

func (c *conn) sendWait(fd uintptr) bool { return true }
