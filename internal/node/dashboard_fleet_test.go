package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/edge-cdn/edge/internal/etcdtest"
)

// TestDashboardFleetInBrowser: with the etcd store the page shows the
// fleet's nodes (here the one node), alive; with bbolt the section stays
// hidden (TestDashboardInBrowser's node).
func TestDashboardFleetInBrowser(t *testing.T) {
	chromium(t)
	etcd := etcdtest.Start(t)
	n := runTestNode(t, fmt.Sprintf("store:\n  backend: etcd\n  etcd: {endpoints: [%s], prefix: /dash/}\n", etcd.Endpoint), nil)
	tok, err := os.ReadFile(filepath.Join(n.dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t, 1024, 768)
	pl := &pageLog{}
	pl.listen(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+n.addrs.Admin+"/"), chromedp.SendKeys("#token", strings.TrimSpace(string(tok))+"\n")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the fleet's node", `!document.getElementById('fleet').hidden && [...document.querySelectorAll('#fleet-rows tr')].some(r => r.textContent.includes('test-node') && r.textContent.includes('alive'))`)
	_, errs := pl.snapshot()
	for _, e := range errs {
		t.Errorf("console: %s", e)
	}
}
