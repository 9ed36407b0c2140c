package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// purgeThroughAPI posts body to the admin API's purge endpoint served
// with p as the node's cache.
func purgeThroughAPI(t *testing.T, p *purger, body string) (int, map[string]any) {
	t.Helper()
	srv := httptest.NewServer(admin.Handler(admin.Config{Token: "tok", Cache: p}))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/cache/purge", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%d %s: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

func newPurgeCache(t *testing.T) *cache.Cache {
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPurgeOfUnknownPropertyIs404: a purge naming a property that does not
// exist answered 200 {"purged":0} on a single node, so a typo looked like
// a purge that found nothing. It is 404; a served property still purges.
func TestPurgeOfUnknownPropertyIs404(t *testing.T) {
	p := &purger{cache: newPurgeCache(t), node: "solo", log: zap.NewNop(), now: time.Now,
		served: func(name string) bool { return name == "shop" }}
	code, out := purgeThroughAPI(t, p, `{"property": "shpo", "all": true}`)
	e, _ := out["error"].(map[string]any)
	if msg, _ := e["message"].(string); code != http.StatusNotFound || e["code"] != "not_found" || !strings.Contains(msg, `"shpo"`) {
		t.Errorf("unknown property: %d %v, want 404 naming it", code, out)
	}
	if code, out := purgeThroughAPI(t, p, `{"property": "shop", "all": true}`); code != http.StatusOK || out["purged"] != 0.0 {
		t.Errorf("served property: %d %v", code, out)
	}
}

// TestPurgeOfPropertyServedElsewhereIsRecorded: in a fleet another node may
// serve the property: the purge is recorded for the fleet, and the answer
// (200) says it is not served here.
func TestPurgeOfPropertyServedElsewhereIsRecorded(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/pu/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := &purger{cache: newPurgeCache(t), fleet: st, node: "n1", log: zap.NewNop(), now: time.Now,
		served: func(name string) bool { return name == "shop" }}
	code, out := purgeThroughAPI(t, p, `{"property": "blog", "all": true}`)
	if note, _ := out["note"].(string); code != http.StatusOK || !strings.Contains(note, `property "blog" is not served here`) {
		t.Errorf("%d %v, want 200 with a note", code, out)
	}
	var recorded []cache.Purge
	if err := st.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.Meta, purgePrefix, func(_ string, v []byte) error {
			var c cache.Purge
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			recorded = append(recorded, c)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(recorded) != 1 || recorded[0].Property != "blog" || !recorded[0].All {
		t.Errorf("recorded %+v, want the purge of blog", recorded)
	}
}
