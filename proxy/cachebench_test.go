package proxy

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// BenchmarkCacheHit is a hit through the whole proxy handler (routing,
// request state, access log, the cache): issue 9 asks for no allocation
// per hit beyond the response writer's own. The writer here allocates
// nothing itself; its header map is cleared, not remade, per request, so
// that -benchmem counts the edge's own allocations: one, the request
// state (160 B). It is not pooled: the X-Request-Id value is a view of its
// bytes, and net/http writes the response head after the handler returns.
// A hit makes no r.WithContext (cache.ServeHit answers before it).
func BenchmarkCacheHit(b *testing.B) {
	for _, size := range []int{100, 100 << 10} {
		b.Run("body="+strconv.Itoa(size), func(b *testing.B) {
			body := strings.Repeat("x", size)
			o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=3600")
				w.Write([]byte(body))
			}))
			defer o.Close()
			dir := b.TempDir()
			os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("hostnames: [c.example]\norigins: [{url: "+o.URL+"}]\ncache: {enabled: true}\n"), 0o644)
			tab, err := property.LoadDir(dir, nil, property.Options{})
			if err != nil || len(tab.Problems()) > 0 {
				b.Fatal(err, tab.Problems())
			}
			c, err := cache.New(cache.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			s := New(Config{AccessLog: true, Logger: zap.New(discardCore()), Cache: c})
			defer s.Close()
			s.Update(tab)
			h := s.HTTPHandler()
			req := httptest.NewRequest("GET", "http://c.example/object", nil)
			req.RemoteAddr = "192.0.2.1:1234"
			w := discardWriter{h: http.Header{}}
			for i := 0; ; i++ { // the fill is stored in the background
				clear(w.h)
				h.ServeHTTP(&w, req)
				if strings.Contains(w.h.Get("Cache-Status"), "hit") {
					break
				}
				if i == 1000 {
					b.Fatalf("no hit: %v", w.h)
				}
				time.Sleep(time.Millisecond)
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				clear(w.h)
				w.code = 0
				h.ServeHTTP(&w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}
