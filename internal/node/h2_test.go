package node

import (
	"bytes"
	"crypto/tls"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is a raw HTTP/2 client connection, to send what Go's client
// refuses to (oversized or forbidden headers) and to read the server's
// settings.
type h2Conn struct {
	t        *testing.T
	c        *tls.Conn
	fr       *http2.Framer
	settings map[http2.SettingID]uint32
	next     uint32
}

func dialH2(t *testing.T, addr, sni string) *h2Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN: %q, want h2", p)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	h := &h2Conn{t: t, c: c, fr: http2.NewFramer(c, c), settings: map[http2.SettingID]uint32{}, next: 1}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %T, want SETTINGS", f)
	}
	_ = sf.ForeachSetting(func(s http2.Setting) error { h.settings[s.ID] = s.Val; return nil })
	if err := h.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return h
}

// get sends a GET with the given header fields (lower-case names, pairs)
// in frames of at most 16 KiB, and returns the response status, or 0 with
// the error code when the stream or connection is reset.
func (h *h2Conn) get(authority, path string, fields ...string) (int, http2.ErrCode) {
	h.t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(0)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", authority}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1], Sensitive: true})
	}
	id := h.next
	h.next += 2
	block := buf.Bytes()
	const frame = 16 << 10
	first := block[:min(frame, len(block))]
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: true, EndHeaders: len(block) <= frame}); err != nil {
		return 0, http2.ErrCodeProtocol
	}
	for rest := block[len(first):]; len(rest) > 0; {
		chunk := rest[:min(frame, len(rest))]
		rest = rest[len(chunk):]
		if err := h.fr.WriteContinuation(id, len(rest) == 0, chunk); err != nil {
			return 0, http2.ErrCodeProtocol
		}
	}
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("reading the answer: %v", err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				code, _ := strconv.Atoi(f.PseudoValue("status"))
				return code, 0
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return 0, f.ErrCode
			}
		case *http2.GoAwayFrame:
			return 0, f.ErrCode
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		}
	}
}
