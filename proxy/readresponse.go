package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"

	"github.com/edge-cdn/edge/internal/httpfield"
)

// readResponse reads a response head from c's buffer: the plain shapes by
// fastResponse, anything else by net/http's http.ReadResponse (issue 12
// keeps Go's parser as the judge of what is accepted; the fast path takes
// only heads it would take, into the same Response, as FuzzReadResponse
// checks). The caller has peeked at least one byte.
func (c *upConn) readResponse(req *http.Request) (*http.Response, error) {
	if resp, ok := c.fastResponse(req); ok {
		return resp, nil
	}
	return http.ReadResponse(c.br, req)
}

// fastResponse parses a response head that is already whole in c's
// buffer and has the plain shape: "HTTP/1.x DDD reason" with a status of
// 200–599 but 204 and 304, CRLF line ends, fields of letter, digit and
// '-' names with valid values, exactly one Content-Length of digits, no
// Transfer-Encoding, Trailer or Pragma, and a request other than HEAD.
// Anything else returns false, having consumed nothing. The Response, its
// header map and its body reader are c's own (used only while the exchange
// holds c: the proxy copies the fields into the client's header, and
// dropResponse empties the map before c goes back to the pool); the
// header's strings share one copy of the head, its values one slice, both
// new for each response (the client's header, and the cache, keep them).
func (c *upConn) fastResponse(req *http.Request) (*http.Response, bool) {
	if req == nil || req.Method == http.MethodHead {
		return nil, false
	}
	buf, _ := c.br.Peek(c.br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 || end+4 > maxResponseHead {
		return nil, false // not all here yet: Go's parser waits for the rest
	}
	head := buf[:end+2] // the lines, each with its CRLF
	eol := bytes.IndexByte(head, '\n')
	line := head[:eol+1]
	if len(line) < len("HTTP/1.1 200\r\n") || line[len(line)-2] != '\r' ||
		string(line[:len("HTTP/1.")]) != "HTTP/1." || line[8] != ' ' {
		return nil, false
	}
	minor := 1
	switch line[7] {
	case '1':
	case '0':
		minor = 0
	default:
		return nil, false
	}
	d0, d1, d2 := line[9], line[10], line[11]
	if d0 < '2' || d0 > '5' || d1 < '0' || d1 > '9' || d2 < '0' || d2 > '9' {
		return nil, false
	}
	code := int(d0-'0')*100 + int(d1-'0')*10 + int(d2-'0')
	if code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, false
	}
	if len(line) > len("HTTP/1.1 200\r\n") {
		if line[12] != ' ' {
			return nil, false
		}
		for _, b := range line[13 : len(line)-2] {
			if b < ' ' || b >= 0x7f {
				return nil, false
			}
		}
	}
	nf := bytes.Count(head, []byte{'\n'}) - 1
	s := string(head) // every string of the response points into this one
	str := func(b []byte) string { o := cap(buf) - cap(b); return s[o : o+len(b)] }

	var vals []string
	if nf > 0 {
		vals = make([]string, nf)
	}
	h := c.hdr
	if h == nil {
		h = make(http.Header, nf)
		c.hdr = h
	} else {
		clear(h) // a head refused half-way left fields in it
	}
	rest := head[eol+1:]
	for len(rest) > 0 {
		eol := bytes.IndexByte(rest, '\n')
		line := rest[:eol+1]
		rest = rest[eol+1:]
		key, value, ok := httpfield.Line(line, str)
		if !ok {
			return nil, false
		}
		switch key {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil, false // Go's framing and fix-ups: let it do them
		case "Content-Length":
			if h[key] != nil {
				return nil, false // twice: Go refuses or merges
			}
		}
		if vv := h[key]; vv != nil {
			h[key] = append(vv, value)
			continue
		}
		vv := vals[:1:1]
		vals = vals[1:]
		vv[0] = value
		h[key] = vv
	}
	cl, ok := h["Content-Length"]
	if !ok {
		return nil, false // a body to the close, or none: Go's rules
	}
	n, ok := httpfield.ParseLength(cl[0])
	if !ok {
		return nil, false
	}
	c.br.Discard(end + 4)
	c.resp = http.Response{
		Status:        s[len("HTTP/1.1 ") : eol-1],
		StatusCode:    code,
		Proto:         s[:len("HTTP/1.1")],
		ProtoMajor:    1,
		ProtoMinor:    minor,
		Header:        h,
		ContentLength: n,
		Close:         responseClose(minor, h),
		Request:       req,
	}
	if n == 0 {
		c.resp.Body = http.NoBody
	} else {
		c.body = lengthBody{br: c.br, n: n}
		c.resp.Body = &c.body
	}
	return &c.resp, true
}

var crlfcrlf = []byte("\r\n\r\n")

// dropResponse forgets the exchange's response once it is written: an
// idle pooled connection must not keep the client's request (and its
// request state, through Response.Request) or the header reachable.
func (c *upConn) dropResponse() {
	c.resp = http.Response{}
	c.body = lengthBody{}
	if len(c.hdr) > maxKeptFields {
		c.hdr = nil // grown for a large head: not kept while idle
	} else {
		clear(c.hdr)
	}
}

// maxKeptFields bounds the header map a connection keeps for its next
// response (issue 22: a map and its table per proxied response were two of
// its allocations, ~400 bytes).
const maxKeptFields = 16

// responseClose is net/http's rule for a response's Close, which also
// drops the Connection field of an HTTP/1.1 response that says close.
func responseClose(minor int, h http.Header) bool {
	closes := httpfield.Close(minor, h["Connection"])
	if closes && minor != 0 {
		delete(h, "Connection")
	}
	return closes
}

// lengthBody reads a body of n bytes from an origin connection's buffer,
// as net/http's body over an io.LimitReader: io.EOF with its last bytes,
// io.ErrUnexpectedEOF when the connection ends before.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	m, err := b.br.Read(p)
	b.n -= int64(m)
	if b.n == 0 {
		return m, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return m, err
}

// Close does nothing: the exchange reads the body to its end or closes
// the connection.
func (b *lengthBody) Close() error { return nil }
