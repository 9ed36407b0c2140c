package h2srv

// The DATA path (h2big): big body Writes that take no body buffer
// (writeBodyDirect), and DATA frames on both of the serve goroutine's
// write paths. Bodies must arrive byte-exact at every
// size around a frame or buffer edge, however the handler writes them,
// and no stream may see bytes a handler changed after its Write returned
// (its buffer reused, as a pooled copy buffer is by the next stream).

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// roomConn is a server connection that tells the server its writes never
// block (a writeRoomer, as Edge's batchConn is): frames then go the
// serve goroutine's synchronous way (writeWontBlock).
type roomConn struct{ net.Conn }

func (roomConn) WriteRoom() int { return 1 << 30 }

// NotifyRoom: there is always room.
func (roomConn) NotifyRoom(f func()) { f() }

var _ writeRoomer = roomConn{} // else the server would not see it as one, silently

// serveH2C serves h on a loopback listener, each connection wrapped by
// wrap, and returns a real HTTP/2 client (x/net's Transport, h2c prior
// knowledge) for it and the base URL.
func serveH2C(t *testing.T, h http.Handler, wrap func(net.Conn) net.Conn) (*http.Client, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				(&Server{}).ServeConn(wrap(c), &ServeConnOpts{Handler: h, BaseConfig: &http.Server{}})
				c.Close()
			}()
		}
	}()
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("ServeConn did not return 5 s after its connection closed")
		}
	})
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, "http://" + ln.Addr().String()
}

// bodySizes are the sizes around the handler's body buffer (4 KiB), a
// DATA frame (16 KiB), the proxy's copy buffer (32 KiB), the initial
// flow-control window (64 KiB) and the load test's 100 KiB.
func bodySizes() []int {
	var sizes []int
	for _, edge := range []int{0, 1, handlerChunkWriteSize, 16 << 10, 16<<10 + handlerChunkWriteSize, 32 << 10, 64<<10 - 1, 64 << 10, 100 << 10, 3 * 16 << 10} {
		for _, d := range []int{-1, 0, 1} {
			if edge+d >= 0 {
				sizes = append(sizes, edge+d)
			}
		}
	}
	return sizes
}

// pattern is n bytes that differ for every stream and position.
func pattern(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// writeIn writes body in pieces of the given sizes (the last repeated).
func writeIn(w http.ResponseWriter, body []byte, pieces []int) {
	for i := 0; len(body) > 0; i++ {
		n := pieces[min(i, len(pieces)-1)]
		n = min(n, len(body))
		w.Write(body[:n])
		body = body[n:]
	}
}

var writePatterns = map[string][]int{
	"one":      {1 << 30},               // a cache hit: the whole body at once
	"32k":      {32 << 10},              // the proxy's copy
	"small":    {1000},                  // through the body buffer
	"mixed":    {10, 20 << 10, 4095, 1}, // buffered, then past the buffer, ...
	"exact4k":  {handlerChunkWriteSize},
	"over4k":   {handlerChunkWriteSize + 1, 7},
	"16k9":     {16<<10 + 9},
	"frame":    {16 << 10},
	"bigfirst": {40 << 10, 100},
}

// TestH2BodiesByteExactAroundEdges: every size around a buffer or frame
// edge, written in each pattern, arrives byte-exact through a real
// HTTP/2 client, on a plain connection (x/net's write paths) and on one
// that tells its write room (the serve goroutine writes DATA frames
// itself). Streams run concurrently on few
// connections, so their frames interleave.
func TestH2BodiesByteExactAroundEdges(t *testing.T) {
	for _, kind := range []string{"plain", "room"} {
		t.Run(kind, func(t *testing.T) {
			wrap := func(c net.Conn) net.Conn { return c }
			if kind == "room" {
				wrap = func(c net.Conn) net.Conn { return roomConn{c} }
			}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.URL.Query().Get("n"))
				seed, _ := strconv.ParseInt(r.URL.Query().Get("seed"), 10, 64)
				if r.URL.Query().Get("cl") == "1" {
					w.Header().Set("Content-Length", strconv.Itoa(n))
				}
				writeIn(w, pattern(seed, n), writePatterns[r.URL.Query().Get("p")])
			})
			client, base := serveH2C(t, h, wrap)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 24)
			seed := int64(0)
			for p := range writePatterns {
				for _, n := range bodySizes() {
					for _, cl := range []string{"0", "1"} {
						seed++
						wg.Add(1)
						sem <- struct{}{}
						go func(p string, n int, cl string, seed int64) {
							defer wg.Done()
							defer func() { <-sem }()
							url := fmt.Sprintf("%s/?n=%d&p=%s&cl=%s&seed=%d", base, n, p, cl, seed)
							got, ok := getBody(t, client, url)
							if !ok {
								return
							}
							if want := pattern(seed, n); string(got) != string(want) {
								t.Errorf("pattern %s, %d bytes, content-length %s: got %d bytes, not the handler's (first difference at %d)", p, n, cl, len(got), firstDiff(got, want))
							}
						}(p, n, cl, seed)
					}
				}
			}
			wg.Wait()
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestH2BodyBufferNotSharedAcrossStreams (attack: a handler's body bytes
// read by the connection after its Write returned or after it finished,
// when the buffer they were in already holds another stream's answer:
// the proxy's pooled copy buffer, the pooled 4 KiB body buffer). Each
// handler writes from one buffer and scribbles over it as soon as each
// Write returns and again once it has returned (its buffer handed to the
// next stream); many streams on few connections, every size class (final
// frame from the body buffer, frames written from the handler's buffer
// on the serve goroutine, frames past the flow-control window). Every
// answer must hold only its own bytes.
func TestH2BodyBufferNotSharedAcrossStreams(t *testing.T) {
	for _, kind := range []string{"plain", "room"} {
		t.Run(kind, func(t *testing.T) {
			wrap := func(c net.Conn) net.Conn { return c }
			if kind == "room" {
				wrap = func(c net.Conn) net.Conn { return roomConn{c} }
			}
			var pool sync.Pool
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.URL.Query().Get("n"))
				seed, _ := strconv.ParseInt(r.URL.Query().Get("seed"), 10, 64)
				piece, _ := strconv.Atoi(r.URL.Query().Get("piece"))
				body := pattern(seed, n)
				bp, _ := pool.Get().(*[]byte)
				if bp == nil {
					b := make([]byte, 32<<10)
					bp = &b
				}
				buf := *bp
				for len(body) > 0 {
					k := copy(buf[:min(piece, len(buf))], body)
					body = body[k:]
					w.Write(buf[:k])
					for i := range buf[:k] {
						buf[i] = 'X' // the next use of the buffer
					}
				}
				pool.Put(bp)
			})
			client, base := serveH2C(t, h, wrap)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 40)
			for i := range 400 {
				n := []int{100, 4000, 4096, 9000, 20000, 70000, 102400}[i%7]
				piece := []int{32 << 10, 1000, 16 << 10, 4096, 5000}[i%5]
				wg.Add(1)
				sem <- struct{}{}
				go func(i, n, piece int) {
					defer wg.Done()
					defer func() { <-sem }()
					url := fmt.Sprintf("%s/?n=%d&piece=%d&seed=%d", base, n, piece, 1000+i)
					got, ok := getBody(t, client, url)
					if !ok {
						return
					}
					if want := pattern(int64(1000+i), n); string(got) != string(want) {
						t.Errorf("%d bytes in pieces of %d: got %d bytes, another stream's or a reused buffer's from byte %d", n, piece, len(got), firstDiff(got, want))
					}
				}(i, n, piece)
			}
			wg.Wait()
		})
	}
}

// TestH2BigWriteTakesNoBodyBuffer: a body Write larger than the 4 KiB
// body buffer, from a handler holding none, goes out without taking one
// (500 streams writing cache hits held 2 MB of them); a small Write
// still takes it, and an error of a direct Write sticks, as bufio's does.
func TestH2BigWriteTakesNoBodyBuffer(t *testing.T) {
	big := pattern(7, 20000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rws := w.(*responseWriter).rws
		w.Write(big)
		if rws.bw != nil {
			t.Error("a Write past the body buffer's size took a body buffer")
		}
		w.Write([]byte("tail"))
		if rws.bw == nil {
			t.Error("a small Write took no body buffer")
		}
	})
	client, base := serveH2C(t, h, func(c net.Conn) net.Conn { return roomConn{c} })
	res, err := client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := string(big) + "tail"; string(got) != want {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}

	// A stream the client reset: the direct Write fails, and so does
	// every Write after it, without a body buffer taken.
	reset := make(chan struct{})
	errs := make(chan [2]error, 1)
	h2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rws := w.(*responseWriter).rws
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-reset
		<-r.Context().Done()
		_, e1 := w.Write(big)
		_, e2 := w.Write([]byte("x"))
		if rws.bw != nil {
			t.Error("a Write after a failed direct one took a body buffer")
		}
		errs <- [2]error{e1, e2}
	})
	client2, base2 := serveH2C(t, h2, func(c net.Conn) net.Conn { return roomConn{c} })
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base2+"/", nil)
	res, err = client2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel() // the client resets the stream
	res.Body.Close()
	close(reset)
	e := <-errs
	if e[0] == nil || e[1] == nil {
		t.Fatalf("Writes to a reset stream: %v, then %v; want errors", e[0], e[1])
	}
	if e[1] != e[0] {
		t.Errorf("the error did not stick: %v, then %v", e[0], e[1])
	}
}

// getBody GETs url and reads its body whole; it reports an error (as
// Errorf: callers run on goroutines of their own) and false when either
// fails.
func getBody(t *testing.T, client *http.Client, url string) ([]byte, bool) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Errorf("%s: %v", url, err)
		return nil, false
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Errorf("%s: body: %v", url, err)
		return nil, false
	}
	return got, true
}
