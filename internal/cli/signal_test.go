package cli

import "syscall"

// reloadSignal sends SIGHUP to this process, which the node under test
// catches as a running edge would.
func (n *testNode) reloadSignal() { _ = syscall.Kill(syscall.Getpid(), syscall.SIGHUP) }
