package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// fastOne runs fastResponse on data as an origin connection's buffer holds
// it (whole: one read fills it).
func fastOne(data []byte, method string) (*http.Response, *upConn, bool) {
	c := &upConn{}
	c.lim.R, c.lim.N = bytes.NewReader(data), 1<<62
	c.br = bufio.NewReaderSize(&c.lim, 4<<10)
	if _, err := c.br.Peek(1); err != nil {
		return nil, c, false
	}
	resp, ok := c.fastResponse(&http.Request{Method: method})
	return resp, c, ok
}

// FuzzReadResponse: no input crashes the response head parser, a head the
// fast path refuses is left unread for http.ReadResponse, and every head
// it takes is one http.ReadResponse takes too, into the same Response
// (status, proto, header, framing, Close) with the same body and the same
// bytes left after it.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nconnection: Close\r\ncontent-length: 3\r\nX-A: b\r\nx-a: c\r\n\r\nabc",
		"HTTP/1.1 200\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200  OK \r\nPragma: no-cache\r\nContent-Length:  007 \t\r\nSet-Cookie: a=\x80\r\n\r\n1234567",
		"HTTP/1.1 200 OK\r\nCONTENT-TYPE: a\r\netag: \"x\"\r\nX-Weird_Name: 1\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		r, c, fast := fastOne(data, method)
		if !fast {
			if c.br.Buffered() != min(len(data), 4<<10) {
				t.Fatalf("%q: refused, but consumed %d bytes", data, min(len(data), 4<<10)-c.br.Buffered())
			}
			return
		}
		gr := bufio.NewReaderSize(bytes.NewReader(data), 4<<10)
		g, gerr := http.ReadResponse(gr, &http.Request{Method: method})
		if gerr != nil {
			t.Fatalf("the fast path took %q, Go refuses it: %v", data, gerr)
		}
		if r.Status != g.Status || r.StatusCode != g.StatusCode || r.Proto != g.Proto ||
			r.ProtoMajor != g.ProtoMajor || r.ProtoMinor != g.ProtoMinor || r.ContentLength != g.ContentLength ||
			r.Close != g.Close || r.Uncompressed != g.Uncompressed || r.Request != nil && g.Request == nil ||
			!reflect.DeepEqual(r.TransferEncoding, g.TransferEncoding) || !reflect.DeepEqual(r.Header, g.Header) ||
			len(r.Trailer) != len(g.Trailer) || (r.Body == http.NoBody) != (g.Body == http.NoBody) {
			t.Fatalf("%q:\n fast %q %d %s %d.%d cl=%d close=%v te=%v hdr=%v\n go   %q %d %s %d.%d cl=%d close=%v te=%v hdr=%v",
				data, r.Status, r.StatusCode, r.Proto, r.ProtoMajor, r.ProtoMinor, r.ContentLength, r.Close, r.TransferEncoding, r.Header,
				g.Status, g.StatusCode, g.Proto, g.ProtoMajor, g.ProtoMinor, g.ContentLength, g.Close, g.TransferEncoding, g.Header)
		}
		rb, rerr := io.ReadAll(r.Body)
		gb, gerr := io.ReadAll(g.Body)
		if !bytes.Equal(rb, gb) || rerr != gerr {
			t.Fatalf("%q: body fast %q %v, go %q %v", data, rb, rerr, gb, gerr)
		}
		rest, _ := io.ReadAll(c.br)
		grest, _ := io.ReadAll(gr)
		if !bytes.Equal(rest, grest) {
			t.Fatalf("%q: after the body fast %q, go %q", data, rest, grest)
		}
	})
}

// TestFastResponseShapes: the fast path takes the plain heads origins
// send (else the fuzz target above proves nothing) and leaves to Go's
// parser every head whose framing or fix-ups are Go's to decide: a body
// to the close, chunked, a doubled Content-Length, a HEAD's or a 204's
// length, obs-fold, bare LF, Pragma, and a head not yet whole.
func TestFastResponseShapes(t *testing.T) {
	for _, tc := range []struct {
		head   string
		method string
		fast   bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", "GET", true},
		{"HTTP/1.1 404 Not Found\r\nServer: nginx\r\nDate: x\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", "POST", true},
		{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "HEAD", false},
		{"HTTP/1.1 200 OK\r\n\r\nbody to the close", "GET", false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", "GET", false},
		{"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\n\r\n", "GET", false},
		{"HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\n\r\n", "GET", false},
		{"HTTP/1.1 100 Continue\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "GET", false},
		{"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", false},
	} {
		resp, _, fast := fastOne([]byte(tc.head), tc.method)
		if fast != tc.fast {
			t.Errorf("%s %q: fast %v, want %v", tc.method, tc.head, fast, tc.fast)
		}
		if fast && resp.Request == nil {
			t.Errorf("%q: no Request", tc.head)
		}
	}
}

// TestFastResponseAllocs: a plain response head costs 4 allocations (the
// head's string, the values, the header map and its table), not
// ReadResponse's 8.
func TestFastResponseAllocs(t *testing.T) {
	data := []byte("HTTP/1.1 200 OK\r\nServer: o\r\nDate: Mon, 07 Dec 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc")
	c := &upConn{}
	rd := bytes.NewReader(data)
	c.lim.R, c.lim.N = rd, 1<<62
	c.br = bufio.NewReaderSize(&c.lim, 4<<10)
	req := &http.Request{Method: http.MethodGet}
	buf := make([]byte, 16)
	allocs := testing.AllocsPerRun(100, func() {
		rd.Reset(data)
		c.br.Reset(&c.lim)
		c.br.Peek(1)
		resp, ok := c.fastResponse(req)
		if !ok {
			t.Fatal("refused")
		}
		if n, err := resp.Body.Read(buf); n != 3 || err != io.EOF {
			t.Fatal(n, err)
		}
	})
	if allocs > 4 {
		t.Errorf("%v allocations, want 4", allocs)
	}
}

// BenchmarkResponseHead: an origin's plain response head parsed by
// fastResponse and by http.ReadResponse.
func BenchmarkResponseHead(b *testing.B) {
	data := []byte("HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nContent-Length: 100\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Mon, 07 Dec 2026 10:00:00 GMT\r\n\r\n")
	req := &http.Request{Method: http.MethodGet}
	for _, fast := range []bool{true, false} {
		b.Run(map[bool]string{true: "fast", false: "ReadResponse"}[fast], func(b *testing.B) {
			c := &upConn{}
			rd := bytes.NewReader(data)
			c.lim.R, c.lim.N = rd, 1<<62
			c.br = bufio.NewReaderSize(&c.lim, 4<<10)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(data)
				c.br.Reset(&c.lim)
				c.br.Peek(1)
				var err error
				if fast {
					_, ok := c.fastResponse(req)
					if !ok {
						b.Fatal("refused")
					}
				} else if _, err = http.ReadResponse(c.br, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
