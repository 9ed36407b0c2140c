package h1

// rawWait: sendAndWait may write to the socket itself.
const rawWait = true

// sendWait, sendAndWait's function: on its first call it writes the held
// response and, all written, marks the connection idle and asks the
// runtime to wait for readability (false); a later call, after the wait,
// ends it. A write that is partial, would block or fails ends it at once.
func (c *conn) sendWait(fd uintptr) bool {
	if c.waiting {
		return true // woken: the next request (or the client's close) is there
	}
	if _, err := c.hw.WriteHeld(fd); err != nil {
		c.rawErr = err
		return true
	}
	if len(c.hw.Held) > 0 {
		return true // the rest by rwc.Write
	}
	c.hw.Held = nil
	// Idle for Shutdown from now; the ConnState hook is told after the
	// wait (sendAndWait): a hook run here, under the socket's read lock,
	// that closed the connection would never return.
	c.state.Store(stateIdle)
	c.waiting = true
	return false
}
