package proxy

import (
	"errors"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkAccessLog is one access line, encoded as the node encodes it
// (JSON, ISO 8601 time) and discarded: the cost of the fields, zap's and
// the encoder's.
func BenchmarkAccessLog(b *testing.B) {
	for _, tc := range []struct {
		name string
		err  error
	}{{"ok", nil}, {"error", errors.New("origin closed the connection")}} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(Config{AccessLog: true, Logger: zap.New(discardCore())})
			defer s.Close()
			r := httptest.NewRequest("GET", "http://c.example/object?x=1", nil)
			r.RemoteAddr = "192.0.2.1:1234"
			rec := &recorder{status: 200, bytes: 100}
			req := &request{began: monoNow(), origin: "http://127.0.0.1:8080", err: tc.err}
			s.ids.next(req)
			b.ReportAllocs()
			for b.Loop() {
				s.logAccess(rec, r, req, monoNow()-req.began)
			}
		})
	}
}
