package cache

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStress mixes hits, misses, revalidations, unsafe methods and purges on
// a few keys with both tiers, for the race detector; every answer must be a
// whole body of its URL.
func TestStress(t *testing.T) {
	e := newEnv(t, Config{MemorySize: 256 << 10, DiskSize: 1 << 20, Dir: t.TempDir(), WaitTimeout: time.Second},
		func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=1")
			w.Header().Set("ETag", `"`+r.URL.Path+`"`)
			w.Header().Set("Surrogate-Key", "k"+r.URL.Path[len(r.URL.Path)-1:])
			if r.Header.Get("If-None-Match") == `"`+r.URL.Path+`"` && rand.IntN(2) == 0 {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			fmt.Fprint(w, strings.Repeat(r.URL.Path, 1000))
		})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 150 {
				path := fmt.Sprintf("/s%d", rng.IntN(6))
				switch rng.IntN(20) {
				case 0:
					e.do(http.MethodPost, path)
				case 1:
					e.c.Purge(Purge{Tags: []string{"k" + path[len(path)-1:]}, Soft: rng.IntN(2) == 0})
				case 2:
					e.advance(500 * time.Millisecond)
				default:
					_, body := e.get(path)
					if body != strings.Repeat(path, 1000) {
						t.Errorf("%s: got %d bytes", path, len(body))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
