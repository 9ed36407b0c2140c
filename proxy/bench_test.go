package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// BenchmarkProxyPath measures the edge's own work per proxied request: the
// handler is called in-process (no client socket), the origin is a
// keep-alive loopback server answering 100 bytes.
func BenchmarkProxyPath(b *testing.B) {
	body := strings.Repeat("x", 100)
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer o.Close()
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("hostnames: [b.example]\norigins: [{url: "+o.URL+"}]\n"), 0o644)
	tab, err := property.LoadDir(dir, nil, property.Options{})
	if err != nil || len(tab.Problems()) > 0 {
		b.Fatal(err, tab.Problems())
	}
	for _, tc := range []struct {
		name     string
		access   bool
		inMemory bool
	}{{"origin=loopback/accesslog=off", false, false}, {"origin=loopback/accesslog=on", true, false},
		{"origin=memory/accesslog=on", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(Config{AccessLog: tc.access, Logger: zap.New(discardCore())})
			defer s.Close()
			s.Update(tab)
			if tc.inMemory {
				// Only the edge's own work and allocations: the origin
				// answers from memory.
				s.routes.Load().sites[tab.Lookup("b.example")].origins[0].rt = memoryOrigin(body)
			}
			h := s.HTTPHandler()
			req := httptest.NewRequest("GET", "http://b.example/x", nil)
			req.RemoteAddr = "192.0.2.1:1234"
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := discardWriter{h: http.Header{}}
				h.ServeHTTP(&w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// BenchmarkHostRouting measures Host normalisation and lookup with 100,000
// hostnames.
func BenchmarkHostRouting(b *testing.B) {
	files := make([]property.Loaded, 0, 100_000)
	for i := range 100_000 {
		p := &property.Property{Name: "p" + strconv.Itoa(i), File: "p" + strconv.Itoa(i) + ".yaml", Hostnames: []string{"host" + strconv.Itoa(i) + ".example"}}
		files = append(files, property.Loaded{File: p.File, Property: p})
	}
	tab := property.Build(files, nil, property.Options{})
	hosts := []string{"host1.example", "host50000.example:80", "HOST99999.example", "missing.example"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h, _ := requestHost(hosts[i&3])
		_ = tab.Lookup(h)
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int)   { w.code = c }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return len(p), nil
}

// memoryOrigin answers every request with body, without a socket.
type memoryOrigin string

func (m memoryOrigin) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header:        http.Header{"Content-Type": {"text/plain"}, "Content-Length": {strconv.Itoa(len(m))}},
		ContentLength: int64(len(m)), Body: io.NopCloser(strings.NewReader(string(m)))}, nil
}
