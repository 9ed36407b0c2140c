package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// BenchmarkProxyPath measures the edge's own work per proxied request: the
// handler is called in-process (no client socket), the origin is a
// keep-alive loopback server answering 100 bytes: an httptest server, or
// a canned one that allocates nothing, so that -benchmem counts the edge
// alone. The canned case makes 8 allocations per request (10 before the
// origin connection kept its header map, issue 22):
//   - 2 of the benchmark (its ResponseWriter and header map);
//   - 1 the header map's first insert (X-Request-Id; the server's map);
//   - 1 the request state (request: id and header value inside; a property
//     without a cache hands it to the upstream as an argument, with no
//     r.WithContext);
//   - 2 context.AfterFunc, so a client leaving unblocks the exchange (on
//     Edge's HTTP/1.x front its client-gone hook instead: none);
//   - 2 the origin's response head (fastResponse: its string and the
//     values; http.ReadResponse made 8).
//
// Pooled: the recorder, copy buffers, access-log lines, origin
// connections with their bufio buffers and response header map. The loopback case counts 31–32: the
// same 10, and about 21 of the httptest origin's own net/http server
// (its conn.serve and background read), which runs in the benchmark's
// process (a memory profile with -memprofilerate=1 shows them).
// cpu-ns/op is the process's CPU time per request (Linux): the edge's,
// the benchmark's and the origin's, which also run in it.
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
	raw := cannedOrigin(b, body)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("hostnames: [c.example]\norigins: [{url: http://"+raw+"}]\n"), 0o644)
	tab, err = property.LoadDir(dir, nil, property.Options{})
	if err != nil || len(tab.Problems()) > 0 {
		b.Fatal(err, tab.Problems())
	}
	for _, tc := range []struct {
		name   string
		access bool
		host   string
	}{{"origin=loopback/accesslog=off", false, "b.example"}, {"origin=loopback/accesslog=on", true, "b.example"},
		{"origin=canned/accesslog=off", false, "c.example"}, {"origin=canned/accesslog=on", true, "c.example"}} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(Config{AccessLog: tc.access, Logger: zap.New(discardCore())})
			defer s.Close()
			s.Update(tab)
			h := s.HTTPHandler()
			req := httptest.NewRequest("GET", "http://"+tc.host+"/x", nil)
			req.RemoteAddr = "192.0.2.1:1234"
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				w := discardWriter{h: http.Header{}}
				h.ServeHTTP(&w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
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

// cannedOrigin is a loopback origin that answers every request head with
// the same bytes, allocating nothing per request: -benchmem then counts
// the edge's allocations only. It returns its address.
func cannedOrigin(b *testing.B, body string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				go func() { <-b.Context().Done(); c.Close() }()
				buf := make([]byte, 64<<10)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						have = copy(buf, buf[i+4:have])
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// BenchmarkProxyPathH1 is BenchmarkProxyPath's canned case through Edge's
// HTTP/1.x front over a keep-alive loopback client connection: what a
// proxied miss costs end to end in one process (client, front, proxy and
// origin; allocs/op count them all, but the client and origin allocate
// nothing per request). 10 allocations per request (16 before issue 22's
// last round):
//   - 4 the front's request (internal/h1 fastParse: the head's string,
//     the Request, the header map and its table);
//   - 1 the front's per-request state (reqState: the ResponseWriter, the
//     URL, the request's context, the values of up to 8 fields);
//   - 2 the ResponseWriter's header map and its table (first insert:
//     X-Request-Id);
//   - 1 the request state;
//   - 2 the origin's response head (fastResponse: its string and values;
//     the header map is the origin connection's);
//   - under 1 of the access line's time text.
func BenchmarkProxyPathH1(b *testing.B) {
	body := strings.Repeat("x", 100)
	dir := b.TempDir()
	raw := cannedOrigin(b, body)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("hostnames: [c.example]\norigins: [{url: http://"+raw+"}]\n"), 0o644)
	tab, err := property.LoadDir(dir, nil, property.Options{})
	if err != nil || len(tab.Problems()) > 0 {
		b.Fatal(err, tab.Problems())
	}
	s := New(Config{AccessLog: true, Logger: zap.New(discardCore())})
	defer s.Close()
	s.Update(tab)
	addr := serveH1(b, s.HTTPHandler())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /x HTTP/1.1\r\nHost: c.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(c)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		// The head's lines, then the body (the client allocates nothing).
		for first := true; ; first = false {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if first && !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				b.Fatalf("%q", line)
			}
			if len(line) == 2 {
				break
			}
		}
		if _, err := br.Discard(len(body)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
