package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// expectContinueWait is how long a request with "Expect: 100-continue"
// waits for the origin's 100 before its body is sent anyway (as
// http.Transport's ExpectContinueTimeout).
const expectContinueWait = time.Second

// exchange is one request sent over one origin connection, on the
// goroutine serving the client: write the head, stream the body, read the
// response head. Nothing is handed to another goroutine.
type exchange struct {
	st      *site
	o       *origin
	c       *upConn
	w       http.ResponseWriter // for 1xx responses
	r       *http.Request
	req     *request
	upgrade string

	hasBody    bool
	bodySent   bool // the request body was written in full
	wroteAny   bool // some bytes of the request were written
	writeError bool // writing the request failed
}

// bufSink writes header fields to the connection's buffer.
type bufSink struct{ bw *bufio.Writer }

func (s bufSink) add(k, v string) {
	s.bw.WriteString(k)
	s.bw.WriteString(": ")
	s.bw.WriteString(v)
	s.bw.WriteString("\r\n")
}

func (s bufSink) addJoined(k string, vv []string, tail string) {
	s.bw.WriteString(k)
	s.bw.WriteString(": ")
	for _, v := range vv {
		s.bw.WriteString(v)
		s.bw.WriteString(", ")
	}
	s.bw.WriteString(tail)
	s.bw.WriteString("\r\n")
}

// writeHead buffers the request line and header fields. The path is the
// origin's path then the client's (checked for dot-segments before).
func (x *exchange) writeHead() {
	bw, r := x.c.bw, x.r
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if r.Method == http.MethodOptions && r.URL.Path == "*" && x.o.prefix == "" {
		bw.WriteByte('*')
	} else {
		bw.WriteString(x.o.prefix)
		// EscapedPath allocates only for a path it must re-escape.
		bw.WriteString(r.URL.EscapedPath())
		if r.URL.ForceQuery || r.URL.RawQuery != "" {
			bw.WriteByte('?')
			bw.WriteString(r.URL.RawQuery)
		}
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(x.st.originHost(r))
	bw.WriteString("\r\n")
	x.st.outHeaders(r, x.req, x.upgrade, bufSink{bw})
	switch {
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(x.c.numBuf[:0], r.ContentLength, 10))
		bw.WriteString("\r\n")
	case x.hasBody:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(r.Trailer) > 0 {
			sink := bufSink{bw}
			for k := range r.Trailer {
				if x.st.forwardTrailer(k) {
					sink.add("Trailer", k)
				}
			}
		}
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
}

// writeBody streams the client's body to the origin, framed by its
// Content-Length or chunked, each write under a fresh deadline.
func (x *exchange) writeBody() error {
	buf := getBuffer()
	defer putBuffer(buf)
	r, c := x.r, x.c
	chunked := r.ContentLength < 0
	var sent int64
	for {
		n, rerr := r.Body.Read(*buf)
		if !chunked && sent+int64(n) > r.ContentLength {
			// Never past the framing the origin was told: the server's body
			// reader stops at Content-Length; this guards any other Body.
			return errBodyTooLong
		}
		if n > 0 {
			sent += int64(n)
			if err := x.writeChunk((*buf)[:n], chunked); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr // the client's body broke: see trackedBody
		}
	}
	if r.ContentLength > 0 && sent != r.ContentLength {
		return io.ErrUnexpectedEOF
	}
	if chunked {
		c.bw.WriteString("0\r\n")
		for k, vv := range r.Trailer {
			if !x.st.forwardTrailer(k) {
				continue
			}
			for _, v := range vv {
				bufSink{c.bw}.add(k, v)
			}
		}
		c.bw.WriteString("\r\n")
	}
	if err := x.flush(); err != nil {
		return err
	}
	x.bodySent = true
	return nil
}

func (x *exchange) writeChunk(p []byte, chunked bool) error {
	bw := x.c.bw
	if err := x.c.nc.SetWriteDeadline(time.Now().Add(x.st.prop.Timeouts.ResponseHeader)); err != nil {
		return x.failWrite(err)
	}
	if chunked {
		bw.Write(strconv.AppendInt(x.c.numBuf[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	bw.Write(p)
	if chunked {
		bw.WriteString("\r\n")
	}
	return x.flush() // the origin sees the body as it comes
}

func (x *exchange) flush() error {
	if err := x.c.bw.Flush(); err != nil {
		return x.failWrite(err)
	}
	x.wroteAny = true
	return nil
}

func (x *exchange) failWrite(err error) error {
	x.writeError = true
	return err
}

// roundTrip sends the request, begun at start, and returns the final (or
// 101) response, its body reading from the connection. 1xx responses other than 100 and
// 101 go to the client. The connection's deadline covers the response head.
func (x *exchange) roundTrip(start time.Time) (*http.Response, error) {
	c, r := x.c, x.r
	rh := x.st.prop.Timeouts.ResponseHeader
	if err := c.nc.SetDeadline(start.Add(rh)); err != nil {
		return nil, err
	}
	c.deadline = time.Time{} // this exchange's now, cleared or left at its end
	x.writeHead()
	expect := x.hasBody && hasToken(r.Header["Expect"], "100-continue")
	if x.hasBody && !expect {
		if err := x.writeBody(); err != nil {
			return x.earlyResponse(err)
		}
	} else if !x.hasBody && c.canSendRaw() {
		// Written and the answer waited for in one step (sendRaw).
		wrote, err := c.sendRaw()
		x.wroteAny = x.wroteAny || wrote
		if err == errIdleClosed {
			return nil, err // nothing sent (syncAttempt tries another connection)
		}
		if err != nil {
			return nil, x.failWrite(err)
		}
		c.releaseWriteBuffer()
	} else if err := x.flush(); err != nil {
		return nil, err
	} else if !x.hasBody {
		// Nothing more is written in this exchange (an upgraded
		// connection writes to nc): the write buffer goes back while the
		// origin answers, which is most of an exchange's life (500
		// proxied HTTP/2 streams held 2 MB of them).
		c.releaseWriteBuffer()
	}
	waitContinue := expect
	if waitContinue {
		_ = c.nc.SetReadDeadline(time.Now().Add(min(expectContinueWait, rh)))
	} else if x.hasBody {
		// The response-header timeout runs from the end of the body; a
		// request without one is still under the deadline set above.
		_ = c.nc.SetReadDeadline(time.Now().Add(rh))
	}
	// Lent only now: after sendRaw, the answer is waiting on the socket.
	c.takeReadBuffer()
	for {
		if _, err := c.br.Peek(1); err != nil {
			if waitContinue && isTimeout(err) {
				// No 100 in time: send the body anyway.
				waitContinue = false
				if err := x.sendBodyNow(rh); err != nil {
					return nil, err
				}
				continue
			}
			return nil, &noResponse{err}
		}
		c.lim.N = maxResponseHead
		// A plain head is parsed without net/http (4 allocations, not
		// ReadResponse's 8); any other by http.ReadResponse (issue 12).
		resp, err := c.readResponse(r)
		c.lim.N = 1 << 62
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusContinue:
			if waitContinue {
				waitContinue = false
				if err := x.sendBodyNow(rh); err != nil {
					return nil, err
				}
			}
			continue
		case resp.StatusCode == http.StatusSwitchingProtocols:
		case resp.StatusCode < 200:
			forwardInfo(x.w, resp)
			continue
		}
		if c.bodyBuffered(resp) {
			// Nothing more is read from the connection for this response:
			// the deadline is left (one timer change fewer per exchange)
			// and cleared only should it pass before the connection is
			// peeked at again (upConn.freshDeadline).
			c.deadline = start.Add(rh)
		} else {
			_ = c.nc.SetDeadline(time.Time{})
		}
		return resp, nil
	}
}

// earlyResponse looks for a final response that an origin sent before it
// stopped taking the request body (a 413, say): that answer, not a 502,
// goes to the client. The connection is not reused (bodySent is false).
func (x *exchange) earlyResponse(writeErr error) (*http.Response, error) {
	if !x.writeError {
		return nil, writeErr // the client's body broke
	}
	c := x.c
	_ = c.nc.SetReadDeadline(time.Now().Add(min(time.Second, x.st.prop.Timeouts.ResponseHeader)))
	c.takeReadBuffer()
	for {
		if _, err := c.br.Peek(1); err != nil {
			return nil, writeErr
		}
		c.lim.N = maxResponseHead
		resp, err := c.readResponse(x.r)
		c.lim.N = 1 << 62
		if err != nil {
			return nil, writeErr
		}
		if resp.StatusCode >= 200 {
			_ = c.nc.SetDeadline(time.Time{})
			return resp, nil
		}
	}
}

func (x *exchange) sendBodyNow(rh time.Duration) error {
	if err := x.writeBody(); err != nil {
		return err
	}
	return x.c.nc.SetReadDeadline(time.Now().Add(rh))
}

// reusable reports whether the connection may carry another request after
// resp, whose body was read to its end: keep-alive HTTP/1.1, the request
// sent in full, nothing more from the origin than the response.
func (x *exchange) reusable(resp *http.Response) bool {
	return !resp.Close && resp.ProtoAtLeast(1, 1) && resp.StatusCode != http.StatusSwitchingProtocols &&
		(!x.hasBody || x.bodySent) && x.c.buffered() == 0
}

var errBodyTooLong = errors.New("request body longer than its Content-Length")

// noResponse is a failure before the first byte of a response head.
type noResponse struct{ err error }

func (e *noResponse) Error() string { return e.err.Error() }
func (e *noResponse) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// isEventStream reports whether a response is server-sent events, which
// are flushed as they come.
func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	base, _, _ := strings.Cut(ct[0], ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}
