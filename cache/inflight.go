package cache

// Waiting is how many clients follow the fills in flight: the requests
// collapsed onto another's origin request, plus the requests that started
// them. It is a figure for operators (and for tests that must know that
// clients have joined a fill before its origin answers).
func (c *Cache) Waiting() int {
	c.fillsMu.Lock()
	fills := make([]*fill, 0, len(c.fills))
	for _, f := range c.fills {
		fills = append(fills, f)
	}
	c.fillsMu.Unlock()
	n := 0
	for _, f := range fills {
		f.mu.Lock()
		n += len(f.readers)
		f.mu.Unlock()
	}
	return n
}
