package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeChunking is how much body a response holds before its head
// is committed: a handler that ends within it gets a Content-Length, one
// that writes more (without declaring a length) is sent chunked. Go's
// value: the framing a client sees is the same on either front.
const bufferBeforeChunking = 2048

// maxPostHandlerReadBytes is how much of an unread request body is read
// and dropped to keep the connection (Go's value); more closes it.
const maxPostHandlerReadBytes = 256 << 10

// response is the http.ResponseWriter of one request. Its head is written
// to the connection's buffer in two steps: the status line and the
// handler's fields at WriteHeader (the handler's later changes to Header
// do not show, as with Go's server), then the framing fields once the
// first body bytes or the handler's end decide them.
type response struct {
	c      *conn
	req    *http.Request
	body   *body // nil: no request body
	cancel func()

	handlerHeader http.Header
	wroteHeader   bool // the final status was set
	headDone      bool // the head is written out, through its blank line
	status        int
	contentLength int64 // declared or computed; -1: none
	written       int64
	chunking      bool
	handlerDone   bool
	pending       []byte // body bytes before headDone (in the conn's pend)

	// The fields held back at WriteHeader, decided at commit.
	hCL, hTE, hConn []string
	haveType, hasCE bool
	hasDate         bool
	declared        []string // trailer names from the Trailer field
	prefixTrailers  bool     // Header had TrailerPrefix keys at WriteHeader

	closeAfterReply     bool
	broken              bool // a write failed
	requestBodyLimitHit bool
	wants10KeepAlive    bool
	wantsClose          bool
	canWriteContinue    bool // guarded by c.wmu
	fullDuplex          bool
}

var _ interface {
	http.ResponseWriter
	http.Flusher
	http.Hijacker
} = (*response)(nil)

func (w *response) Header() http.Header { return w.handlerHeader }

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == 204, status == 304:
		return false
	}
	return true
}

func (w *response) WriteHeader(code int) {
	if w.c.hijacked {
		w.c.s.logf("h1: response.WriteHeader on hijacked connection")
		return
	}
	if w.wroteHeader {
		w.c.s.logf("h1: superfluous response.WriteHeader call")
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code == 100 || code >= 200 {
		w.c.wmu.Lock()
		w.canWriteContinue = false
		w.c.wmu.Unlock()
	}
	bw := w.c.bw
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// An interim response (103 Early Hints): out at once.
		w.c.wmu.Lock()
		writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code)
		for k, vv := range w.handlerHeader {
			if k == "Content-Length" || k == "Transfer-Encoding" || framingSpelling(k) {
				continue
			}
			writeField(bw, k, vv)
		}
		bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil {
			w.broken = true
		}
		w.c.wmu.Unlock()
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.handlerHeader
	if cl := h["Content-Length"]; len(cl) > 0 && cl[0] != "" {
		v, err := strconv.ParseInt(cl[0], 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.s.logf("h1: invalid Content-Length of %q", cl[0])
			delete(h, "Content-Length")
		}
	}
	writeStatusLine(bw, w.req.ProtoAtLeast(1, 1), code)
	allowed := bodyAllowedForStatus(code)
	for k, vv := range h {
		switch k {
		case "Content-Length":
			w.hCL = vv
			continue
		case "Transfer-Encoding":
			w.hTE = vv
			continue
		case "Connection":
			w.hConn = vv
			continue
		case "Content-Type":
			w.haveType = true
			if code == http.StatusNotModified {
				continue
			}
		case "Content-Encoding":
			w.hasCE = len(vv) > 0 && vv[0] != ""
		case "Date":
			w.hasDate = len(vv) > 0 && vv[0] != ""
		case "Trailer":
			for _, v := range vv {
				foreachHeaderElement(v, func(k string) {
					k = http.CanonicalHeaderKey(k)
					switch k {
					case "Transfer-Encoding", "Trailer", "Content-Length":
						return // not allowed as trailers
					}
					w.declared = append(w.declared, k)
				})
			}
			if len(vv) > 0 {
				w.prefixTrailers = true // trailers: no computed length
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.prefixTrailers = true
			continue
		}
		if framingSpelling(k) {
			continue
		}
		writeField(bw, k, vv)
	}
	if !allowed {
		w.hTE = nil
		w.hCL = nil
		w.contentLength = -1
	}
	w.pending = w.c.pend[:0]
}

// commit writes the head's last fields and its blank line; p is the
// first of the body (for Content-Type sniffing and, once the handler is
// done, Content-Length).
func (w *response) commit(p []byte) {
	w.headDone = true
	bw := w.c.bw
	isHEAD := w.req.Method == http.MethodHead
	keepAlives := !w.c.s.noKeep.Load() && !w.c.s.inShutdown.Load()
	allowed := bodyAllowedForStatus(w.status)
	te := ""
	if len(w.hTE) > 0 {
		te = w.hTE[0]
	}
	hasTE := te != ""
	connHdr := ""
	if len(w.hConn) > 0 {
		connHdr = w.hConn[0]
	}
	extraCL := false // a Content-Length computed here, from p
	if w.handlerDone && !w.prefixTrailers && !hasTE && allowed && w.contentLength == -1 && (!isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		extraCL = true
	}
	hasCL := w.contentLength != -1
	extraConn := ""
	if w.wants10KeepAlive && (isHEAD || hasCL || !allowed) {
		if w.hConn == nil {
			extraConn = "keep-alive"
		}
	} else if !w.req.ProtoAtLeast(1, 1) || w.wantsClose {
		w.closeAfterReply = true
	}
	if connHdr == "close" || !keepAlives {
		w.closeAfterReply = true
	}
	if b := w.body; b != nil && b.expectContinue && !b.sawEOFLocked() {
		w.closeAfterReply = true
	}
	if w.req.ContentLength != 0 && !w.closeAfterReply && !w.fullDuplex && w.body != nil {
		switch w.body.discard() {
		case discardTooBig:
			w.requestBodyLimitHit = true
			w.closeAfterReply = true
			w.hConn = nil
			extraConn = "close"
		case discardFailed:
			w.closeAfterReply = true
		}
	}
	extraCT := ""
	if allowed && !w.hasCE && !w.haveType && !hasTE && len(p) > 0 {
		extraCT = http.DetectContentType(p)
	}
	if hasCL && hasTE && te != "identity" {
		w.hCL = nil
		hasCL = false
		w.contentLength = -1
	}
	keepTE := false
	switch {
	case isHEAD || !allowed || w.status == http.StatusNoContent:
	case hasCL:
	case w.req.ProtoAtLeast(1, 1):
		if hasTE && te == "identity" {
			w.closeAfterReply = true
		} else {
			w.chunking = true
			// A handler's coding is kept before h1's chunked, but never
			// one that names chunked itself ("gzip, chunked", or chunked
			// in a second value): the body is chunked once, so such a
			// field says twice (Go writes it).
			keepTE = hasTE && te != "chunked" && !httpguts.HeaderValuesContainsToken(w.hTE, "chunked")
		}
	default:
		w.closeAfterReply = true
	}
	if w.chunking {
		w.hCL = nil
	}
	dropConn := w.closeAfterReply && (!keepAlives || !hasToken(connHdr, "close")) &&
		!(w.status == http.StatusSwitchingProtocols && w.handlerHeader.Get("Upgrade") != "" &&
			httpguts.HeaderValuesContainsToken(w.hConn, "Upgrade"))
	if dropConn {
		w.hConn = nil
		if w.req.ProtoAtLeast(1, 1) {
			extraConn = "close"
		}
	}
	if w.hCL != nil && w.contentLength >= 0 {
		// Once, as the number the body is framed by: never a second,
		// differing value nor a "+5" (Go's server writes the handler's
		// values as they are).
		bw.WriteString("Content-Length: ")
		writeDigits(bw, w.contentLength)
		bw.WriteString("\r\n")
	}
	if keepTE {
		writeField(bw, "Transfer-Encoding", w.hTE)
	}
	if w.hConn != nil {
		writeField(bw, "Connection", w.hConn)
	}
	if extraCT != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(extraCT)
		bw.WriteString("\r\n")
	}
	if extraConn != "" {
		bw.WriteString("Connection: ")
		bw.WriteString(extraConn)
		bw.WriteString("\r\n")
	}
	if w.chunking {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if !w.hasDate {
		bw.WriteString("Date: ")
		bw.Write(dateValue())
		bw.WriteString("\r\n")
	}
	if extraCL {
		bw.WriteString("Content-Length: ")
		writeDigits(bw, w.contentLength)
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

// writeDigits writes n in decimal, in bw's free room when it has some:
// a stack array handed to bw.Write escapes (bw may pass it on to its
// io.Writer), one allocation per response head.
func writeDigits(bw *bufio.Writer, n int64) {
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), n, 10))
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if w.broken {
		return 0, net.ErrClosed
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.headDone {
		if len(w.pending)+len(p) <= bufferBeforeChunking {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.commitPending(p)
	}
	if err := w.writeBody(p); err != nil {
		w.broken = true
		return 0, err
	}
	return len(p), nil
}

// commitPending commits the head with the held body bytes, then writes
// those; next (not written) is the body's continuation, for sniffing.
func (w *response) commitPending(next []byte) {
	sniff := w.pending
	if len(sniff) < 512 && len(next) > 0 {
		var buf [512]byte
		n := copy(buf[:], sniff)
		n += copy(buf[n:], next)
		sniff = buf[:n]
	}
	if len(sniff) == 0 {
		sniff = next
	}
	w.commit(sniff)
	if len(w.pending) > 0 {
		if err := w.writeBody(w.pending); err != nil {
			w.broken = true
		}
	}
	w.pending = nil
}

func (w *response) writeBody(p []byte) error {
	if w.req.Method == http.MethodHead {
		return nil
	}
	bw := w.c.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16)) // as writeDigits
		bw.WriteString("\r\n")
	}
	// The body's last bytes (its declared length reached) on a connection
	// that stays open: under TLS, nothing of it need wait in bw.
	end := !w.chunking && w.contentLength >= 0 && w.written == w.contentLength && !w.closeAfterReply
	done, err := w.c.cw.writeThrough(bw, p, end)
	if !done {
		_, err = bw.Write(p)
	}
	if w.chunking {
		_, err = bw.WriteString("\r\n")
	}
	return err
}

// FlushError writes what is held to the client.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headDone {
		w.commitPending(nil)
	}
	if err := w.c.bw.Flush(); err != nil {
		w.broken = true
		return err
	}
	return nil
}

func (w *response) Flush() { _ = w.FlushError() }

// finish ends the response once the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headDone {
		p := w.pending
		w.commit(p)
		if len(p) > 0 {
			if err := w.writeBody(p); err != nil {
				w.broken = true
			}
		}
		w.pending = nil
	}
	bw := w.c.bw
	if w.chunking {
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	if w.closeAfterReply {
		w.c.holdLastWrite()
	}
	if err := w.c.flushEnd(); err != nil { // conn.go: may be held for waitNext
		w.broken = true
	}
	if w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.req.Method != http.MethodHead && w.written != w.contentLength {
		w.closeAfterReply = true // the client cannot find the next response
	}
	if w.body != nil && !w.body.closeAfterHandler() {
		w.closeAfterReply = true
	}
}

func (w *response) writeTrailers() {
	h := w.handlerHeader
	bw := w.c.bw
	for _, k := range w.declared {
		if vv := h[k]; len(vv) > 0 {
			writeField(bw, k, vv)
		}
	}
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			writeField(bw, strings.TrimPrefix(k, http.TrailerPrefix), vv)
		}
	}
}

// Hijack hands the connection to the handler (a WebSocket).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && !w.headDone {
		w.commitPending(nil)
	}
	c.cr.abortPendingRead()
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.hijacked = true
	c.cr.deadlineTaken()
	c.rwc.SetDeadline(time.Time{})
	c.setState(http.StateHijacked)
	rw := bufio.NewReadWriter(c.br, bufio.NewWriter(c.rwc))
	c.br = nil // now the handler's
	return c.rwc, rw, nil
}

// The http.ResponseController methods.

func (w *response) SetReadDeadline(t time.Time) error {
	w.c.cr.deadlineTaken() // not cleared by the next read
	return w.c.rwc.SetReadDeadline(t)
}
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// writeContinue answers Expect: 100-continue, before the first body read,
// unless the final head went first.
func (w *response) writeContinue() {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !w.canWriteContinue {
		return
	}
	w.canWriteContinue = false
	// A failed write shows in the response's own writes.
	c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	c.bw.Flush()
}

func writeStatusLine(bw *bufio.Writer, is11 bool, code int) {
	if is11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	writeDigits(bw, int64(code))
	if text := http.StatusText(code); text != "" {
		bw.WriteByte(' ')
		bw.WriteString(text)
	} else {
		bw.WriteString(" status code ")
		writeDigits(bw, int64(code))
	}
	bw.WriteString("\r\n")
}

// unsafeInValue: each of these bytes in a field value becomes a space.
var unsafeInValue = strings.NewReplacer("\n", " ", "\r", " ", "\x00", " ")

// writeField writes a field as Go's Header.Write does: invalid names are
// skipped, CR and LF in values become spaces (each one, as Go's), values
// are trimmed. Stricter than Go: NUL becomes a space too (Go writes it).
func writeField(bw *bufio.Writer, k string, vv []string) {
	if !httpguts.ValidHeaderFieldName(k) {
		return
	}
	for _, v := range vv {
		if strings.ContainsAny(v, "\r\n\x00") {
			v = unsafeInValue.Replace(v)
		}
		v = strings.Trim(v, " \t")
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(v)
		bw.WriteString("\r\n")
	}
}

// framingSpelling reports whether k is a spelling other than the
// canonical one of Content-Length or Transfer-Encoding (a handler's
// h["content-length"]): such a field would frame the response beside the
// one h1 writes, a response two recipients split differently. Go's server
// writes it; h1 drops it.
func framingSpelling(k string) bool {
	switch len(k) {
	case len("Content-Length"):
		return k != "Content-Length" && strings.EqualFold(k, "Content-Length")
	case len("Transfer-Encoding"):
		return k != "Transfer-Encoding" && strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// hasToken is net/http's: token appears in v, case-insensitively,
// between the start or end and a space, comma or tab ("x 100-continue"
// holds 100-continue, "100-continue;a=b" does not).
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if asciiEqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// foreachHeaderElement calls fn for each non-empty element of a list.
func foreachHeaderElement(v string, fn func(string)) {
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.Trim(f, " \t"); f != "" {
			fn(f)
		}
	}
}

// The Date field's value, made once a second.
type dateEntry struct {
	sec int64
	b   []byte
}

var dateNow atomic.Pointer[dateEntry]

func dateValue() []byte {
	now := time.Now()
	sec := now.Unix()
	e := dateNow.Load()
	if e == nil || e.sec != sec {
		e = &dateEntry{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
		dateNow.Store(e)
	}
	return e.b
}

// SetClientGone arranges for f to be called once, from another goroutine,
// when ctx — which must be this request's own context — is cancelled (the
// client went, most often), as context.AfterFunc(ctx, f) does but without
// allocating. It returns false, doing nothing, for any other context
// (then use context.AfterFunc). If ctx is
// cancelled already, f is called at once. The handler clears it with
// ClearClientGone before it returns. One hook at a time: a second
// replaces the first.
func (w *response) SetClientGone(ctx context.Context, f func()) bool {
	if ctx != w.req.Context() || w.handlerDone {
		return false
	}
	c := w.c
	c.hookMu.Lock()
	if c.cancelled {
		c.hookFired = true
		c.hookMu.Unlock()
		f()
		return true
	}
	c.hook, c.hookFired = f, false
	c.hookMu.Unlock()
	return true
}

// ClearClientGone removes the hook SetClientGone set. fired reports that
// f was called (or is being called); otherwise it never will be.
func (w *response) ClearClientGone() (fired bool) {
	c := w.c
	c.hookMu.Lock()
	c.hook = nil
	fired = c.hookFired
	c.hookMu.Unlock()
	return fired
}

// connWriter is what a connection's bufio.Writer writes to: the
// connection, or — while writeBody hands it a body slice too large for the
// buffer (tail) — the buffered bytes (the head, a chunk's size line) and
// that slice together, in one writev on the TCP connection. Without it the
// buffer is filled from the slice and flushed, then the rest is written:
// two writes, two segments and a copy of up to the buffer's size, where a
// 100 KiB cache hit needs one write of its head and body (issue 22).
type connWriter struct {
	rwc  net.Conn
	tcp  *net.TCPConn // the connection under rwc for writev; nil: none (TLS)
	tail []byte       // to write after what bufio flushes; nil: none
	vec  [2][]byte
	bufs net.Buffers

	// records: rwc is a TLS connection, whose every Write makes records of
	// at most recordSize bytes, each with a write(2) of its own (see
	// writeRecords). rec, while set, takes what bufio flushes (a copy).
	records bool
	rec     *[]byte
}

// init sets the connection; plain tells that rwc carries the bytes as they
// are (no TLS), so that a *net.TCPConn under its wrappers (NetConn) may be
// written directly.
func (cw *connWriter) init(rwc net.Conn, plain bool) {
	cw.rwc, cw.tcp, cw.tail, cw.rec = rwc, nil, nil, nil
	cw.records = !plain
	if !plain {
		return
	}
	c := rwc
	for range 4 {
		switch t := c.(type) {
		case *net.TCPConn:
			cw.tcp = t
			return
		case interface{ ConnectionState() tls.ConnectionState }:
			return // never around a TLS layer, whatever plain says
		case interface{ NetConn() net.Conn }:
			c = t.NetConn()
		default:
			return
		}
	}
}

func (cw *connWriter) Write(p []byte) (int, error) {
	if cw.rec != nil {
		*cw.rec = append(*cw.rec, p...)
		return len(p), nil
	}
	if cw.tail == nil {
		return cw.rwc.Write(p)
	}
	cw.vec = [2][]byte{p, cw.tail}
	cw.bufs = cw.vec[:]
	n, err := cw.bufs.WriteTo(cw.tcp)
	cw.vec = [2][]byte{}
	cw.bufs = nil
	if n < int64(len(p)) {
		return int(n), err
	}
	if n < int64(len(p))+int64(len(cw.tail)) && err == nil {
		err = io.ErrShortWrite
	}
	return len(p), err
}

// writeThrough writes what bw holds and p in one system call when p would
// not fit in bw (false: bw.Write does it as ever).
func (cw *connWriter) writeThrough(bw *bufio.Writer, p []byte, end bool) (ok bool, err error) {
	if cw.records && len(p) > bw.Available() {
		return true, cw.writeRecords(bw, p, end)
	}
	if cw.tcp == nil || len(p) <= bw.Available() || bw.Buffered() == 0 {
		return false, nil
	}
	cw.tail = p
	err = bw.Flush()
	cw.tail = nil
	return true, err
}

// corker is a TLS connection whose socket can be corked (the node's HTTPS
// front, Linux: TCP_CORK): between Cork(true) and Cork(false) the records
// written leave in as few segments as the kernel makes; nested calls
// cork once.
type corker interface{ Cork(on bool) }

// recordSize is the plaintext of a full TLS record (crypto/tls's largest).
const recordSize = 16 << 10

// recBufs lends writeRecords the first record's plaintext.
var recBufs = sync.Pool{New: func() any { b := make([]byte, 0, recordSize); return &b }}

// writeRecords writes what bw holds (a head, a chunk's size line) and p,
// which does not fit in bw's free room, on a TLS connection, in records of
// recordSize bytes but the last: the first record is bw's bytes and the
// start of p (copied together; bufio would flush its 8 KiB buffer as a
// record of its own), then the whole records of the rest in one Write,
// and what is left after the last whole record (less than a record) stays
// in bw, to leave with what follows, or is written when it does not fit.
// end: p ends the body (of a declared length) and the connection stays
// open; what is left is then written too, not kept in bw for the final
// flush (whose write came after the uncork: a segment of its own). When
// that makes more than one write, they are made corked (see corker), so
// that their records leave together. A 32 KiB piece of a proxied answer
// was three records, three writes and two segments (8 KiB, then 16 + 8
// KiB corked); it is two full records in one segment (issue 22).
func (cw *connWriter) writeRecords(bw *bufio.Writer, p []byte, end bool) error {
	if c, ok := cw.rwc.(corker); ok && (bw.Buffered()+len(p) > 2*recordSize || end && bw.Buffered()+len(p) > recordSize) {
		c.Cork(true)
		defer c.Cork(false)
	}
	if b := bw.Buffered(); b > 0 {
		n := min(max(recordSize-b, 0), len(p)) // b is at most the buffer's 8 KiB
		rp := recBufs.Get().(*[]byte)
		cw.rec = rp
		err := bw.Flush() // into *rp
		cw.rec = nil
		rec := append(*rp, p[:n]...)
		if err == nil {
			_, err = cw.rwc.Write(rec)
		}
		*rp = rec[:0]
		recBufs.Put(rp)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	if whole := len(p) &^ (recordSize - 1); whole > 0 {
		if _, err := cw.rwc.Write(p[:whole]); err != nil {
			return err
		}
		p = p[whole:]
	}
	if len(p) == 0 {
		return nil
	}
	if !end && len(p) <= bw.Available() {
		_, err := bw.Write(p)
		return err
	}
	_, err := cw.rwc.Write(p)
	return err
}
