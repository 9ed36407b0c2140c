package h2srv

// Safety of the inline path at the server level: a panic, an answer past
// InlineBodyMax, ResponseWriter features that would wait for the serve loop.

import (
	"bytes"
	"net"
	"net/http"
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
