package h1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/edge-cdn/edge/internal/httpfield"
	"golang.org/x/net/http/httpguts"
)

// errHeadTooLarge: the raw head is longer than MaxHeaderBytes (431).
var errHeadTooLarge = errors.New("h1: request head too large")

// readHead reads a request head, through its blank line, into c.head.
// sawBytes reports whether any byte of it arrived (a connection that closes
// or times out before is closed without an answer, as Go's server does).
func (c *conn) readHead(max int) (sawBytes bool, err error) {
	c.head = c.head[:0]
	first := true
	for {
		line, err := c.br.ReadSlice('\n')
		if len(line) > 0 {
			sawBytes = true
		}
		c.head = append(c.head, line...)
		if len(c.head) > max {
			return true, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue // the line goes on
		}
		if err != nil {
			return sawBytes, err
		}
		// A whole line ends the head when it is empty; the first line
		// never does (an empty request line is Go's 400, from the parser).
		n := len(c.head)
		if !first && (n >= 2 && c.head[n-2] == '\n' || n >= 3 && c.head[n-3] == '\n' && c.head[n-2] == '\r') {
			return true, nil
		}
		if first {
			first = false
			if !plainRequestLine(c.head) {
				// Go answers a malformed request line at once, without
				// waiting for the rest of the head: so do we.
				if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(append(c.head[:n:n], "\r\n"...)))); err != nil {
					return true, nil // the head ends here: the parser refuses it
				}
			}
		}
	}
}

// plainRequestLine reports whether line ("...\r\n") is "METHOD /path HTTP/1.x\r\n"
// with a token method and a printable origin-form target.
func plainRequestLine(line []byte) bool {
	_, _, _, ok := splitRequestLine(line)
	return ok
}

func splitRequestLine(line []byte) (method, target []byte, minor int, ok bool) {
	n := len(line)
	if n < len("A / HTTP/1.1\r\n") || line[n-2] != '\r' {
		return nil, nil, 0, false
	}
	line = line[:n-2]
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return nil, nil, 0, false
	}
	method = line[:sp]
	for _, b := range method {
		if !isTokenByte(b) {
			return nil, nil, 0, false
		}
	}
	rest := line[sp+1:]
	if len(rest) < len("/ HTTP/1.1") {
		return nil, nil, 0, false
	}
	proto := rest[len(rest)-len("HTTP/1.1"):]
	switch string(proto) {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
		minor = 0
	default:
		return nil, nil, 0, false
	}
	if rest[len(rest)-len(" HTTP/1.1")] != ' ' {
		return nil, nil, 0, false
	}
	target = rest[:len(rest)-len(" HTTP/1.1")]
	if len(target) == 0 || target[0] != '/' {
		return nil, nil, 0, false
	}
	for _, b := range target {
		if b <= ' ' || b >= 0x7f {
			return nil, nil, 0, false
		}
	}
	return method, target, minor, true
}

// A head is parsed by fastParse or, when it does not take it (anything
// but the plain shapes), by net/http's own parser (slowParse), so that
// what is accepted and what is refused are Go's. The error is what to
// answer (see writeParseError).

// slowParse hands the raw head to http.ReadRequest. The request's body is
// set by the caller, from the framing ReadRequest found.
func (c *conn) slowParse() (*http.Request, error) {
	r, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(c.head), 4096))
	if err != nil {
		return nil, err
	}
	// ReadRequest drops Host from the fields; Go's server checks them
	// first (check does): read them again, as ReadRequest did.
	tp := textproto.NewReader(bufio.NewReaderSize(bytes.NewReader(c.head), 4096))
	if _, err := tp.ReadLine(); err != nil {
		return nil, err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	if hosts, ok := h["Host"]; ok {
		r.Header["Host"] = hosts
	}
	return r, nil
}

// fastParse parses the plain shapes of a request head: CRLF line ends,
// an origin-form target, HTTP/1.0 or 1.1, fields of token names and valid
// values, at most one Host, Content-Length as digits once, and
// Transfer-Encoding only as exactly one "chunked" on HTTP/1.1. Anything
// else returns false. The request's strings share one copy of the head.
func (c *conn) fastParse(st *reqState) (*http.Request, bool) {
	head := c.head
	eol := bytes.IndexByte(head, '\n')
	method, target, minor, ok := splitRequestLine(head[:eol+1])
	if !ok {
		return nil, false
	}
	// Count the fields first: one allocation for all their values.
	nf := bytes.Count(head, []byte{'\n'}) - 2
	if nf < 0 {
		return nil, false
	}
	s := string(head) // every string of the request points into this one
	off := func(b []byte) int { return cap(head) - cap(b) }
	str := func(b []byte) string { o := off(b); return s[o : o+len(b)] }

	// WithContext of a request that does not escape: the Request's one
	// allocation (its context field can be set no other way).
	r := (&http.Request{}).WithContext(&st.ctx)
	r.Method = commonMethod(method, str)
	r.RequestURI = str(target)
	r.Proto = "HTTP/1.1"
	r.ProtoMajor = 1
	r.ProtoMinor = minor
	if minor == 0 {
		r.Proto = "HTTP/1.0"
	}
	// Both sized for at most maxFieldsHint fields, as Go's parser caps
	// its hint: a head of many tiny fields must not make the map and the
	// values many times the head's size (vals grows in chunks past it).
	hint := min(nf, maxFieldsHint)
	var vals []string
	if hint <= len(st.vals) {
		vals = st.vals[:hint]
	} else {
		vals = make([]string, hint)
	}
	h := make(http.Header, hint)
	rest := head[eol+1:]
	for {
		eol := bytes.IndexByte(rest, '\n')
		if eol < 0 {
			return nil, false
		}
		line := rest[:eol+1]
		rest = rest[eol+1:]
		if len(line) == 2 && line[0] == '\r' {
			break // the blank line
		}
		key, value, ok := httpfield.Line(line, str)
		if !ok {
			return nil, false
		}
		switch key {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "Pragma":
			// Twice: Go refuses or merges them; let it say how.
			if h[key] != nil {
				return nil, false
			}
		}
		if vv := h[key]; vv != nil {
			h[key] = append(vv, value)
			continue
		}
		if len(vals) == 0 {
			vals = make([]string, maxFieldsHint)
		}
		vv := vals[:1:1]
		vals = vals[1:]
		vv[0] = value
		h[key] = vv
	}
	if len(rest) != 0 {
		return nil, false
	}
	if _, ok := h["Pragma"]; ok {
		return nil, false // fixPragmaCacheControl: Go's way
	}
	if te, ok := h["Transfer-Encoding"]; ok {
		if minor == 0 || !strings.EqualFold(te[0], "chunked") {
			return nil, false
		}
		if _, ok := h["Trailer"]; ok {
			return nil, false // Go's fixTrailer
		}
	}
	u, err := parseTarget(r.RequestURI) // nil: a plain path
	if err != nil {
		return nil, false
	}
	if u == nil {
		st.u = url.URL{Path: r.RequestURI}
		u = &st.u
	}
	r.URL = u
	r.Header = h
	if hv, ok := h["Host"]; ok {
		r.Host = hv[0]
	}
	r.Close = httpfield.Close(minor, h["Connection"])
	var n int64
	if cl, ok := h["Content-Length"]; ok {
		// Checked even beside chunked (Go refuses a bad one either way).
		if n, ok = httpfield.ParseLength(cl[0]); !ok {
			return nil, false
		}
	}
	if _, ok := h["Transfer-Encoding"]; ok {
		delete(h, "Transfer-Encoding")
		delete(h, "Content-Length")
		r.TransferEncoding = chunkedTE
		r.ContentLength = -1
		return r, true
	}
	r.ContentLength = n
	return r, true
}

// maxFieldsHint caps the fields a head's map and values are sized for
// up front (textproto's cap).
const maxFieldsHint = 1000

var chunkedTE = []string{"chunked"}[:1:1]

// parseTarget parses an origin-form target as url.ParseRequestURI does;
// a plain path (no '%', '?' or ';'...) needs no parser: it returns nil,
// nil then, and the URL is &url.URL{Path: t} (in the request's reqState).
func parseTarget(t string) (*url.URL, error) {
	for i := 0; i < len(t); i++ {
		switch b := t[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '/', b == '-', b == '.', b == '_', b == '~':
		default:
			return url.ParseRequestURI(t)
		}
	}
	if strings.HasPrefix(t, "//") {
		return url.ParseRequestURI(t)
	}
	return nil, nil
}

func commonMethod(m []byte, str func([]byte) string) string {
	switch string(m) {
	case "GET":
		return http.MethodGet
	case "HEAD":
		return http.MethodHead
	case "POST":
		return http.MethodPost
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "OPTIONS":
		return http.MethodOptions
	}
	return str(m)
}

// isTokenByte: RFC 9110 tchar.
func isTokenByte(b byte) bool {
	return b < 0x80 && httpguts.IsTokenRune(rune(b))
}
