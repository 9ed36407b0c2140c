package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/h1"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/internal/yamlfield"
	"go.uber.org/zap"
)

// TestTLSFrontSplitsByALPN: on the HTTPS front, a client that chose h2 is
// served by Go's HTTP/2 server, one that chose http/1.1 by internal/h1;
// both get the TLS state, and the drainer counts only the HTTP/1 one
// (the h2 mark made during the handshake survives both servers' hooks).
func TestTLSFrontSplitsByALPN(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	defer ts.Close()
	conf := ts.TLS.Clone()
	conf.NextProtos = []string{"h2", "http/1.1"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, r.Proto)
	})
	h2 := &http.Server{Handler: h, TLSConfig: conf, ReadHeaderTimeout: 5 * time.Second}
	h2.Protocols = new(http.Protocols)
	h2.Protocols.SetHTTP1(true)
	h2.Protocols.SetHTTP2(true)
	f := newTLSFront(h2, &h1.Server{ReadHeaderTimeout: 5 * time.Second})
	d := newDrainer()
	d.watch(f)
	f.shareHooks(h2.Handler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- f.Serve(ln) }()

	for _, tc := range []struct{ proto, want string }{{"h2", "HTTP/2.0"}, {"http/1.1", "HTTP/1.1"}} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{tc.proto}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if tc.proto == "h2" {
			tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
			client := &http.Client{Transport: tr}
			resp, err := client.Get("https://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != tc.want {
				t.Errorf("h2 client: %q, want %q", b, tc.want)
			}
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != tc.want {
			t.Errorf("%s client: %q, want %q", tc.proto, b, tc.want)
		}
	}
	// Open now: the idle h2 connection of the first tls.Dial (marked h2,
	// not counted), the transport's h2 connection, and the HTTP/1.1 one.
	testutil.WaitFor(t, "two connections marked h2, one HTTP/1 counted", func() bool {
		d.mu.Lock()
		h2s := 0
		for _, ci := range d.conns {
			if ci.h2 {
				h2s++
			}
		}
		d.mu.Unlock()
		return h2s == 2 && d.http1() == 1
	}, func() string { return "" })
	f.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// testTLSFront is a tlsFront serving h with a test certificate, watched
// by a drainer, on a loopback listener.
func testTLSFront(t *testing.T, h http.Handler, readHeader time.Duration, opts ...func(*tlsFront)) (*node, *tlsFront, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return testTLSFrontOn(t, ln, h, readHeader, opts...)
}

// testTLSFrontOn is testTLSFront on ln.
func testTLSFrontOn(t *testing.T, ln net.Listener, h http.Handler, readHeader time.Duration, opts ...func(*tlsFront)) (*node, *tlsFront, net.Listener) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	conf := ts.TLS.Clone()
	ts.Close()
	conf.NextProtos = []string{"h2", "http/1.1"}
	n := &node{cfg: &config.Config{}, log: zap.NewNop(), drain: newDrainer()}
	n.cfg.Limits.ShutdownTimeout = yamlfield.Duration(10 * time.Second)
	h2 := &http.Server{Handler: h, TLSConfig: conf, ReadHeaderTimeout: readHeader}
	h2.Protocols = new(http.Protocols)
	h2.Protocols.SetHTTP1(true)
	h2.Protocols.SetHTTP2(true)
	f := newTLSFront(h2, &h1.Server{ReadHeaderTimeout: readHeader})
	for _, o := range opts {
		o(f)
	}
	n.drain.watch(f)
	f.shareHooks(h2.Handler)
	served := make(chan struct{})
	go func() { defer close(served); f.Serve(ln) }()
	t.Cleanup(func() { f.Close(); <-served })
	return n, f, ln
}

// TestTLSFrontSlowHandshakeCut: a client that opens a connection and
// never finishes its handshake (slowloris on TLS) is cut at the read
// header timeout, as Go's server bounds a handshake.
func TestTLSFrontSlowHandshakeCut(t *testing.T) {
	t.Parallel()
	_, _, ln := testTLSFront(t, http.NotFoundHandler(), 200*time.Millisecond)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "\x16\x03\x01") // the start of a ClientHello, then nothing
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the stalled handshake was not cut by the server: %v", err)
	}
}

// TestTLSFrontDrainFinishesHandshake: a connection accepted before the
// old process of an upgrade stops accepting, whose TLS handshake and
// request come after, is answered (its handshake is finished, not cut).
func TestTLSFrontDrainFinishesHandshake(t *testing.T) {
	t.Parallel()
	n, f, ln := testTLSFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answered")
	}), 10*time.Second)
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	testutil.WaitFor(t, "the connection accepted", func() bool { return n.drain.http1() == 1 }, func() string { return "" })
	var lns [2]net.Listener
	for i := range lns {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = l
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.shutdown(context.Background(), []server{f}, &listeners{http: lns[0], https: ln, admin: lns[1]}, nil, false)
	}()
	testutil.WaitFor(t, "the listener closed", func() bool {
		c2, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c2.Close()
		}
		return err != nil
	}, func() string { return "" })
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"); err != nil {
		t.Fatalf("the handshake of a connection accepted before the stop failed: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the request of a connection accepted before the stop was not answered: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "answered" || !resp.Close {
		t.Errorf("%d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	<-done
}

// tlsGet makes one HTTP/1.1 request on a new TLS connection and returns
// the answer's body; the connection is closed after it.
func tlsGet(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Error(err)
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Error(err)
		return ""
	}
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// goroutineID is the id of the calling goroutine, from its stack's first
// line ("goroutine 42 [running]:").
func goroutineID() string {
	var buf [64]byte
	f := strings.Fields(string(buf[:runtime.Stack(buf[:], false)]))
	return f[1]
}

// TestTLSFrontReusesWorker: a connection that comes after another ended
// is served by the same goroutine (its stack already grown by a
// handshake, not copied again), and Shutdown returns only once the
// waiting worker left.
func TestTLSFrontReusesWorker(t *testing.T) {
	t.Parallel()
	_, f, ln := testTLSFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, goroutineID())
	}), 10*time.Second)
	first := tlsGet(t, ln.Addr().String())
	testutil.WaitFor(t, "the worker waiting for a connection", func() bool { return f.idle.Load() == 1 }, func() string { return "" })
	if second := tlsGet(t, ln.Addr().String()); second != first {
		t.Errorf("second connection served by goroutine %s, the first by %s", second, first)
	}
	testutil.WaitFor(t, "the worker waiting again", func() bool { return f.idle.Load() == 1 }, func() string { return "" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.live.Load(); n != 0 {
		t.Errorf("%d workers after Shutdown returned", n)
	}
}

// TestTLSFrontConnectionFloodLeavesBoundedWorkers is the attack "open many
// connections at once, then close them all": the goroutines that served
// them do not all stay; at most maxIdle wait for more.
func TestTLSFrontConnectionFloodLeavesBoundedWorkers(t *testing.T) {
	t.Parallel()
	const conns = 12
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(conns)
	_, f, ln := testTLSFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release // all connections are served at once
		io.WriteString(w, "ok")
	}), 10*time.Second, func(f *tlsFront) { f.maxIdle = 3; f.idleFor = time.Hour })
	var done sync.WaitGroup
	for range conns {
		done.Add(1)
		go func() {
			defer done.Done()
			if b := tlsGet(t, ln.Addr().String()); b != "ok" {
				t.Errorf("answer %q", b)
			}
		}()
	}
	arrived.Wait()
	if n := f.live.Load(); n != conns {
		t.Errorf("%d workers for %d connections served at once", n, conns)
	}
	close(release)
	done.Wait()
	testutil.WaitFor(t, "maxIdle workers left", func() bool { return f.live.Load() == 3 }, func() string { return fmt.Sprint(f.live.Load()) })
}

// TestTLSFrontIdleWorkerRetires: a worker that gets no connection for
// idleFor leaves.
func TestTLSFrontIdleWorkerRetires(t *testing.T) {
	t.Parallel()
	_, f, ln := testTLSFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), 10*time.Second, func(f *tlsFront) { f.idleFor = 50 * time.Millisecond })
	if b := tlsGet(t, ln.Addr().String()); b != "ok" {
		t.Fatalf("answer %q", b)
	}
	testutil.WaitFor(t, "the idle worker retired", func() bool { return f.live.Load() == 0 }, func() string { return fmt.Sprint(f.live.Load()) })
}
