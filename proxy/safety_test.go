package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const okResp = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"

// TestLyingLengthsNeverReachTheNextRequest: an origin whose response
// carries more bytes than its Content-Length (at once or a moment later,
// as a second response) or whose chunked body is followed by more bytes:
// the next request on the edge is answered by the origin for real, never
// by the leftover bytes.
func TestLyingLengthsNeverReachTheNextRequest(t *testing.T) {
	smuggled := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"
	for name, first := range map[string]func(c net.Conn){
		"extra bytes at once": func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"+smuggled)
		},
		"extra bytes later": func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, smuggled)
		},
		"after a chunked body": func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"+smuggled)
		},
		"Content-Length and chunked": func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 80\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"+smuggled)
		},
	} {
		t.Run(name, func(t *testing.T) {
			o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
				if n == 1 {
					first(c)
					return
				}
				io.WriteString(c, okResp)
			})
			e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
			code, body, err := e.get("a.example", "/1")
			if err != nil || code != 200 || body != "hi" {
				t.Fatalf("first: %d %q %v", code, body, err)
			}
			time.Sleep(100 * time.Millisecond) // the late bytes have come
			for i := range 3 {
				code, body, err := e.get("a.example", "/2")
				if err != nil || body != "good" {
					t.Fatalf("request %d after the lie: %d %q %v (want the origin's real answer)", i, code, body, err)
				}
			}
		})
	}
}

// TestOriginFailsMidResponse: an origin that closes the connection before
// the Content-Length it announced, or inside a chunked body: the client's
// response is cut (never a clean short body), and the next request gets a
// new, good connection.
func TestOriginFailsMidResponse(t *testing.T) {
	for name, first := range map[string]string{
		"short Content-Length": "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
		"cut chunked body":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nonly this\r\n",
		"bad chunk size":       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nonly this\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
				if n == 1 {
					io.WriteString(c, first)
					c.Close()
					return
				}
				io.WriteString(c, okResp)
			})
			e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
			code, body, err := e.get("a.example", "/1")
			if err == nil {
				t.Errorf("truncated response read cleanly by the client: %d %q", code, body)
			}
			code, body, err = e.get("a.example", "/2")
			if err != nil || code != 200 || body != "good" {
				t.Errorf("next request: %d %q %v", code, body, err)
			}
			if o.conns.Load() != 2 {
				t.Errorf("origin saw %d connections, want 2 (the broken one not reused)", o.conns.Load())
			}
		})
	}
}

// TestBadTransferEncodingFromOrigin: framing the edge cannot read safely is
// a 502, and the connection is not used again. A field name with a space
// before the colon is no Transfer-Encoding at all: it is dropped, the
// Content-Length frames the body, and what follows is not reused either.
func TestBadTransferEncodingFromOrigin(t *testing.T) {
	for name, first := range map[string]string{
		"gzip, chunked":       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
		"identity":            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nhi",
		"two fields":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
		"two Content-Lengths": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\nhi",
		"space before colon":  "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\nhi",
	} {
		want := 502
		if name == "space before colon" {
			want = 200
		}
		t.Run(name, func(t *testing.T) {
			o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
				if n == 1 {
					io.WriteString(c, first+okResp)
					return
				}
				io.WriteString(c, okResp)
			})
			e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: "+o.url()+"}")})
			if code, body, err := e.get("a.example", "/1"); err != nil || code != want || (code == 200 && body != "hi") {
				t.Errorf("first: %d %q %v, want %d", code, body, err, want)
			}
			if code, body, err := e.get("a.example", "/2"); err != nil || code != 200 || body != "good" {
				t.Errorf("next request: %d %q %v", code, body, err)
			}
			if o.conns.Load() != 2 {
				t.Errorf("origin saw %d connections, want 2", o.conns.Load())
			}
		})
	}
}

// TestEarlyResponseToLargeUpload: an origin that refuses a large upload
// after its head and closes without reading it: the client gets the
// origin's answer, not a 502.
func TestEarlyResponseToLargeUpload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		http.ReadRequest(bufio.NewReader(c)) // the head only
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
		time.Sleep(200 * time.Millisecond)
	}()
	defer func() { ln.Close(); <-done }()
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: http://"+ln.Addr().String()+"}")})
	r := e.do("POST", "a.example", "/", strings.NewReader(strings.Repeat("u", 16<<20)))
	if b := readBody(t, r); r.StatusCode != 413 || b != "too big\n" {
		t.Errorf("%d %q, want the origin's 413", r.StatusCode, b)
	}
}
