package node

import (
	"net/http"

	http2 "github.com/edge-cdn/edge/internal/h2srv"
)

// streamStack gives the handler of an HTTP/3 request a stack big enough
// for the whole request before it starts. quic-go's HTTP/3 server runs
// every stream on a new goroutine, whose stack starts at the runtime's
// average (a few KiB); a cache hit's deepest point (the access log's
// encoder) goes past it, and the runtime then copies the stack to one
// twice the size, adjusting every frame on it: 8-11 % of an HTTP/2 hit's
// CPU in the bench's profiles when Go's HTTP/2 server did the same
// (notes/h2hit.md). Growing it here, with only a few frames on the
// stack, costs less. HTTP/1.1 runs its requests on the connection's
// goroutine and HTTP/2 (internal/h2srv) on goroutines kept per
// connection, which keep the stack they grew: they are left alone (each
// HTTP/2 stream's 16 KiB, 8 MiB for 500 proxied streams, was most of
// that row's stacks; without it the row peaked 7 MiB lower and cost no
// more CPU).
func streamStack(next http.Handler) http.Handler { return stackGrower{next} }

type stackGrower struct{ next http.Handler }

func (g stackGrower) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 3 {
		growStack()
	}
	g.next.ServeHTTP(w, r)
}

// ServeInline runs on an HTTP/2 connection's serve goroutine, whose
// stack, grown once, stays: nothing to grow per request.
func (g stackGrower) ServeInline(w http.ResponseWriter, r *http.Request) bool {
	return serveInline(g.next, w, r)
}

// serveInline offers r to h's ServeInline (internal/h2srv's
// InlineHandler), if h has one.
func serveInline(h http.Handler, w http.ResponseWriter, r *http.Request) bool {
	ih, ok := h.(http2.InlineHandler)
	return ok && ih.ServeInline(w, r)
}

// stackReserve is the stack a request's handler may use without the
// runtime having to grow it again: a goroutine that starts with 8 KiB or
// less ends up with 16 KiB, which a cache hit or a proxied request fits.
const stackReserve = 8 << 10

// growStack has a stackReserve-byte frame: calling it makes the runtime
// grow the goroutine's stack to fit, once, while the stack is shallow.
//
//go:noinline
func growStack() {
	var pad [stackReserve]byte
	touchStack(pad[:])
}

//go:noinline
func touchStack(b []byte) { b[0] = 1 }
