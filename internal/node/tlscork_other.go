//go:build !linux

package node

// cork is a no-op where TCP_CORK is not known.
func (h *holdConn) cork(bool) {}
