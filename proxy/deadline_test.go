package proxy

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// An exchange whose response (head and body) is whole in the connection's
// buffer leaves the origin connection's deadline set rather than clearing
// it (issue 22: one timer change fewer per proxied request); it is
// cleared before it could fail a later peek at the pooled connection.

// TestLeftDeadlinePassedConnReused: a pooled origin connection idle past
// the deadline its last exchange left set is still reused (the liveness
// peek does not fail on the passed deadline and close a good
// connection), and its next exchange, with a body too long for the
// buffer, is not cut by it either.
func TestLeftDeadlinePassedConnReused(t *testing.T) {
	const rh = 50 * time.Millisecond
	big := make([]byte, 256<<10)
	o := newRawOrigin(t, func(n int64, r *http.Request, c net.Conn) {
		body := []byte("small")
		if r.URL.Path == "/big" {
			body = big
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n")
		c.Write(body)
	})
	e := newEdge(t, Config{}, map[string]string{"a.yaml": prop("a.example", "{url: http://"+o.ln.Addr().String()+"}",
		"timeouts: {response_header: 50ms}")})
	for i, path := range []string{"/small", "/small", "/big"} {
		if i > 0 {
			// Well past the deadline the last exchange left set: without
			// its clearing, the peek fails and the connection is dialled anew.
			time.Sleep(4 * rh)
		}
		resp := e.do("GET", "a.example", path, nil)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || (path == "/small") != (len(b) == 5) {
			t.Fatalf("%s: %d, %d bytes, %v", path, resp.StatusCode, len(b), err)
		}
	}
	if n := o.conns.Load(); n != 1 {
		t.Fatalf("3 requests on %d origin connections, want 1 (reused)", n)
	}
}

func itoa(n int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
