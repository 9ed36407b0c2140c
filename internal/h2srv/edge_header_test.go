package h2srv

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// TestH2WriteHeaderKeptSameFieldsAsWriteHeader: an answer written with
// WriteHeaderKept carries the same fields, byte for byte, as one written
// with WriteHeader (Content-Length once, from the server's own field;
// Connection left out; repeated names; Content-Type and Date as the
// handler set them), whether its HEADERS go out after the handler
// returned or from a Flush while it runs; the handler's map keeps every
// field the server left out of the frame (it is the handler's: the
// proxy's access log and cache read it after); and a plain
// WriteHeader still sends the map as it was at WriteHeader, whatever the
// handler changes after it.
func TestH2WriteHeaderKeptSameFieldsAsWriteHeader(t *testing.T) {
	untouched := make(chan string, 16)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept, flush := r.URL.Query().Has("kept"), r.URL.Query().Has("flush")
		hd := w.Header()
		hd.Set("Content-Length", "5")
		hd.Set("Connection", "keep-alive")
		hd.Set("Content-Type", "text/plain")
		hd.Set("Date", "Mon, 07 Dec 2026 23:00:00 GMT")
		hd["X-B"] = []string{"1", "2"}
		if kept {
			w.(interface{ WriteHeaderKept(int) }).WriteHeaderKept(203)
		} else {
			w.WriteHeader(203)
			hd.Set("X-B", "changed after WriteHeader")
			hd.Set("X-Late", "1")
		}
		w.Write([]byte("hello"))
		if flush {
			w.(http.Flusher).Flush()
		}
		if kept {
			untouched <- fmt.Sprintf("%s %q %q %q", r.URL, hd["Content-Length"], hd["Connection"], hd["X-B"])
		}
	})
	rc := serveInlineConn(t, h, nil)
	paths := []string{"/a", "/a?flush", "/a?kept", "/a?kept&flush"}
	var ids []uint32
	for i, p := range paths {
		id := uint32(2*i + 1)
		rc.get(id, p)
		ids = append(ids, id)
	}
	res := rc.readAll(ids...)
	want := []string{":status=203", "content-type=text/plain", "date=Mon, 07 Dec 2026 23:00:00 GMT", "x-b=1", "x-b=2", "content-length=5"}
	for i, id := range ids {
		a := res[id]
		var got []string
		for _, f := range a.fields {
			got = append(got, f.Name+"="+f.Value)
		}
		if !slices.Equal(got, want) || string(a.body) != "hello" {
			t.Errorf("%s: fields %q body %q, want %q and hello", paths[i], got, a.body, want)
		}
	}
	for range 2 {
		if got := <-untouched; !slices.Contains([]string{
			`/a?kept ["5"] ["keep-alive"] ["1" "2"]`, `/a?kept&flush ["5"] ["keep-alive"] ["1" "2"]`,
		}, got) {
			t.Errorf("handler's map after the answer: %s", got)
		}
	}
}
