package h2srv

import (
	"fmt"
	"net/http"
	"testing"
)

// TestH2RequestIDNotIndexedEachAnswerItsOwn: X-Request-Id (a value of its
// own in every answer) is sent as a literal never indexed, so the HPACK
// dynamic table is left as it is; every answer on the connection, over
// rounds of concurrent streams, decodes with its own request id and the
// other fields intact (the encoder's and the client's tables agree).
func TestH2RequestIDNotIndexedEachAnswerItsOwn(t *testing.T) {
	rc := serveInlineConn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "id"+r.URL.Path)
		w.Header().Set("Via", "2 edge")
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(r.URL.Path))
	}), nil)
	id := uint32(1)
	for round := range 4 {
		var ids []uint32
		for i := range 8 {
			rc.get(id, fmt.Sprintf("/r%d/s%d", round, i))
			ids = append(ids, id)
			id += 2
		}
		res := rc.readAll(ids...)
		for i, sid := range ids {
			a := res[sid]
			path := fmt.Sprintf("/r%d/s%d", round, i)
			if string(a.body) != path {
				t.Fatalf("stream %d: body %q, want %q", sid, a.body, path)
			}
			n := 0
			for _, f := range a.fields {
				switch f.Name {
				case "x-request-id":
					n++
					if f.Value != "id"+path {
						t.Errorf("stream %d: x-request-id %q, want %q", sid, f.Value, "id"+path)
					}
					if !f.Sensitive {
						t.Errorf("stream %d: x-request-id sent for indexing", sid)
					}
				case "via":
					if f.Value != "2 edge" || f.Sensitive {
						t.Errorf("stream %d: via %q (never indexed %v)", sid, f.Value, f.Sensitive)
					}
				case "content-type":
					if f.Value != "text/plain" {
						t.Errorf("stream %d: content-type %q", sid, f.Value)
					}
				}
			}
			if n != 1 {
				t.Errorf("stream %d: %d x-request-id fields", sid, n)
			}
		}
	}
}
