package h2srv

// Attacks on the shared allocations of a stream (h2alloc): a request's
// header values share one array, a response header snapshot shares one
// array, and a stream carries its requestBody, responseWriter and final
// frames. None may let one field, one stream or one client's data reach
// another.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// getWith sends a GET on stream id with extra header fields (and, when
// body is not nil, a body with a trailer x-trailer: trailer).
func (rc *rconn) getWith(id uint32, path string, extra [][2]string, body []byte, trailer string) {
	rc.t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	fields := [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x.example"}, {":path", path}}
	if body != nil {
		fields = append(fields, [2]string{"trailer", "x-trailer"})
	}
	for _, f := range append(fields, extra...) {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: body == nil, EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
	if body == nil {
		return
	}
	if err := rc.fr.WriteData(id, false, body); err != nil {
		rc.t.Fatal(err)
	}
	buf.Reset()
	enc.WriteField(hpack.HeaderField{Name: "x-trailer", Value: trailer})
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
}

type fullAnswer struct {
	fields []hpack.HeaderField // every HEADERS block's, trailers included
	body   []byte
}

func (a *fullAnswer) values(name string) []string {
	var vs []string
	for _, f := range a.fields {
		if f.Name == name {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// readAll reads until every stream in ids ended.
func (rc *rconn) readAll(ids ...uint32) map[uint32]*fullAnswer {
	rc.t.Helper()
	res := map[uint32]*fullAnswer{}
	for _, id := range ids {
		res[id] = &fullAnswer{}
	}
	open := len(ids)
	for open > 0 {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("read: %v", err)
		}
		a := res[f.Header().StreamID]
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if a != nil {
				a.fields = append(a.fields, f.Fields...)
				if f.StreamEnded() {
					open--
				}
			}
		case *http2.DataFrame:
			if a != nil {
				a.body = append(a.body, f.Data()...)
				if f.StreamEnded() {
					open--
				}
			}
			if n := len(f.Data()); n > 0 {
				rc.fr.WriteWindowUpdate(0, uint32(n))
				rc.fr.WriteWindowUpdate(f.StreamID, uint32(n))
			}
		case *http2.RSTStreamFrame:
			rc.t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			rc.t.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
	return res
}

// TestH2RequestHeaderAppendStaysInItsField: a request's header values are
// cut from one array; a handler appending to one field (or a repeated
// name appended while the map is built) must not overwrite the value of
// the field after it.
func TestH2RequestHeaderAppendStaysInItsField(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header["X-A"] = append(r.Header["X-A"], "evil-a")
		r.Header.Add("X-B", "evil-b")
		fmt.Fprintf(w, "a=%q b=%q c=%q", r.Header["X-A"], r.Header["X-B"], r.Header["X-C"])
	})
	rc := serveInlineConn(t, h, nil)
	rc.getWith(1, "/", [][2]string{{"x-a", "a1"}, {"x-b", "b1"}, {"x-a", "a2"}, {"x-c", "c1"}}, nil, "")
	a := rc.readAll(1)[1]
	want := `a=["a1" "a2" "evil-a"] b=["b1" "evil-b"] c=["c1"]`
	if string(a.body) != want {
		t.Fatalf("handler saw %s, want %s", a.body, want)
	}
}

// TestH2ResponseHeaderChangedAfterWriteHeaderNotSent: the header snapshot
// taken at WriteHeader shares one array for its values; the handler
// changing its header map afterwards (in place, or by append) changes
// nothing that is sent.
func TestH2ResponseHeaderChangedAfterWriteHeaderNotSent(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["X-A"] = []string{"a1"}
		hd["X-B"] = []string{"b1", "b2"}
		hd["X-C"] = []string{"c1"}
		w.WriteHeader(200)
		hd["X-A"] = append(hd["X-A"], "late-a")
		hd["X-B"][1] = "late-b"
		hd["X-C"][0] = "late-c"
		hd.Set("X-D", "late-d")
		io.WriteString(w, "body")
	})
	rc := serveInlineConn(t, h, nil)
	rc.get(1, "/")
	a := rc.readAll(1)[1]
	for name, want := range map[string]string{"x-a": "a1", "x-b": "b1,b2", "x-c": "c1", "x-d": ""} {
		if got := strings.Join(a.values(name), ","); got != want {
			t.Errorf("%s: sent %q, want %q", name, got, want)
		}
	}
	if string(a.body) != "body" {
		t.Errorf("body %q", a.body)
	}
}

// TestH2StreamsNeverSeeAnotherStreamsData: many streams on two
// connections at once, each with its own header, body and trailer; each
// answer (header, body, trailer, all written when the handler returns,
// through the stream's own final frames) carries its own request's
// values only: no client's header, body or trailer reaches another's
// stream.
func TestH2StreamsNeverSeeAnotherStreamsData(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		id := r.Header.Get("X-Id")
		w.Header().Set("Trailer", "X-Echo-Trailer")
		w.Header().Set("X-Echo-Id", id)
		w.Header().Add("X-Echo-Id", id+"-2")
		w.Write([]byte(r.URL.Path + "|" + string(body)))
		w.Header().Set("X-Echo-Trailer", r.Trailer.Get("X-Trailer"))
	})
	const conns, streams, rounds = 2, 20, 3
	var rcs []*rconn
	for c := 0; c < conns; c++ {
		rcs = append(rcs, serveInlineConn(t, h, nil))
	}
	tag := func(c, round, s int) string { return fmt.Sprintf("c%d-r%d-s%d", c, round, s) }
	for round := 0; round < rounds; round++ {
		// Every connection's streams are sent before any is read: the
		// two connections' handlers run at the same time.
		for c, rc := range rcs {
			for s := 0; s < streams; s++ {
				tg := tag(c, round, s)
				rc.getWith(uint32(1+2*(round*streams+s)), "/"+tg, [][2]string{{"x-id", tg}}, []byte("body-"+tg), "tr-"+tg)
			}
		}
		for c, rc := range rcs {
			var ids []uint32
			for s := 0; s < streams; s++ {
				ids = append(ids, uint32(1+2*(round*streams+s)))
			}
			res := rc.readAll(ids...)
			for s, sid := range ids {
				tg := tag(c, round, s)
				a := res[sid]
				got := a.values("x-echo-id")
				sort.Strings(got)
				if strings.Join(got, ",") != tg+","+tg+"-2" {
					t.Errorf("stream %s: x-echo-id %q", tg, got)
				}
				if string(a.body) != "/"+tg+"|body-"+tg {
					t.Errorf("stream %s: body %q", tg, a.body)
				}
				if tr := a.values("x-echo-trailer"); len(tr) != 1 || tr[0] != "tr-"+tg {
					t.Errorf("stream %s: trailer %q", tg, tr)
				}
			}
		}
	}
}
