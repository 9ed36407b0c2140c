package node

import "context"

// Addrs are the addresses the node's listeners are bound to (HTTP3, UDP:
// "" when HTTP/3 is off).
type Addrs struct{ HTTP, HTTPS, Admin, HTTP3 string }

type readyKey struct{}

// WithReady returns a context that, given to Run, has fn told the bound
// addresses once the node serves (tests use it to learn the ports the OS
// picked).
func WithReady(ctx context.Context, fn func(Addrs)) context.Context {
	return context.WithValue(ctx, readyKey{}, fn)
}
