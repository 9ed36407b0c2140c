//go:build !linux

package node

import "net"

// listenConfig makes the node's TCP listeners: Go's defaults (keep-alive
// set on each accepted connection). See the Linux version.
func listenConfig() *net.ListenConfig { return &net.ListenConfig{} }
