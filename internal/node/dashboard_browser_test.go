package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium returns the path of a Chromium the test can drive, or skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium binary on PATH (chromium, chromium-browser, google-chrome, headless-shell): apt-get install chromium")
	return ""
}

// browser starts a headless Chromium with the flags a machine without
// network needs (without them it stalls on background fetches) and a
// fresh profile, and returns a tab's context.
func browser(t *testing.T, width, height int) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	return ctx
}

// pageLog is what a tab did: every URL it requested and every console
// error, uncaught exception or browser-log error.
type pageLog struct {
	mu       sync.Mutex
	requests []string
	errors   []string
	// allow401 is set while the test sends a wrong token on purpose: the
	// browser logs the 401 it answers as an error.
	allow401 atomic.Bool
}

func (l *pageLog) listen(t *testing.T, ctx context.Context) {
	err := chromedp.Listen(ctx, func(ev any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			l.requests = append(l.requests, ev.Request.URL)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				l.errors = append(l.errors, fmt.Sprintf("console.%s", ev.Type))
			}
		case *runtime.EventExceptionThrown:
			l.errors = append(l.errors, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError && !(l.allow401.Load() && strings.Contains(ev.Entry.Text, "401")) {
				l.errors = append(l.errors, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (l *pageLog) snapshot() (requests, errors []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.requests...), append([]string(nil), l.errors...)
}

// cacheableOrigin answers every path with a body cacheable for 5 minutes
// and counts the requests that reach it.
func cacheableOrigin(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=300")
		// The type the extension says: a mismatch is not stored (web cache
		// deception armour).
		if ct := mime.TypeByExtension(path.Ext(r.URL.Path)); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		fmt.Fprintf(w, "page %s\n", r.URL.Path)
	}))
	t.Cleanup(o.Close)
	return o, &hits
}

func edgeGet(t *testing.T, n *testNode, host, path string) (status int, cacheStatus string) {
	req, _ := http.NewRequest("GET", "http://"+n.addrs.HTTP+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Cache-Status")
}

// poll waits in the page for a JavaScript expression to be true.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v (waited for %s); the page shows:\n%s", what, err, expr, body)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// a real node (issue 21): a wrong token is refused; the right one shows a
// certificate with its days left and status, a property, purges an object
// from the form (the next request misses), shows a new event as it
// happens, renders a hostile file name as text, requests nothing outside
// the admin origin and logs no error. It writes screenshots at laptop and
// phone widths (to DASHBOARD_SCREENSHOTS when set, for the README).
func TestDashboardInBrowser(t *testing.T) {
	chromium(t)
	origin, originHits := cacheableOrigin(t)
	// The rejected file's name is markup: it must show as text.
	hostile := `x<img src=x onerror=window.pwned=1>.yaml`
	n := runTestNode(t, "cache: {memory_size: 64MiB}\n", map[string]string{
		"shop.yaml": "hostnames: [shop.example, www.shop.example]\norigins: [{url: " + origin.URL + "}]\ntls: {certificate: shop}\ncache: {enabled: true}\n",
		"blog.yaml": "hostnames: [blog.example]\norigins: [{url: " + origin.URL + "}, {url: http://127.0.0.1:1}]\n",
		"api.yaml":  "hostnames: [api.example]\norigins: [{url: " + origin.URL + "}]\ntls: {certificate: api, renew_automation: true}\n",
		hostile:     "hostnames: [\n",
	})
	tokenBytes, err := os.ReadFile(filepath.Join(n.dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	// A certificate close to its end, for the page's ordering and colours.
	adminPost(t, n, token, "/api/v1/certificates", `{"name": "legacy", "self_signed": true, "hostnames": ["legacy.example"], "valid_for": "5d"}`)
	edgeGet(t, n, "blog.example", "/")
	for _, p := range []string{"/", "/a", "/b", "/c", "/"} {
		edgeGet(t, n, "shop.example", p)
	}
	if _, cs := edgeGet(t, n, "shop.example", "/gone.css"); !strings.Contains(cs, "stored") {
		t.Fatalf("first request: Cache-Status %q, want stored", cs)
	}
	if _, cs := edgeGet(t, n, "shop.example", "/gone.css"); !strings.Contains(cs, "hit") {
		t.Fatalf("second request: Cache-Status %q, want a hit", cs)
	}

	ctx := browser(t, 1280, 900)
	pl := &pageLog{}
	pl.listen(t, ctx)
	admin := "http://" + n.addrs.Admin
	if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the login form", `document.getElementById('login').hidden === false && document.getElementById('app').hidden === true`)

	// A wrong token: refused, with a message, and nothing shown.
	pl.allow401.Store(true)
	if err := chromedp.Do(ctx, chromedp.SendKeys("#token", "not-the-token-0123456789\n")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the wrong token's message", `document.getElementById('login-error').textContent.includes('Wrong token')`)
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('app').hidden && sessionStorage.getItem('edge-admin-token') === null`)); !got {
		t.Fatal("a wrong token showed the dashboard or was kept")
	}
	pl.allow401.Store(false)

	// The right token.
	if err := chromedp.Do(ctx, chromedp.SendKeys("#token", token+"\n")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "a certificate row", `document.querySelector('#cert-rows tr.cert') !== null`)
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.getItem('edge-admin-token') !== null && localStorage.length === 0 && !location.href.includes('token')`)); !got {
		t.Error("the token is not in sessionStorage only")
	}
	// Failing first (api: ACME is off), then the soonest to expire.
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#cert-rows tr.cert')].map(r => r.querySelector('strong').textContent)`))
	if err != nil || strings.Join(rows, " ") != "api legacy shop" {
		t.Errorf("certificate rows %v (%v), want api (failed), legacy (5 days), shop", rows, err)
	}
	row := text(t, ctx, "#cert-rows tr.cert:nth-child(3)")
	if !strings.Contains(row, "shop.example") || !strings.Contains(row, "active") {
		t.Errorf("certificate row %q: want shop, active", row)
	}
	days := text(t, ctx, "#cert-rows tr.cert:nth-child(3) td:nth-child(3)")
	if want := daysLeft(t, n, token, "shop"); days != want {
		t.Errorf("days left %q, want %s", days, want)
	}
	if failed := text(t, ctx, "#cert-rows tr.cert:nth-child(1)"); !strings.Contains(failed, "failed") || !strings.Contains(failed, "ACME is off") {
		t.Errorf("failed certificate row %q: want its status and status_detail", failed)
	}
	poll(t, ctx, "a property row", `[...document.querySelectorAll('#prop-rows tr.prop')].some(r => r.textContent.includes('shop.example') && r.textContent.includes('on'))`)
	poll(t, ctx, "the hit ratio", `/\d+%/.test(document.getElementById('t-hit').textContent)`)
	poll(t, ctx, "the rejected file, as text", `document.getElementById('rejected').textContent.includes('<img src=x')`)
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelectorAll('main img, #rejected img').length === 0 && window.pwned === undefined`)); !got {
		t.Error("a file name was rendered as HTML")
	}

	// Purge from the form; the next request misses.
	before := originHits.Load()
	if err := chromedp.Do(ctx, chromedp.SendKeys("#purge-value", "http://shop.example/gone.css"), chromedp.Click("#purge-form button")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the purge's result", `document.getElementById('purge-result').textContent.startsWith('Purged 1 object')`)
	if _, cs := edgeGet(t, n, "shop.example", "/gone.css"); strings.Contains(cs, "hit") || !strings.Contains(cs, "fwd=") {
		t.Errorf("after the purge: Cache-Status %q, want a miss", cs)
	}
	if originHits.Load() != before+1 {
		t.Errorf("origin requests %d → %d: the purged object was not fetched again", before, originHits.Load())
	}

	// A new event appears without a reload: a property file added.
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('fleet').hidden`)); !got {
		t.Error("a single node shows a fleet section")
	}
	poll(t, ctx, "the events list", `document.querySelectorAll('#event-list li.event').length > 0`)
	if err := os.WriteFile(filepath.Join(n.dir, "props", "news.yaml"), []byte("hostnames: [news.example]\norigins: [{url: "+origin.URL+"}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the new event", `[...document.querySelectorAll('#event-list li.event')].some(li => li.textContent.includes('property.loaded') && li.textContent.includes('news'))`)
	poll(t, ctx, "the newest event first", `document.querySelector('#event-list li.event').textContent.includes('news')`)

	shoot(t, ctx, "dashboard.png", chromedp.FullScreenshot(100))
	// A phone: Chromium's window is at least 500 px wide, so the viewport
	// is emulated.
	phone := browser(t, 800, 900)
	phoneLog := &pageLog{}
	phoneLog.listen(t, phone)
	if err := chromedp.Do(phone, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)), chromedp.Navigate(admin+"/"), chromedp.SendKeys("#token", token+"\n")); err != nil {
		t.Fatal(err)
	}
	poll(t, phone, "a certificate row on a phone", `document.querySelector('#cert-rows tr.cert') !== null && document.querySelector('#event-list li.event') !== null`)
	if w, _ := chromedp.Run(phone, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("on a phone the page is %d px wide, wider than the screen (390)", w)
	}
	shoot(t, phone, "dashboard-phone.png", chromedp.CaptureScreenshot()) // the first screen only: kept small

	for _, l := range []*pageLog{pl, phoneLog} {
		requests, errs := l.snapshot()
		for _, r := range requests {
			u, err := url.Parse(r)
			if err != nil || u.Scheme+"://"+u.Host != admin {
				t.Errorf("the page requested %s, outside the admin origin %s", r, admin)
			}
		}
		if len(requests) < 5 {
			t.Errorf("only %d requests seen: the network log is not working", len(requests))
		}
		for _, e := range errs {
			t.Errorf("console: %s", e)
		}
	}
}

func adminPost(t *testing.T, n *testNode, token, path, body string) {
	req, _ := http.NewRequest("POST", "http://"+n.addrs.Admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}

// daysLeft is what the API says of certificate name: whole days until
// its not_after.
func daysLeft(t *testing.T, n *testNode, token, name string) string {
	req, _ := http.NewRequest("GET", "http://"+n.addrs.Admin+"/api/v1/certificates/"+name, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		NotAfter time.Time `json:"not_after"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(int(time.Until(c.NotAfter).Hours() / 24))
}

// shoot writes a PNG screenshot to the test's temp dir, and to
// DASHBOARD_SCREENSHOTS when set.
func shoot(t *testing.T, ctx context.Context, name string, how chromedp.Action[[]byte]) {
	buf, err := chromedp.Run(ctx, how)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(buf)); err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	dir := os.Getenv("DASHBOARD_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", filepath.Join(dir, name), len(buf))
}
