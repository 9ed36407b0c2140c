package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// bodyBytes is the body of n bytes an origin of these tests sends: each
// byte depends on its offset and on tag, so a byte lost, repeated, moved
// or taken from another response shows.
func bodyBytes(tag byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte((i*7+int(tag))%26)
	}
	return b
}

// sizedOrigin answers GET /<head>/<body>[/<tag>] with a response head of
// exactly head bytes (status line, Content-Length, an X-Pad field filling
// the rest, the blank line) and a body of body bytes (bodyBytes), in one
// write: the head and the first of the body arrive in one read.
func sizedOrigin(t *testing.T) *rawOrigin {
	return newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		head, _ := strconv.Atoi(parts[0])
		body, _ := strconv.Atoi(parts[1])
		tag := byte(0)
		if len(parts) > 2 {
			tag = parts[2][0]
		}
		c.Write(sizedResponse(head, body, tag))
	})
}

func sizedResponse(head, body int, tag byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Pad: ", body)
	pad := head - b.Len() - len("\r\n\r\n")
	b.Write(bytes.Repeat([]byte{'p'}, max(pad, 1)))
	b.WriteString("\r\n\r\n")
	b.Write(bodyBytes(tag, body))
	return b.Bytes()
}

// TestOriginHeadSizesAroundReadBuffer: response heads below, at and above
// the origin read buffer's size (4 KiB), up to maxResponseHead, each with
// bodies of every size class (none, in the head's read, more than the
// buffer, larger than the copy buffer), arrive whole: the head's field
// intact, the body byte for byte. A head the buffer cannot hold goes to
// Go's parser, which reads it across refills.
func TestOriginHeadSizesAroundReadBuffer(t *testing.T) {
	o := sizedOrigin(t)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	heads := []int{100, 1 << 10, 4<<10 - 1, 4 << 10, 4<<10 + 1, 8 << 10, 64 << 10, maxResponseHead - 4<<10, maxResponseHead}
	bodies := []int{0, 1, 100, 4<<10 - 200, 4 << 10, 33 << 10, 100 << 10}
	for _, head := range heads {
		for _, body := range bodies {
			r := e.do("GET", "a.example", fmt.Sprintf("/%d/%d", head, body), nil)
			got := readBody(t, r)
			if r.StatusCode != 200 {
				t.Fatalf("head %d, body %d: %d", head, body, r.StatusCode)
			}
			if want := head - len(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Pad: \r\n\r\n", body)); len(r.Header.Get("X-Pad")) != want {
				t.Fatalf("head %d, body %d: X-Pad of %d bytes", head, body, len(r.Header.Get("X-Pad")))
			}
			if got != string(bodyBytes(0, body)) {
				t.Fatalf("head %d, body %d: body of %d bytes differs", head, body, len(got))
			}
		}
	}
	// Over the bound: refused, as TestOversizedResponseHead. (The bound
	// counts from the end of the first read, which may bring up to one
	// buffer more: a head of maxResponseHead + 1 passes.)
	r := e.do("GET", "a.example", fmt.Sprintf("/%d/%d", maxResponseHead+8<<10, 10), nil)
	readBody(t, r)
	if r.StatusCode != 502 {
		t.Errorf("head of maxResponseHead + 8 KiB: %d, want 502", r.StatusCode)
	}
}

// TestReusedReadBufferLeaksNoDataAcrossRequests (attack: cross-request
// data leak through a pooled buffer): origin read buffers are shared by
// every property's connections through one pool. Clients of property a
// (a secret answer, in every size class) and of property b run at once;
// b's origin also answers some requests with a body shorter than its
// Content-Length and then closes. No client may ever see bytes of
// another response: a buffer used after its return to the pool (by a
// body still reading from it, or a connection put back while holding it)
// would hand one response's bytes to another, and -race reports the
// shared use.
func TestReusedReadBufferLeaksNoDataAcrossRequests(t *testing.T) {
	secret := sizedOrigin(t)
	other := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		if strings.HasPrefix(r.URL.Path, "/short/") {
			// Promises 4000 bytes, sends 10, closes: the client must get
			// an error or those 10, never anything of the rest.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n")
			c.Write(bodyBytes('b', 10))
			c.Close()
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		body, _ := strconv.Atoi(parts[1])
		c.Write(sizedResponse(120, body, 'b'))
	})
	e := newEdge(t, Config{}, map[string]string{
		"a.yaml": prop("a.example", "{url: "+secret.url()+"}"),
		"b.yaml": prop("b.example", "{url: "+other.url()+"}"),
	})
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(host, path string) (int, []byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url+path, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	sizes := []int{0, 10, 100, 3000, 4<<10 - 120, 4 << 10, 20 << 10, 100 << 10}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	report := func(s string) {
		select {
		case errs <- s:
		default:
		}
	}
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				size := sizes[(i+w)%len(sizes)]
				if w%2 == 0 {
					code, b, err := get("a.example", fmt.Sprintf("/%d/%d/s", 200+i*37, size))
					if err != nil || code != 200 || !bytes.Equal(b, bodyBytes('s', size)) {
						report(fmt.Sprintf("a, %d bytes: %d %v, body of %d bytes differs", size, code, err, len(b)))
					}
					continue
				}
				if i%4 == 0 {
					_, b, _ := get("b.example", "/short/x")
					// Whatever arrived is a prefix of the 10 bytes sent.
					if want := bodyBytes('b', 10); len(b) > len(want) || !bytes.Equal(b, want[:len(b)]) {
						report(fmt.Sprintf("b, short body: got %q", b))
					}
					continue
				}
				code, b, err := get("b.example", fmt.Sprintf("/120/%d", size))
				if err != nil || code != 200 || !bytes.Equal(b, bodyBytes('b', size)) {
					report(fmt.Sprintf("b, %d bytes: %d %v, body of %d bytes differs", size, code, err, len(b)))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
}

// TestOriginConnHoldsReadBufferOnlyForTheAnswer: a connection taken from
// the pool for a request, new or reused, has its write buffer and no read
// buffer: the read buffer is lent when the answer is read (after sendRaw
// waited for it), so an exchange waiting on a slow origin holds 4 KiB
// less (issue 22: 500 proxied HTTP/2 streams held 1.6 MB of them). An idle
// connection holds neither.
func TestOriginConnHoldsReadBufferOnlyForTheAnswer(t *testing.T) {
	o := sizedOrigin(t)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	r := e.do("GET", "a.example", "/100/10", nil)
	if b := readBody(t, r); r.StatusCode != 200 || b != string(bodyBytes(0, 10)) {
		t.Fatalf("%d %q", r.StatusCode, b)
	}
	pool := e.srv.builtSite("a").origins[0].pool
	// The edge puts the connection back after the client has its answer.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		pool.mu.Lock()
		n := len(pool.idle)
		pool.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections, want 1", n)
		}
	}
	pool.mu.Lock()
	idle := pool.idle[0]
	pool.mu.Unlock()
	if idle.br != nil || idle.bw != nil {
		t.Fatalf("idle connection holds buffers: read %v, write %v", idle.br != nil, idle.bw != nil)
	}
	for _, name := range []string{"reused", "new"} {
		var c *upConn
		var err error
		if name == "reused" {
			c, err = pool.get(context.Background(), true)
		} else {
			c, err = pool.dialConn(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.br != nil || c.bw == nil {
			t.Errorf("%s connection for a request: read buffer %v, write buffer %v; want none, one", name, c.br != nil, c.bw != nil)
		}
		c.nc.Close()
	}
}

// TestSendRawReturnsWriteBufferBeforeTheWait: sendRaw writes the request
// and waits for the answer in one step; the write buffer that held the
// request goes back once it is written, so the wait (most of an
// exchange's life) holds neither buffer. The answer is then read whole.
func TestSendRawReturnsWriteBufferBeforeTheWait(t *testing.T) {
	o := sizedOrigin(t)
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
	readBody(t, e.do("GET", "a.example", "/100/1", nil)) // the site is built on first use
	pool := e.srv.builtSite("a").origins[0].pool
	c, err := pool.dialConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	if !c.rawCapable() {
		t.Skip("no raw send on this platform")
	}
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	c.bw.WriteString("GET /100/50 HTTP/1.1\r\nHost: a.example\r\n\r\n")
	if wrote, err := c.sendRaw(); !wrote || err != nil {
		t.Fatalf("sendRaw: wrote %v, %v", wrote, err)
	}
	if c.bw != nil {
		t.Error("the write buffer is still held after the request was written")
	}
	c.takeReadBuffer()
	if _, err := c.br.Peek(1); err != nil {
		t.Fatal(err)
	}
	resp, err := c.readResponse(&http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(b, bodyBytes(0, 50)) {
		t.Errorf("answer: %q %v", b, err)
	}
}
