package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// parseOne runs the front's head reading, parsing and checks on data.
func parseOne(data []byte, max int) (fast bool, r *http.Request, err error) {
	c := &conn{s: &Server{}}
	c.br = bufio.NewReaderSize(bytes.NewReader(data), readBufSize)
	if _, err := c.readHead(max); err != nil {
		return false, nil, err
	}
	r, fast = c.fastParse(new(reqState))
	if !fast {
		r, err = c.slowParse()
	}
	if err == nil {
		err = c.check(r, fast)
	}
	return fast, r, err
}

// FuzzParseHead: no input crashes the head parser, and every head the
// fast path takes is one Go's parser takes too, into the same request.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"POST /p?q=1 HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello",
		"POST /p HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-A: b\r\nX-A: c\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n  b\r\n\r\n",
		"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"get /a-b_c.d~e HTTP/1.1\r\nHOST: a\r\nUser-Agent:  x \t\r\nPragma: no-cache\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\nConnection: x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, r, err := parseOne(data, 1<<12)
		if !fast || err != nil {
			return
		}
		g, gerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if gerr != nil {
			t.Fatalf("the fast path took %q, Go refuses it: %v", data, gerr)
		}
		if r.Method != g.Method || r.RequestURI != g.RequestURI || r.Proto != g.Proto ||
			r.ProtoMajor != g.ProtoMajor || r.ProtoMinor != g.ProtoMinor || r.Host != g.Host ||
			r.ContentLength != g.ContentLength || r.Close != g.Close ||
			!reflect.DeepEqual(r.TransferEncoding, g.TransferEncoding) ||
			!reflect.DeepEqual(r.URL, g.URL) || !reflect.DeepEqual(r.Header, g.Header) ||
			len(r.Trailer) != len(g.Trailer) {
			t.Fatalf("%q:\n fast %s %s %s host=%q cl=%d close=%v te=%v url=%#v hdr=%v\n go   %s %s %s host=%q cl=%d close=%v te=%v url=%#v hdr=%v",
				data, r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, r.Close, r.TransferEncoding, r.URL, r.Header,
				g.Method, g.RequestURI, g.Proto, g.Host, g.ContentLength, g.Close, g.TransferEncoding, g.URL, g.Header)
		}
	})
}

// TestRequestConnectionCloseFieldAsGo: on HTTP/1.1 Go's parser drops a
// Connection field that holds "close" (the request's Close says it); the
// fast path must hand the handler the same fields.
func TestRequestConnectionCloseFieldAsGo(t *testing.T) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\nConnection: x\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a\r\nConnection: close\r\n\r\n",
	} {
		fast, r, err := parseOne([]byte(s), 1<<12)
		if !fast || err != nil {
			t.Fatalf("%q: fast %v, %v", s, fast, err)
		}
		g, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s)))
		if err != nil {
			t.Fatal(err)
		}
		delete(g.Header, "Host")
		if !reflect.DeepEqual(r.Header, g.Header) || r.Close != g.Close {
			t.Errorf("%q:\n fast close=%v %v\n go   close=%v %v", s, r.Close, r.Header, g.Close, g.Header)
		}
	}
}

// allocated is the bytes f allocates (one run).
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestManyTinyFieldsNoAmplification: a head of as many tiny fields as
// the byte limit holds ("a:\r\n" a quarter of a million times in 1 MiB)
// costs the fast path no more than twice what Go's parser allocates for
// it (the map and values were sized for every line: 58 MB for 1 MB).
func TestManyTinyFieldsNoAmplification(t *testing.T) {
	for _, field := range []string{"a:\r\n", "a: b\r\n", "X-Ab: c\r\n"} {
		data := []byte("GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat(field, (1<<20-64)/len(field)) + "\r\n")
		var fast bool
		h1 := allocated(func() { fast, _, _ = parseOne(data, 1<<20) })
		if !fast {
			t.Fatalf("%q: not the fast path", field)
		}
		goBytes := allocated(func() { http.ReadRequest(bufio.NewReader(bytes.NewReader(data))) })
		if h1 > 2*goBytes {
			t.Errorf("%q x %d: h1 allocates %d B, Go %d B", field, len(data)/len(field), h1, goBytes)
		}
	}
}

// TestManyDistinctFieldsAsGo: past the 1000 fields the fast path sizes
// for, more distinct fields (and repeats of them) still parse into the
// fields Go's parser gives.
func TestManyDistinctFieldsAsGo(t *testing.T) {
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: a\r\n")
	for i := range 2500 {
		fmt.Fprintf(&b, "F%d: v%d\r\n", i%2200, i)
	}
	b.WriteString("\r\n")
	data := []byte(b.String())
	fast, r, err := parseOne(data, 1<<20)
	if !fast || err != nil {
		t.Fatalf("fast %v, %v", fast, err)
	}
	g, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Header) != 2200 || !reflect.DeepEqual(r.Header, g.Header) {
		t.Errorf("%d fields; differ from Go's %d", len(r.Header), len(g.Header))
	}
}
