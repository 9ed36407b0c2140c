package cache

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRange(t *testing.T) {
	e := newEnv(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"r1"`)
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader("0123456789"))
	})
	// A Range miss passes through and fills the full object behind it.
	resp, body := e.get("/r", "Range", "bytes=0-3")
	if resp.StatusCode != http.StatusPartialContent || body != "0123" {
		t.Fatalf("miss: %d %q", resp.StatusCode, body)
	}
	e.settle()
	hits := e.hits.Load()
	for _, tc := range []struct {
		rng, ifRange string
		status       int
		body, cr     string
	}{
		{"bytes=2-5", "", 206, "2345", "bytes 2-5/10"},
		{"bytes=7-", "", 206, "789", "bytes 7-9/10"},
		{"bytes=-3", "", 206, "789", "bytes 7-9/10"},
		{"bytes=5-100", "", 206, "56789", "bytes 5-9/10"},
		{"bytes=20-30", "", 416, "", "bytes */10"},
		{"bytes=0-1,4-5", "", 200, "0123456789", ""},
		{"bytes=2-5", `"r1"`, 206, "2345", "bytes 2-5/10"},
		{"bytes=2-5", `"old"`, 200, "0123456789", ""},
		{"lines=1-2", "", 200, "0123456789", ""},
	} {
		hdr := []string{"Range", tc.rng}
		if tc.ifRange != "" {
			hdr = append(hdr, "If-Range", tc.ifRange)
		}
		resp, body := e.get("/r", hdr...)
		if resp.StatusCode != tc.status || body != tc.body || resp.Header.Get("Content-Range") != tc.cr {
			t.Errorf("%s (If-Range %s): got %d %q %q, want %d %q %q", tc.rng, tc.ifRange,
				resp.StatusCode, body, resp.Header.Get("Content-Range"), tc.status, tc.body, tc.cr)
		}
	}
	if e.hits.Load() != hits {
		t.Errorf("ranges went to the origin")
	}
}
