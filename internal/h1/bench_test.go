package h1_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/h1"
)

// benchServe measures a keep-alive GET answered by a trivial handler over
// a real loopback socket; allocs/op count the server's too.
func benchServe(b *testing.B, serve func(net.Listener, http.Handler) func()) {
	benchServeBody(b, []byte("hello"), serve)
}

// benchServeBody is benchServe with a given body, declared as the cache
// declares a stored one (Content-Length, one Write).
func benchServeBody(b *testing.B, body []byte, serve func(net.Listener, http.Handler) func()) {
	clen := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if len(body) > 2048 {
			w.Header().Set("Content-Length", clen)
		}
		w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	stop := serve(ln, h)
	defer stop()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bench HTTP/1.1\r\nHost: a.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(c)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() {
		// The process's CPU time (server and client) per request: the
		// wall time of a loopback round trip mostly measures scheduling.
		b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) == 2 {
				break
			}
		}
		if _, err := br.Discard(len(body)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServeEdge(b *testing.B) {
	benchServe(b, func(ln net.Listener, h http.Handler) func() {
		s := &h1.Server{Handler: h}
		go s.Serve(ln)
		return func() { s.Close() }
	})
}

// BenchmarkServeEdge100KiB is a 100 KiB answer with a declared length,
// as a cache hit of issue 22's 100 KiB row.
func BenchmarkServeEdge100KiB(b *testing.B) {
	benchServeBody(b, bytes.Repeat([]byte("x"), 100<<10), func(ln net.Listener, h http.Handler) func() {
		s := &h1.Server{Handler: h}
		go s.Serve(ln)
		return func() { s.Close() }
	})
}

func BenchmarkServeGo(b *testing.B) {
	benchServe(b, func(ln net.Listener, h http.Handler) func() {
		s := &http.Server{Handler: h}
		go s.Serve(ln)
		return func() { s.Close() }
	})
}

var _ = io.Discard

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
