package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestH2BatchedAnswersStayWhole: many streams at once on one HTTP/2
// connection, answers of many sizes; each stream gets its own answer,
// whole, whatever the writer put together in one write.
func TestH2BatchedAnswersStayWhole(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Query().Get("n"), "%d", &n)
		w.Header().Set("X-Path", r.URL.RequestURI())
		io.WriteString(w, strings.Repeat(r.URL.RequestURI()+";", n))
	}))
	t.Cleanup(origin.Close)
	n := runTestNode(t, "", map[string]string{"b.yaml": fmt.Sprintf(
		"hostnames: [b.example]\norigins: [{url: %s}]\ntls: {certificate: b}\n", origin.URL)})
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "b.example", InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Go(func() {
			for i := range 10 {
				uri := fmt.Sprintf("/g%d/i%d?n=%d", g, i, (g*7+i*13)%300)
				req, _ := http.NewRequest("GET", "https://"+n.addrs.HTTPS+uri, nil)
				req.Host = "b.example"
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var want int
				fmt.Sscanf(uri[strings.Index(uri, "n=")+2:], "%d", &want)
				if err != nil || resp.ProtoMajor != 2 || resp.Header.Get("X-Path") != uri || string(body) != strings.Repeat(uri+";", want) {
					t.Errorf("%s: %s %v, X-Path %q, body %d bytes %.40q…", uri, resp.Proto, err, resp.Header.Get("X-Path"), len(body), body)
					return
				}
			}
		})
	}
	wg.Wait()
}

// tlsPair is a TLS connection: the server's side, and the client's,
// which the test reads (or does not). Over loopback TCP, or over
// net.Pipe when the test needs a peer whose not reading blocks the
// server's first write, not one a socket buffer later.
func tlsPair(t *testing.T, pipe bool) (*tls.Conn, *tls.Conn) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"b.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	var a, b net.Conn
	if pipe {
		a, b = net.Pipe()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if b, err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		if a, err = ln.Accept(); err != nil {
			t.Fatal(err)
		}
	}
	if !pipe {
		a = &holdConn{Conn: a} // as the HTTPS front has it
	}
	sc := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}})
	cc := tls.Client(b, &tls.Config{InsecureSkipVerify: true})
	t.Cleanup(func() { sc.Close(); cc.Close() })
	errc := make(chan error, 1)
	go func() { errc <- sc.Handshake() }()
	cc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	cc.SetDeadline(time.Time{})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return sc, cc
}

// TestBatchConnCloseDeliversWhatWasWritten: what the HTTP/2 server wrote
// just before closing (its last answers, a GOAWAY) reaches the peer.
func TestBatchConnCloseDeliversWhatWasWritten(t *testing.T) {
	sc, cc := tlsPair(t, false)
	b := newBatchConn(sc)
	var want strings.Builder
	for i := range 1000 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	read := make(chan string, 1)
	go func() {
		cc.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(cc) // to the close_notify
		read <- string(got)
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-read; got != want.String() {
		t.Errorf("peer read %d bytes, want %d", len(got), want.Len())
	}
	if _, err := b.Write([]byte("late")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// TestBatchConnSlowReadBounded: a client that never reads (slow read)
// holds at most batchLimit bytes waiting in the server; the Write that
// finds them waits, and Close still ends within drainTimeout, failing
// that Write.
func TestBatchConnSlowReadBounded(t *testing.T) {
	// On fake time: drainTimeout passes at once, and exactly.
	synctest.Test(t, func(t *testing.T) {
		sc, _ := tlsPair(t, true)
		b := newBatchConn(sc)
		chunk := make([]byte, 4<<10)
		written := make(chan error, 1)
		go func() {
			for {
				if _, err := b.Write(chunk); err != nil {
					written <- err
					return
				}
			}
		}()
		// The writer's first write waits for the peer, which never reads;
		// wait until the bytes waiting behind it reach the bound.
		for {
			b.mu.Lock()
			full := b.pending != nil && len(*b.pending) >= batchLimit
			b.mu.Unlock()
			if full {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b.mu.Lock()
		if n := len(*b.pending); n >= batchLimit+len(chunk) {
			t.Errorf("%d bytes waiting, want under %d", n, batchLimit+len(chunk))
		}
		b.mu.Unlock()
		start := time.Now()
		b.Close()
		if d := time.Since(start); d < drainTimeout || d > drainTimeout+5*time.Second {
			t.Errorf("Close took %v, want about drainTimeout (%v)", d, drainTimeout)
		}
		if err := <-written; err == nil {
			t.Error("the waiting Write succeeded")
		}
	})
}
