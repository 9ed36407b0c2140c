package h2srv

// Safety of the inline path at the server level: a panic, an answer past
// InlineBodyMax, ResponseWriter features that would wait for the serve loop.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

type inlineFunc func(w http.ResponseWriter, r *http.Request) bool

func (f inlineFunc) ServeInline(w http.ResponseWriter, r *http.Request) bool { return f(w, r) }

type rconn struct {
	t  *testing.T
	c  net.Conn
	fr *http2.Framer
}

// serveInlineConn serves one plain (h2c prior-knowledge) connection with h
// and inline, and returns the client's side after the SETTINGS exchange.
func serveInlineConn(t *testing.T, h http.Handler, inline InlineHandler) *rconn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		(&Server{}).ServeConn(c, &ServeConnOpts{Handler: h, BaseConfig: &http.Server{}, Inline: inline})
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ln.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("ServeConn did not return 5 s after its connection closed (serve goroutine stuck)")
		}
	})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			fr.WriteSettingsAck()
			break
		}
	}
	return &rconn{t: t, c: c, fr: fr}
}

func (rc *rconn) get(id uint32, path string) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x.example"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
}

type streamResult struct {
	status    string
	body      []byte
	ended     bool
	rst       bool
	rstCode   http2.ErrCode
	headerLen string
}

// read reads frames until every stream in ids ended or was reset.
func (rc *rconn) read(ids ...uint32) map[uint32]*streamResult {
	res := map[uint32]*streamResult{}
	for _, id := range ids {
		res[id] = &streamResult{}
	}
	open := len(ids)
	for open > 0 {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("read: %v", err)
		}
		r := res[f.Header().StreamID]
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if r != nil {
				r.status = f.PseudoValue("status")
				for _, hf := range f.RegularFields() {
					if hf.Name == "content-length" {
						r.headerLen = hf.Value
					}
				}
				if f.StreamEnded() {
					r.ended = true
					open--
				}
			}
		case *http2.DataFrame:
			if r != nil {
				r.body = append(r.body, f.Data()...)
				if f.StreamEnded() {
					r.ended = true
					open--
				}
			}
		case *http2.RSTStreamFrame:
			if r != nil {
				r.rst, r.rstCode = true, f.ErrCode
				open--
			}
		case *http2.GoAwayFrame:
			rc.t.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
	return res
}

// TestInlinePanicResetsOnlyItsStream: a panic in ServeInline resets
// its stream (as x/net does for a handler's panic) and the connection's
// other streams are answered.
func TestInlinePanicResetsOnlyItsStream(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("goroutine")) })
	rc := serveInlineConn(t, h, inlineFunc(func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/panic":
			w.Header().Set("X", "y")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			panic("boom")
		case "/inline":
			w.Write([]byte("inline"))
			return true
		}
		return false
	}))
	rc.get(1, "/inline")
	rc.get(3, "/panic")
	rc.get(5, "/other")
	rc.get(7, "/inline")
	res := rc.read(1, 3, 5, 7)
	if !res[3].rst {
		t.Errorf("panicking stream not reset: %+v", res[3])
	}
	if string(res[1].body) != "inline" || string(res[7].body) != "inline" || string(res[5].body) != "goroutine" {
		t.Errorf("other streams: %q %q %q", res[1].body, res[5].body, res[7].body)
	}
}

// TestInlineTooBigIsReset: InlineHandler's doc says a Write past
// InlineBodyMax copied bytes fails "and the stream is reset". An inline
// answer that declares its length and writes past the bound must not
// reach the client as a complete (END_STREAM) response. (Its Writes are
// small, so the server copies them: a big first Write is queued as it
// is and not bounded, TestInlineBigWriteQueuedAsIs.)
func TestInlineTooBigIsReset(t *testing.T) {
	big := strings.Repeat("b", InlineBodyMax+1000)
	rc := serveInlineConn(t, http.NotFoundHandler(), inlineFunc(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", "70535")
		for p := big; len(p) > 0; {
			n := min(len(p), 1000)
			if _, err := w.Write([]byte(p[:n])); err != nil {
				break
			}
			p = p[n:]
		}
		return true
	}))
	rc.fr.WriteWindowUpdate(0, 1<<20)
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	rc.get(1, "/big")
	res := rc.read(1)[1]
	if !res.rst {
		t.Errorf("answer past InlineBodyMax: not reset; ended=%v with %d of %s bytes", res.ended, len(res.body), res.headerLen)
	}
}

// TestInlineResponseControllerNoDeadlock: ResponseWriter features that
// message the serve loop (SetWriteDeadline, SetReadDeadline, Push) fail
// for an inline handler, which runs on the serve goroutine itself: past
// serveMsgCh's 8 slots it would wait for itself forever. (The proxy's
// inline path calls none of them.)
func TestInlineResponseControllerNoDeadlock(t *testing.T) {
	rc := serveInlineConn(t, http.NotFoundHandler(), inlineFunc(func(w http.ResponseWriter, r *http.Request) bool {
		c := http.NewResponseController(w)
		for range 9 {
			if c.SetWriteDeadline(time.Now().Add(time.Minute)) == nil || c.SetReadDeadline(time.Now().Add(time.Minute)) == nil {
				w.Write([]byte("deadline set"))
				return true
			}
		}
		w.Write([]byte("ok"))
		return true
	}))
	rc.get(1, "/x")
	rc.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	res := rc.read(1)[1]
	if string(res.body) != "ok" {
		t.Errorf("answer %+v", res)
	}
}

// TestInlineBigWriteQueuedAsIs: an inline answer whose first body Write
// is larger than the body buffer (a stored 100 KiB body) is queued as it
// is (InlineHandler) and reaches the client whole, past the stream's
// initial window and InlineBodyMax, on the serve goroutine: no handler
// goroutine is started for it.
func TestInlineBigWriteQueuedAsIs(t *testing.T) {
	stored := [][]byte{pattern(1, 100<<10), pattern(2, InlineBodyMax+2), pattern(3, handlerChunkWriteSize+1)}
	started := HandlerGoroutinesStarted()
	rc := serveInlineConn(t, http.NotFoundHandler(), inlineFunc(func(w http.ResponseWriter, r *http.Request) bool {
		b := stored[int(r.URL.Path[1]-'0')]
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		return true
	}))
	rc.fr.WriteWindowUpdate(0, 1<<20)
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	rc.get(1, "/0")
	rc.get(3, "/1")
	rc.get(5, "/2")
	res := rc.read(1, 3, 5)
	for i, id := range []uint32{1, 3, 5} {
		if r := res[id]; !r.ended || r.rst || string(r.body) != string(stored[i]) {
			t.Errorf("stream %d: ended=%v rst=%v, %d of %d bytes, first difference at %d", id, r.ended, r.rst, len(r.body), len(stored[i]), firstDiff(r.body, stored[i]))
		}
	}
	if n := HandlerGoroutinesStarted() - started; n != 0 {
		t.Errorf("%d handler goroutines started for inline answers", n)
	}
}

// TestInlineBodyBufferNotSharedAcrossStreams (attack: an inline answer's
// bytes that went through the pooled 4 KiB body buffer, or came from a
// small Write of a buffer the handler reuses, read by the connection
// after they changed: the body buffer holds the next stream's answer once
// the handler returned it, and the handler scribbles over its own
// buffer, after a big first Write that was queued as it is). The client
// opens no flow-control window until every answer is queued, so every
// frame is written after every handler returned. Only a big first Write
// is queued as it is (the handler promises it never changes: here, a
// body of its own); every answer must hold its own bytes.
func TestInlineBodyBufferNotSharedAcrossStreams(t *testing.T) {
	scratch := make([]byte, 4<<10)
	rc := serveInlineConn(t, http.NotFoundHandler(), inlineFunc(func(w http.ResponseWriter, r *http.Request) bool {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		seed, _ := strconv.ParseInt(r.URL.Query().Get("seed"), 10, 64)
		piece, _ := strconv.Atoi(r.URL.Query().Get("piece"))
		body := pattern(seed, n)
		if piece <= 0 {
			k := len(body)
			if piece < 0 {
				k, piece = min(len(body), 5000), 1000
			}
			w.Write(body[:k]) // its own bytes, never changed
			body = body[k:]
		}
		for len(body) > 0 {
			k := copy(scratch[:min(piece, len(scratch))], body)
			body = body[k:]
			w.Write(scratch[:k])
			for i := range scratch[:k] {
				scratch[i] = 'X' // the next use of the buffer
			}
		}
		return true
	}))
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	type want struct {
		id   uint32
		body []byte
	}
	var wants []want
	for i := range 24 {
		n := []int{100, 3000, 4096, 4097, 9000, 20000}[i%6]
		piece := []int{0, 1000, 4096, 333, -1}[i%5]
		id := uint32(2*i + 1)
		rc.get(id, fmt.Sprintf("/?n=%d&piece=%d&seed=%d", n, piece, 100+i))
		wants = append(wants, want{id, pattern(int64(100+i), n)})
	}
	// A PING after the requests: its ACK comes once the serve loop has
	// handled every request before it (each answered inline, its frames
	// queued, waiting for the window).
	rc.fr.WritePing(false, [8]byte{1})
	var ids []uint32
	res := map[uint32]*streamResult{}
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			break
		}
		if d, ok := f.(*http2.DataFrame); ok && len(d.Data()) > 0 {
			t.Fatalf("DATA of stream %d before any window", d.StreamID)
		}
	}
	rc.fr.WriteWindowUpdate(0, 1<<20)
	for _, w := range wants {
		ids = append(ids, w.id)
		rc.fr.WriteWindowUpdate(w.id, 1<<20)
	}
	for id, r := range rc.read(ids...) {
		res[id] = r
	}
	for _, w := range wants {
		if r := res[w.id]; r.rst || string(r.body) != string(w.body) {
			t.Errorf("stream %d: rst=%v, %d of %d bytes, another stream's or a reused buffer's from byte %d", w.id, r.rst, len(r.body), len(w.body), firstDiff(r.body, w.body))
		}
	}
}
