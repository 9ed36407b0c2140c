package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// pending reports whether more of a response body has already arrived:
// reading it will not wait for the origin.
type pending interface{ pending() bool }

// writeResponse streams an origin's response to the client. clean reports
// that the body was read to its end (the origin connection may carry
// another request); originErr, that the origin failed mid-body. A client
// that stops reading ends the copy with neither. more, when not nil, tells
// whether more of the body is waiting (see the flush below).
func (st *site) writeResponse(w http.ResponseWriter, r *http.Request, resp *http.Response, more pending) (clean bool, originErr error) {
	h := w.Header()
	st.copyResponseHeader(h, resp.Header, r)
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	if rec, ok := w.(*recorder); ok && r.ProtoMajor == 2 && resp.ProtoMajor == 1 && resp.ContentLength >= 0 && announced == 0 && resp.StatusCode >= 200 {
		// An HTTP/1.x answer of a known length has no trailers, and
		// nothing below or after this handler changes h: the HTTP/2
		// server may write h itself instead of a copy.
		rec.writeHeaderKept(resp.StatusCode)
	} else {
		w.WriteHeader(resp.StatusCode)
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		return true, nil
	}
	var flusher http.Flusher
	if resp.ContentLength < 0 || isEventStream(h) {
		// A stream (SSE, a long poll, chunks as the origin makes them):
		// each piece reaches the client as soon as it came.
		flusher, _ = w.(http.Flusher)
	}
	var buf *[]byte
	switch {
	case r.ProtoMajor == 1:
		buf = answerBuffers.Get().(*[]byte)
		defer answerBuffers.Put(buf)
	case r.ProtoMajor == 2 && resp.ContentLength >= 0 && resp.ContentLength <= smallBodyMax:
		buf = smallBuffers.Get().(*[]byte)
		defer smallBuffers.Put(buf)
	case r.ProtoMajor == 2:
		buf = frameBuffers.get()
		defer frameBuffers.put(buf)
	default:
		buf = getBuffer()
		defer putBuffer(buf)
	}
	var got int64 // body bytes from the origin, counted once at the end
	defer func() { st.s.originBytes.Add(got) }()
	for {
		n, rerr := resp.Body.Read(*buf)
		if n > 0 {
			got += int64(n)
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return false, nil // the client left
			}
			// A stream is flushed before the copy could wait on the origin.
			// A piece that filled the buffer, with more of the body already
			// arrived, is not: the next piece follows at once, and on
			// HTTP/1.1 the flush would cost a write of its own (the chunk's
			// closing CRLF, issue 22).
			if flusher != nil && (n < len(*buf) || more == nil || !more.pending()) {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return false, rerr
		}
	}
	if len(resp.Trailer) > 0 {
		for k, vv := range resp.Trailer {
			if len(resp.Trailer) != announced {
				k = http.TrailerPrefix + k
			}
			h[k] = vv
		}
	}
	return true, nil
}

// switchProtocols completes an upgrade (a websocket): the origin's 101
// goes to the client, whose connection is hijacked, and bytes are copied
// both ways until either side closes. The handler's goroutine copies one
// way and owns the goroutine copying the other, which it waits for.
func (st *site) switchProtocols(w http.ResponseWriter, r *http.Request, resp *http.Response, upgrade string, back io.ReadWriteCloser) error {
	defer back.Close()
	if got := upgradeType(resp.Header); upgrade == "" || !strings.EqualFold(got, upgrade) {
		return &attemptError{err: fmt.Errorf("origin switched to protocol %q; the client asked for %q", got, upgrade)}
	}
	h := w.Header()
	st.copyResponseHeader(h, resp.Header, r)
	h["Connection"] = []string{"Upgrade"}
	h["Upgrade"] = []string{upgrade}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return &attemptError{err: fmt.Errorf("hijacking the client connection: %w", err)}
	}
	defer conn.Close()
	res := &http.Response{StatusCode: resp.StatusCode, ProtoMajor: 1, ProtoMinor: 1, Header: h}
	if err := res.Write(brw); err != nil {
		return nil
	}
	if err := brw.Flush(); err != nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(back, brw.Reader) // client to origin (with what the client already sent)
		closeWrite(back)
	}()
	_, _ = io.Copy(conn, back) // origin to client
	conn.Close()
	back.Close()
	<-done
	return nil
}

func closeWrite(c any) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// upConnRWC is an upgraded origin connection: reads go through its buffer,
// which may already hold the first bytes after the 101.
type upConnRWC struct{ c *upConn }

func (u upConnRWC) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u upConnRWC) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u upConnRWC) Close() error                { return u.c.nc.Close() }
func (u upConnRWC) CloseWrite() error {
	if cw, ok := u.c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite() // *net.TCPConn, *tls.Conn
	}
	return nil
}

// buffers lends 32 KiB copy buffers to body copies: request bodies to the
// origin, answers to HTTP/3 clients (HTTP/1.x: answerBuffers; HTTP/2:
// frameBuffers, smallBuffers).
var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func getBuffer() *[]byte  { return buffers.Get().(*[]byte) }
func putBuffer(b *[]byte) { buffers.Put(b) }

// answerBuffers lends the copy buffers of answers to HTTP/1.x clients:
// 64 KiB, so that an origin read takes what the socket holds (up to 64 KiB
// on loopback) and the client gets it in one write: a 100 KiB answer is
// two pieces instead of four (issue 22, bench, two interleaved pairs of
// one build: h1-100k edge/nginx 0.93, 0.94 with 32 KiB against 0.74,
// 0.75; https-100k 1.11, 1.10 against 1.02, 0.97; peak RSS +0.2-0.6 MiB
// at 32 connections). Each answer being copied holds one (HTTP/1.x answers
// are copied by the request's goroutine, one at a time per connection).
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// frameBuffers lends the copy buffers of answers to HTTP/2 clients: 16 KiB,
// one DATA frame at the size every peer takes (SETTINGS_MAX_FRAME_SIZE's
// initial value). Each stream holds its buffer from its answer's first
// body byte to its last, and a connection's streams send their frames in
// turn, so a client with many answers in flight keeps one per stream:
// with 32 KiB, 500 concurrent proxied 100 KiB streams (bench h2-100k)
// held up to 16 MB. The origin reads cost about as many system calls as
// with 32 KiB: those reads returned 15.7 KiB on average.
//
// It keeps at most frameBuffersKept of them free, where a sync.Pool keeps
// every buffer given back since the collector's last cycle and those of
// the cycle before (its victim cache): the collector counts them as live,
// so a burst's peak of streams copying at once stayed in the heap, three
// times over at GOGC 200 (bench h2-100k: peak RSS 65-68 MiB with the pool,
// 59-61 with a buffer made per answer).
var frameBuffers = bufferList{size: 16 << 10, free: make(chan *[]byte, frameBuffersKept)}

// smallBuffers lends the copy buffers of answers to HTTP/2 clients whose
// body is declared at most smallBodyMax bytes long: one read's worth, as
// long as the body buffer of the HTTP/2 server that copies it (a small
// answer's handler is done as soon as it was copied), where a 16 KiB
// buffer from frameBuffers would be made for most of them under load
// (bench h2-small: 500 concurrent streams of 100 B).
var smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallBodyMax); return &b }}

const smallBodyMax = 4 << 10

// frameBuffersKept is how many free HTTP/2 copy buffers stay for the next
// answers (512 KiB): those beyond are made when needed and left to the
// collector.
const frameBuffersKept = 32

// bufferList lends buffers of size bytes and keeps as many free ones as
// free holds (a leaky free list: a buffer given back to a full list is
// left to the collector).
type bufferList struct {
	free chan *[]byte
	size int
}

func (l *bufferList) get() *[]byte {
	select {
	case b := <-l.free:
		return b
	default:
		b := make([]byte, l.size)
		return &b
	}
}

// put takes b back; its holder no longer uses it.
func (l *bufferList) put(b *[]byte) {
	select {
	case l.free <- b:
	default:
	}
}
