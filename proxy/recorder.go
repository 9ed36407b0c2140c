package proxy

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"
)

// recorder wraps the ResponseWriter to learn the status and size for the
// access log and metrics. It passes Flush and Hijack through, and Unwrap
// gives http.ResponseController the rest.
type recorder struct {
	w           http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func newRecorder(w http.ResponseWriter) *recorder {
	r := recorders.Get().(*recorder)
	*r = recorder{w: w}
	return r
}

func (r *recorder) release() {
	r.w = nil
	recorders.Put(r)
}

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.wroteHeader, r.status = true, code
	}
	r.w.WriteHeader(code)
}

// writeHeaderKept is WriteHeader from a handler that changes the header
// map no more until it returns (trailers included), passed on to a
// writer that can use it: Edge's HTTP/2 server then writes the answer's
// fields from the map instead of a copy (internal/h2srv
// WriteHeaderKept).
func (r *recorder) writeHeaderKept(code int) {
	kw, ok := r.w.(interface{ WriteHeaderKept(int) })
	if !ok {
		r.WriteHeader(code)
		return
	}
	if !r.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.wroteHeader, r.status = true, code
	}
	kw.WriteHeaderKept(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.wroteHeader, r.status = true, http.StatusOK
	}
	n, err := r.w.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	if !r.wroteHeader {
		r.wroteHeader, r.status = true, http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

// requestIDs makes request ids: a random prefix per process and a counter,
// unique across nodes and restarts, cheap to make.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() requestIDs {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return requestIDs{prefix: hex.EncodeToString(b[:])}
}

// next gives req its id, written into req's own buffer: no allocation.
// req.idBuf is never written again, so the string stays valid.
func (g *requestIDs) next(req *request) {
	out := append(req.idBuf[:0], g.prefix...)
	out = append(out, '-')
	out = strconv.AppendUint(out, g.n.Add(1), 36)
	req.setID(unsafe.String(&out[0], len(out)))
}
