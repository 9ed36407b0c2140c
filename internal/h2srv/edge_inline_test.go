package h2srv

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// inlineTest is an InlineHandler and the handler behind it: answers
// whose path is /inline inline, the others on a goroutine.
type inlineTest struct {
	inlineHeader http.Header // set on inline answers
	served       chan string // "inline /x" or "goroutine /x"
}

func (h *inlineTest) ServeInline(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("X-Declined-Leftover", "1") // dropped when declining
	if r.URL.Path != "/inline" {
		return false
	}
	for k, v := range h.inlineHeader {
		w.Header()[k] = v
	}
	io.WriteString(w, "inline body")
	h.served <- "inline " + r.URL.Path
	return true
}

func (h *inlineTest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "goroutine body")
	h.served <- "goroutine " + r.URL.Path
}

// serveInlineTest serves one connection with h and returns the client's
// framer on it, settings exchanged.
func serveInlineTest(t *testing.T, h *inlineTest) (*http2.Framer, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := &Server{}
		s.ServeConn(c, &ServeConnOpts{Handler: h, Inline: h, BaseConfig: &http.Server{}})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	return fr, c
}

func sendGet(t *testing.T, fr *http2.Framer, id uint32, path string) {
	t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

// readAnswer reads until stream id ends and returns its header fields and
// body; it reports a GOAWAY seen on the way.
func readAnswer(t *testing.T, fr *http2.Framer, id uint32) (fields []hpack.HeaderField, body []byte, goAway bool) {
	t.Helper()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			goAway = true
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				fields = append(fields, f.Fields...)
				if f.StreamEnded() {
					return
				}
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				body = append(body, f.Data()...)
				if f.StreamEnded() {
					return
				}
			}
		}
	}
}

func hasField(fs []hpack.HeaderField, name string) bool {
	for _, f := range fs {
		if f.Name == name {
			return true
		}
	}
	return false
}

// debugGoroutines turns x/net's goroutine checks on for a test: a
// function meant for handler goroutines called on the serve goroutine
// (or the reverse) panics.
func debugGoroutines(t *testing.T) {
	DebugGoroutines = true
	t.Cleanup(func() { DebugGoroutines = false })
}

// TestInlineAnswerAndDecline: /inline is answered by ServeInline, on the
// serve goroutine; another path is declined, its leftover header dropped,
// and served by the Handler.
func TestInlineAnswerAndDecline(t *testing.T) {
	debugGoroutines(t)
	h := &inlineTest{served: make(chan string, 4)}
	fr, _ := serveInlineTest(t, h)
	sendGet(t, fr, 1, "/inline")
	fields, body, _ := readAnswer(t, fr, 1)
	if string(body) != "inline body" || <-h.served != "inline /inline" {
		t.Errorf("/inline: %q %v", body, fields)
	}
	sendGet(t, fr, 3, "/other")
	fields, body, _ = readAnswer(t, fr, 3)
	if string(body) != "goroutine body" || <-h.served != "goroutine /other" {
		t.Errorf("/other: %q %v", body, fields)
	}
	if hasField(fields, "x-declined-leftover") {
		t.Errorf("a declined request's header was sent: %v", fields)
	}
}

// TestInlineConnectionCloseNoDeadlock: an inline answer with
// "Connection: close" starts the graceful shutdown (GOAWAY) from the serve
// goroutine itself, without sending itself a message (which x/net's
// goroutine checks refuse: its channel may be full).
func TestInlineConnectionCloseNoDeadlock(t *testing.T) {
	debugGoroutines(t)
	h := &inlineTest{served: make(chan string, 16), inlineHeader: http.Header{"Connection": {"close"}}}
	fr, _ := serveInlineTest(t, h)
	sendGet(t, fr, 1, "/inline")
	fields, body, goAway := readAnswer(t, fr, 1)
	if string(body) != "inline body" || hasField(fields, "connection") {
		t.Errorf("answer: %q %v", body, fields)
	}
	for !goAway {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		_, goAway = f.(*http2.GoAwayFrame)
	}
}
