package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkScreenHead measures the per-request head check (limits and the
// '_' scan) on a browser-like head of 12 fields.
func BenchmarkScreenHead(b *testing.B) {
	s := New(Config{Limits: Limits{MaxHeaderBytes: 64 << 10, MaxURIBytes: 8 << 10}})
	req := httptest.NewRequest("GET", "/some/path?q=1", nil)
	req.Host = "b.example"
	for _, kv := range [][2]string{{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"},
		{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, {"Accept-Language", "en-US,en;q=0.5"},
		{"Accept-Encoding", "gzip, deflate, br, zstd"}, {"Referer", "https://b.example/"}, {"Cookie", "session=0123456789abcdef; theme=dark"},
		{"Sec-Fetch-Dest", "document"}, {"Sec-Fetch-Mode", "navigate"}, {"Sec-Fetch-Site", "same-origin"},
		{"Upgrade-Insecure-Requests", "1"}, {"Priority", "u=0, i"}, {"Dnt", "1"}} {
		req.Header.Set(kv[0], kv[1])
	}
	b.ReportAllocs()
	for b.Loop() {
		if s.screenHead(req, "b") != 0 {
			b.Fatal("refused")
		}
	}
}

// TestScreenHeadSizes: the head is measured in its HTTP/1.1 form; the
// limit is inclusive.
func TestScreenHeadSizes(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil) // origin form, as servers see it
	req.Host = "a.example"
	req.Header.Set("X-A", "1")
	// "GET / HTTP/1.1\r\n" 16 + "Host: a.example\r\n" 17 + "X-A: 1\r\n" 8 + "\r\n" 2
	const size = 43
	for _, tc := range []struct{ limit, want int }{{size, 0}, {size - 1, http.StatusRequestHeaderFieldsTooLarge}} {
		s := New(Config{Limits: Limits{MaxHeaderBytes: tc.limit}})
		if got := s.screenHead(req, ""); got != tc.want {
			t.Errorf("limit %d: %d, want %d", tc.limit, got, tc.want)
		}
	}
}
