package admin

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/internal/fixture"
)

const testToken = "0123456789abcdef0123456789abcdef"

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestDashboardFramedOrInjectedRefused: the page and its files carry a CSP
// that allows only the admin origin's own files and API (no inline script,
// no other host), forbids framing (clickjacking the purge form) and form
// posts; they need no token, the API behind them does.
func TestDashboardFramedOrInjectedRefused(t *testing.T) {
	srv := httptest.NewServer(Handler(Config{Token: testToken}))
	defer srv.Close()
	for _, path := range []string{"/", "/ui/", "/ui/app.js", "/ui/app.css", "/ui/icon.svg"} {
		resp, body := get(t, srv.URL+path, "")
		if resp.StatusCode != 200 || body == "" {
			t.Errorf("%s: %d, want 200 with a body", path, resp.StatusCode)
			continue
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %s", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") || strings.Contains(csp, "http") {
			t.Errorf("%s: CSP %q allows more than the page's origin", path, csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q", path, resp.Header.Get("X-Frame-Options"), resp.Header.Get("X-Content-Type-Options"))
		}
	}
	if resp, _ := get(t, srv.URL+"/", ""); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("/: Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, srv.URL+"/ui/app.js", ""); !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Errorf("app.js: Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, srv.URL+"/ui/nothing.js", ""); resp.StatusCode != 404 {
		t.Errorf("/ui/nothing.js: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, srv.URL+"/api/v1/cache/history", ""); resp.StatusCode != 401 {
		t.Errorf("the history without a token: %d, want 401", resp.StatusCode)
	}
}

// TestDashboardHTMLInjectionImpossible: the page holds the admin token, so
// node text (hostnames, status_detail, event detail, file names) written
// as HTML would be a takeover. The script has no HTML sink at all, and the
// page loads nothing from another host.
func TestDashboardHTMLInjectionImpossible(t *testing.T) {
	sinks := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*'on|\.on[a-z]+\s*=|setTimeout\(\s*['"]|javascript:|srcdoc`)
	err := fs.WalkDir(uiFiles, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFiles.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(b)
		if strings.HasSuffix(path, ".js") {
			for _, m := range sinks.FindAllString(s, -1) {
				t.Errorf("%s uses %q: write node text with textContent", path, m)
			}
			if !strings.Contains(s, "textContent") || !strings.Contains(s, "sessionStorage") || strings.Contains(s, "localStorage") {
				t.Errorf("%s: want textContent and sessionStorage, never localStorage", path)
			}
		}
		for _, m := range regexp.MustCompile(`(?:src|href|url\()\s*=?\s*["']?(?:https?:)?//`).FindAllString(s, -1) {
			t.Errorf("%s loads from another host: %q", path, m)
		}
		if strings.HasSuffix(path, ".html") && (strings.Contains(s, "<script>") || strings.Contains(s, "style=") || regexp.MustCompile(`\son[a-z]+=`).MatchString(s)) {
			t.Errorf("%s has inline script or style (the CSP forbids them)", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fakeStats is a cache's figures that the test moves by hand.
type fakeStats struct {
	mu sync.Mutex
	s  cache.Stats
}

func (f *fakeStats) stats() cache.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.s
	out.Properties = map[string]cache.PropertyStats{}
	for k, v := range f.s.Properties {
		out.Properties[k] = v
	}
	return out
}

func (f *fakeStats) hit(prop string, hits, misses, bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.s.Properties == nil {
		f.s.Properties = map[string]cache.PropertyStats{}
	}
	p := f.s.Properties[prop]
	p.Hits += hits
	p.Misses += misses
	p.ServedBytes += bytes
	f.s.Properties[prop] = p
	f.s.Memory.Objects = misses
}

// TestHistoryRingIsOneHourNodeWide: the history sums every property into
// one point a minute, keeps the last 60 (oldest first) and adds the minute
// under way; memory stays one ring however many properties there are.
func TestHistoryRingIsOneHourNodeWide(t *testing.T) {
	f := &fakeStats{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var fetched atomic.Int64 // bytes from origins: 1000 a minute
	h := NewHistory(f.stats, fetched.Load, t0)
	for m := 1; m <= 75; m++ {
		for p := range 50 {
			f.hit("p"+strconv.Itoa(p), int64(m), 1, 100)
		}
		fetched.Add(1000)
		h.Record(t0.Add(time.Duration(m) * time.Minute))
	}
	f.hit("p0", 7, 0, 0)
	pts := h.Points(t0.Add(75*time.Minute + 30*time.Second))
	if len(pts) != HistoryMinutes+1 {
		t.Fatalf("%d points, want %d and the current minute", len(pts), HistoryMinutes+1)
	}
	first, last, cur := pts[0], pts[HistoryMinutes-1], pts[HistoryMinutes]
	if !first.Time.Equal(t0.Add(16*time.Minute)) || first.Hits != 16*50 || first.Misses != 50 || first.ServedBytes != 5000 || first.OriginBytes != 1000 || first.Seconds != 60 {
		t.Errorf("oldest point %+v, want minute 16: 800 hits, 50 misses, 1000 bytes from origins", first)
	}
	if !last.Time.Equal(t0.Add(75*time.Minute)) || last.Hits != 75*50 {
		t.Errorf("newest point %+v, want minute 75: 3750 hits", last)
	}
	if cur.Hits != 7 || cur.Misses != 0 || cur.Seconds != 30 {
		t.Errorf("current minute %+v, want 7 hits in 30 s", cur)
	}
}

// TestHistoryAndFleetEndpoints: GET /api/v1/cache/history answers the
// ring; GET /api/v1/fleet says a single node is no fleet, and lists a
// fleet's nodes.
func TestHistoryAndFleetEndpoints(t *testing.T) {
	f := &fakeStats{}
	now := time.Now()
	h := NewHistory(f.stats, nil, now)
	f.hit("shop", 3, 1, 10)
	srv := httptest.NewServer(Handler(Config{Token: testToken, History: h}))
	defer srv.Close()
	resp, body := get(t, srv.URL+"/api/v1/cache/history", testToken)
	var hist struct {
		Interval int            `json:"interval_seconds"`
		Points   []HistoryPoint `json:"points"`
	}
	if err := json.Unmarshal([]byte(body), &hist); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
	}
	if hist.Interval != 60 || len(hist.Points) != 1 || hist.Points[0].Hits != 3 || hist.Points[0].Misses != 1 {
		t.Errorf("history %+v", hist)
	}
	resp, body = get(t, srv.URL+"/api/v1/fleet", testToken)
	if resp.StatusCode != 200 || !strings.Contains(body, `"fleet": false`) || !strings.Contains(body, `"nodes": []`) {
		t.Errorf("single node: %d %s", resp.StatusCode, body)
	}
	fleet := httptest.NewServer(Handler(Config{Token: testToken, Fleet: func(context.Context) ([]FleetNode, error) {
		return []FleetNode{{Name: "edge-1", Alive: true, SeenAt: now}}, nil
	}}))
	defer fleet.Close()
	resp, body = get(t, fleet.URL+"/api/v1/fleet", testToken)
	if resp.StatusCode != 200 || !strings.Contains(body, `"fleet": true`) || !strings.Contains(body, `"name": "edge-1"`) || !strings.Contains(body, `"alive": true`) {
		t.Errorf("fleet: %d %s", resp.StatusCode, body)
	}
	noCache := httptest.NewServer(Handler(Config{Token: testToken}))
	defer noCache.Close()
	if resp, _ := get(t, noCache.URL+"/api/v1/cache/history", testToken); resp.StatusCode != 501 {
		t.Errorf("history without a cache: %d, want 501", resp.StatusCode)
	}
}

// TestBackupHasContentLength: the backup announces its exact size, so
// `edge backup` can show the time left, and the body is that long.
func TestBackupHasContentLength(t *testing.T) {
	b := fixture.Bolt(t)
	srv := httptest.NewServer(Handler(Config{Token: testToken, Backup: b.WriteTo}))
	defer srv.Close()
	resp, body := get(t, srv.URL+"/api/v1/backup", testToken)
	if resp.StatusCode != 200 || resp.ContentLength <= 0 || int64(len(body)) != resp.ContentLength {
		t.Errorf("backup: %d, Content-Length %d, body %d bytes", resp.StatusCode, resp.ContentLength, len(body))
	}
}

// TestCertificatesOrderForAttention: ?order=attention lists the soonest to
// expire first, ?limit= cuts the list and total still counts them all, so
// a page never fetches 100,000 certificates; bad values are 400s.
func TestCertificatesOrderForAttention(t *testing.T) {
	srv := httptest.NewServer(Handler(Config{Token: testToken, Certs: fixture.Certs(t)}))
	defer srv.Close()
	for _, c := range []struct{ name, validFor string }{{"a-long", "30d"}, {"b-short", "2d"}, {"c-mid", "10d"}} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/certificates",
			strings.NewReader(`{"name": "`+c.name+`", "self_signed": true, "hostnames": ["`+c.name+`.example"], "valid_for": "`+c.validFor+`"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("create %s: %d", c.name, resp.StatusCode)
		}
	}
	names := func(query string) ([]string, int) {
		resp, body := get(t, srv.URL+"/api/v1/certificates"+query, testToken)
		var out struct {
			Certificates []CertificateView `json:"certificates"`
			Total        int               `json:"total"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
		}
		var n []string
		for _, c := range out.Certificates {
			n = append(n, c.Name)
		}
		return n, out.Total
	}
	if got, total := names(""); strings.Join(got, " ") != "a-long b-short c-mid" || total != 3 {
		t.Errorf("default order %v (total %d), want by name", got, total)
	}
	if got, total := names("?order=attention"); strings.Join(got, " ") != "b-short c-mid a-long" || total != 3 {
		t.Errorf("attention %v (total %d), want the soonest to expire first", got, total)
	}
	if got, total := names("?order=attention&limit=2"); strings.Join(got, " ") != "b-short c-mid" || total != 3 {
		t.Errorf("limit 2: %v (total %d), want two and total 3", got, total)
	}
	for _, q := range []string{"?order=random", "?limit=0", "?limit=x", "?limit=-1"} {
		if resp, _ := get(t, srv.URL+"/api/v1/certificates"+q, testToken); resp.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", q, resp.StatusCode)
		}
	}
}
