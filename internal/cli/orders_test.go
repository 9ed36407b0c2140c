package cli

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/edge-cdn/edge/internal/pebbletest"
	"github.com/edge-cdn/edge/internal/testutil"
)

// TestBadNoncesAndFailingValidations: Pebble refuses 30% of good nonces,
// and two names cannot be validated (one resolves to a host where nothing
// listens, one does not resolve). Every certificate ends active or failed
// with a detail that says what to fix; no certificate has two attempts
// at once, and the CA saw one order per attempt.
func TestBadNoncesAndFailingValidations(t *testing.T) {
	t.Parallel()
	pebbleLog := &testutil.SyncBuffer{}
	n := startACMENode(t, acmeOpts{pebble: pebbletest.Options{NonceRejectPercent: 30, Log: pebbleLog}})
	n.pebble.SetHost("refused.orders.example", "127.0.0.8") // nothing listens there
	n.pebble.SetHost("nxdomain.orders.example", "")
	good := []string{"g1", "g2", "g3"}
	bad := map[string]string{"refused": "refused.orders.example", "nxdomain": "nxdomain.orders.example"}
	for _, name := range good {
		n.api("POST", "/api/v1/certificates/request", map[string]any{"name": name, "challenge": "http",
			"authority": "lets_encrypt", "common_name": name + ".orders.example", "alternative_names": []string{"www." + name + ".orders.example"}})
	}
	for name, host := range bad {
		n.api("POST", "/api/v1/certificates/request", map[string]any{"name": name, "challenge": "http",
			"authority": "lets_encrypt", "common_name": host})
	}
	for _, name := range good {
		n.waitCert(name, "active despite bad nonces", status("active"))
	}
	for name, host := range bad {
		c := n.waitCert(name, "failed", status("failed"))
		detail, _ := c["status_detail"].(string)
		if !strings.Contains(detail, host) || len(detail) < 40 {
			t.Errorf("%s: status_detail %q does not say what failed for %s", name, detail, host)
		}
		t.Logf("%s: %s", name, detail)
	}
	// Attempts per certificate, from the node's log in order: each ends
	// (issued or failed) before the next begins. Every certificate has
	// reached its state, so every attempt ends: waited for, not slept on.
	var attempts int
	var open map[string]bool
	testutil.WaitFor(t, "every attempt ending", func() bool {
		attempts, open = 0, map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(n.log.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l struct{ Msg, Certificate string }
			if json.Unmarshal(sc.Bytes(), &l) != nil || l.Certificate == "" {
				continue
			}
			switch l.Msg {
			case "renewing certificate":
				if open[l.Certificate] {
					t.Fatalf("%s: a second attempt began while one was in flight", l.Certificate)
				}
				open[l.Certificate] = true
				attempts++
			case "certificate issued", "certificate renewed", "certificate renewal failed":
				open[l.Certificate] = false
			}
		}
		for _, o := range open {
			if o {
				return false
			}
		}
		return true
	}, n.log.String)
	orders := strings.Count(pebbleLog.String(), "Added order")
	t.Logf("%d attempts, %d orders at the CA, %d nonces refused", attempts, orders, n.pebble.BadNonces())
	if n.pebble.BadNonces() == 0 {
		t.Error("Pebble refused no nonce: the fault was not injected")
	}
	if orders != attempts || attempts < len(good)+len(bad) {
		t.Errorf("%d orders at the CA for %d attempts: an order was repeated within an attempt", orders, attempts)
	}
}
