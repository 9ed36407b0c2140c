package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"sync"
)

// body is a request's body, read from the connection's buffer: a
// Content-Length's bytes or chunks, then the trailer (merged into the
// request's Trailer, as Go's server does).
type body struct {
	c   *conn
	w   *response
	req *http.Request

	mu             sync.Mutex
	chunked        bool
	cr             io.Reader // the chunked reader
	remaining      int64     // Content-Length's bytes left
	sawEOF         bool
	closed         bool
	failed         bool // a read failed: the connection cannot carry more
	earlyClose     bool // closed with more than maxPostHandlerReadBytes left
	expectContinue bool
}

func newChunkedReader(br *bufio.Reader) io.Reader { return httputil.NewChunkedReader(br) }

var errTrailerEOF = errors.New("http: unexpected EOF reading trailer")

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	if b.failed {
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.expectContinue {
		b.w.writeContinue()
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.cr.Read(p)
		if err == io.EOF {
			if err = b.readTrailer(); err == nil {
				err = io.EOF
			}
		}
	} else {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = b.c.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			err = io.EOF
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	if err == io.EOF {
		b.sawEOF = true
		// Nothing left to read for the request: watch for the client
		// leaving while the handler goes on (not once it returned: the
		// connection reads the next request).
		if !b.w.handlerDone {
			b.c.cr.startBackgroundRead(b.w.cancel)
		}
	} else if err != nil {
		b.failed = true
	}
	return n, err
}

// readTrailer reads the fields after the last chunk, as Go's server does.
func (b *body) readTrailer() error {
	br := b.c.br
	buf, err := br.Peek(2)
	if bytes.Equal(buf, []byte("\r\n")) {
		br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if !seeUpcomingDoubleCRLF(br) {
		return errors.New("http: suspiciously long trailer after chunked body")
	}
	hdr, err := textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		return err
	}
	if b.req.Trailer == nil {
		b.req.Trailer = http.Header(hdr)
	} else {
		for k, vv := range hdr {
			b.req.Trailer[k] = vv
		}
	}
	return nil
}

func seeUpcomingDoubleCRLF(r *bufio.Reader) bool {
	for peekSize := 4; ; peekSize++ {
		buf, err := r.Peek(peekSize)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

func (b *body) sawEOFLocked() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sawEOF
}

// Close drops what is left of the body, up to maxPostHandlerReadBytes
// (more, and the connection closes after the response).
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.sawEOF || b.failed {
		return nil
	}
	if !b.chunked && b.remaining > maxPostHandlerReadBytes {
		b.earlyClose = true
		return nil
	}
	b.drainLocked()
	return nil
}

// drainLocked reads the rest of the body, up to maxPostHandlerReadBytes+1.
func (b *body) drainLocked() {
	buf := make([]byte, 4096)
	var total int64
	for !b.sawEOF && !b.failed {
		n, err := b.readLocked(buf)
		total += int64(n)
		if err != nil && err != io.EOF {
			b.failed = true
			return
		}
		if total > maxPostHandlerReadBytes {
			b.earlyClose = true
			return
		}
	}
}

type discardResult int

const (
	discardOK discardResult = iota
	discardTooBig
	discardFailed
)

// discard is Go's reading of an unread request body when the response
// head goes out: up to maxPostHandlerReadBytes, so that the connection
// can carry the next request.
func (b *body) discard() discardResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		if !b.sawEOF {
			return discardFailed
		}
		return discardOK
	case b.sawEOF:
		return discardOK
	case !b.chunked && b.remaining >= maxPostHandlerReadBytes:
		return discardTooBig
	}
	b.drainLocked()
	switch {
	case b.earlyClose:
		return discardTooBig
	case b.failed:
		return discardFailed
	}
	return discardOK
}

// closeAfterHandler closes the body once the handler returned (later
// reads fail: the connection moves on); false: the connection cannot
// carry another request.
func (b *body) closeAfterHandler() bool {
	b.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sawEOF && !b.failed && !b.earlyClose
}

// didEarlyClose: the body was closed with more than
// maxPostHandlerReadBytes left unread.
func (b *body) didEarlyClose() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.earlyClose
}
