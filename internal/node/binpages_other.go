//go:build !linux

package node

// releaseBinaryPages does nothing here (see the Linux version).
func releaseBinaryPages() error { return nil }
