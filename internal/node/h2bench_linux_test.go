package node

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkH2CacheHit: a 100-byte cache hit over HTTP/2 through the whole
// node (TLS listener, Go's HTTP/2 server, the proxy and cache handlers,
// the access log) on a real loopback socket, 10 streams at a time on one
// connection. ns/op and allocs/op include the client's share; cpu-ns/op
// is the process's CPU time (user and system) per request, steadier than
// ns/op on a shared machine.
func BenchmarkH2CacheHit(b *testing.B) { benchH2(b, true) }

// BenchmarkH2Proxy: BenchmarkH2CacheHit's request to a property without
// the cache: every request goes to the origin (an httptest server in the
// same process, whose CPU time is counted too).
func BenchmarkH2Proxy(b *testing.B) { benchH2(b, false) }

func benchH2(b *testing.B, cached bool) {
	body := strings.Repeat("x", 100)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	b.Cleanup(origin.Close)
	n := runTestNodeReady(b, "", map[string]string{"c.yaml": fmt.Sprintf(
		"hostnames: [c.example]\norigins: [{url: %s}]\ntls: {certificate: c}\ncache: {enabled: %t}\n", origin.URL, cached)}, nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "c.example", InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	url := "https://" + n.addrs.HTTPS + "/small"
	get := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = "c.example"
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, err
	}
	for i := range 2 {
		resp, err := get()
		if err != nil {
			b.Fatal(err)
		}
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			b.Fatalf("%s %d", resp.Proto, resp.StatusCode)
		}
		if cs := resp.Header.Get("Cache-Status"); cached && i == 1 && !strings.Contains(cs, "hit") {
			b.Fatalf("second request: Cache-Status %q, want a hit", cs)
		}
	}
	b.ReportAllocs()
	b.SetParallelism((10 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)) // about 10 streams
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
