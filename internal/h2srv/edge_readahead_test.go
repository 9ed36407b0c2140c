package h2srv

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2HeadersReadAheadEachStreamItsOwn (attack: the frame reader reads
// the next request's HEADERS while the serve loop still builds the last
// one's request; if anything of a request were left in the read buffer
// or the HPACK decoder's state, one request would take another's header
// values). 60 requests, every other one split into HEADERS and
// CONTINUATION frames, all written in one write so the reader always has
// the next frame to read; each answer echoes its own request's header
// values, whole. Under -race it also proves the reader and the serve loop
// share nothing of a frame.
func TestH2HeadersReadAheadEachStreamItsOwn(t *testing.T) {
	rc := serveInlineConn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("X-Token")+"|"+r.Header.Get("X-Long")+"|"+r.URL.Path)
		w.Write([]byte(r.URL.Path))
	}), nil)
	var wire bytes.Buffer
	fr := http2.NewFramer(&wire, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	want := map[uint32]string{}
	var ids []uint32
	for i := range 60 {
		id := uint32(2*i + 1)
		path := fmt.Sprintf("/s%d", i)
		token := fmt.Sprintf("token-%d-%s", i, strings.Repeat("t", i))
		long := strings.Repeat(string(rune('a'+i%26)), 200+i)
		block.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x.example"}, {":path", path}, {"x-token", token}, {"x-long", long}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		b := block.Bytes()
		if i%2 == 0 {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndStream: true, EndHeaders: true})
		} else {
			h := len(b) / 2
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b[:h], EndStream: true})
			fr.WriteContinuation(id, true, b[h:])
		}
		want[id] = token + "|" + long + "|" + path
		ids = append(ids, id)
	}
	if _, err := rc.c.Write(wire.Bytes()); err != nil {
		t.Fatal(err)
	}
	res := rc.readAll(ids...)
	for _, id := range ids {
		a := res[id]
		got := a.values("x-echo")
		if len(got) != 1 || got[0] != want[id] {
			t.Fatalf("stream %d: x-echo %.60q, want %.60q", id, got, want[id])
		}
		if p := want[id][strings.LastIndexByte(want[id], '|')+1:]; string(a.body) != p {
			t.Fatalf("stream %d: body %q, want %q", id, a.body, p)
		}
	}
}
