package node

import (
	"crypto/tls"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// bigPattern is n bytes that differ for every seed and position.
func bigPattern(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestH2BigBodiesByteExact: answers of every size around the HTTP/2
// copy buffer (16 KiB), a DATA frame, the HTTP/1.1 copy buffer (32 KiB),
// the flow-control window (64 KiB) and the load test's 100 KiB, proxied
// (with a Content-Length and chunked) and from the cache, many at once
// on each HTTP/2 connection through the node's TLS front: each arrives
// byte-exact.
//
// It is also the attack test TestH2ProxyCopyBufferNotSharedAcrossStreams
// would be: the copy buffers are pooled, so a stream whose buffer was
// handed on while its bytes were still to be written would carry the
// next stream's bytes; every stream's body is its own random bytes.
func TestH2BigBodiesByteExact(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		seed, _ := strconv.ParseInt(r.URL.Query().Get("seed"), 10, 64)
		if r.URL.Query().Get("cl") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		if r.URL.Query().Get("cache") == "1" {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		body := bigPattern(seed, n)
		for len(body) > 0 { // in pieces, so the edge reads them as they come
			k := min(len(body), 7000)
			w.Write(body[:k])
			body = body[k:]
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}))
	t.Cleanup(origin.Close)
	n := runTestNode(t, "", map[string]string{"b.yaml": fmt.Sprintf(
		"hostnames: [b.example]\norigins: [{url: %s}]\ntls: {certificate: b}\n", origin.URL)})
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "b.example", InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var sizes []int
	for _, e := range []int{1, 4 << 10, 16 << 10, 32 << 10, 48 << 10, 64 << 10, 100 << 10} {
		sizes = append(sizes, e-1, e, e+1)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 30)
	seed := int64(0)
	for round := range 2 { // the second round of cacheable ones is hits
		for _, size := range sizes {
			for _, kind := range []string{"cl=1", "cl=0", "cl=1&cache=1"} {
				seed++
				s := seed
				if kind == "cl=1&cache=1" {
					s = int64(size) // the same URL in both rounds
				}
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					uri := fmt.Sprintf("/x?n=%d&%s&seed=%d", size, kind, s)
					req, _ := http.NewRequest("GET", "https://"+n.addrs.HTTPS+uri, nil)
					req.Host = "b.example"
					resp, err := client.Do(req)
					if err != nil {
						t.Error(uri, err)
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					want := bigPattern(s, size)
					if err != nil || resp.ProtoMajor != 2 || string(body) != string(want) {
						diff := 0
						for diff < min(len(body), len(want)) && body[diff] == want[diff] {
							diff++
						}
						t.Errorf("round %d %s: %s %v, %d bytes of %d, first difference at %d", round, uri, resp.Proto, err, len(body), len(want), diff)
					}
				}()
			}
		}
		wg.Wait()
	}
}
