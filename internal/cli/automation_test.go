package cli

import (
	"fmt"
	"strings"
	"testing"
)

// Issue 11 item 2: tls.renew_automation turned on for an existing property
// drives its certificate; a certificate with auto_renew acme made before
// its property waits for it instead of ordering its stand-in's names.
func TestAutomationFollowsTheProperty(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	plain := fmt.Sprintf("hostnames: [auto.example]\norigins: [{url: %s}]\ntls: {certificate: auto}\n", o.URL)
	n := startACMENode(t, acmeOpts{props: map[string]string{"auto.yaml": plain}})
	if _, c := n.api("GET", "/api/v1/certificates/auto", nil); c["auto_renew"] != "none" || c["source"] != "self_signed" {
		t.Fatalf("bootstrap without automation: %v", c)
	}

	// A self-signed certificate with auto_renew acme for names no property
	// has yet.
	code, early := n.api("POST", "/api/v1/certificates", map[string]any{"name": "early", "self_signed": true,
		"hostnames": []string{"stand-in.example"}, "auto_renew": "acme"})
	if code != 201 || early["status"] != "pending" {
		t.Fatalf("early: %d %v", code, early)
	}

	// Automation turned on for the existing property: the certificate
	// follows and the CA-issued one serves.
	writeFiles(t, n.props, map[string]string{"auto.yaml": strings.Replace(plain, "certificate: auto}", "certificate: auto, renew_automation: true}", 1)})
	c := n.waitCert("auto", "issued after renew_automation was turned on", func(c map[string]any) bool {
		return c["status"] == "active" && c["source"] == "acme"
	})
	if c["auto_renew"] != "acme" || fmt.Sprint(c["subject_names"]) != "[auto.example]" {
		t.Errorf("after automation: %v", c)
	}
	if leaf := n.waitServedChain("auto.example"); leaf.DNSNames[0] != "auto.example" {
		t.Errorf("served %v", leaf.DNSNames)
	}
	// The property drives it: turning auto_renew off is refused, saying why.
	if code, body := n.api("PATCH", "/api/v1/certificates/auto", map[string]any{"auto_renew": "none"}); code != 400 ||
		!strings.Contains(errMsg(body), "properties auto have tls.renew_automation: true") {
		t.Errorf("PATCH auto_renew none: %d %v", code, body)
	}

	// Several check intervals later "early" still has ordered nothing,
	// and says why.
	_, e := n.api("GET", "/api/v1/certificates/early", nil)
	if r := e["renewal"].(map[string]any); e["status"] != "pending" || !strings.Contains(fmt.Sprint(r["reason"]), "waiting for a property") ||
		!strings.Contains(e["status_detail"].(string), "waiting for a property") {
		t.Errorf("early before its property: %v", e)
	}
	if strings.Contains(n.log.String(), "stand-in.example") && strings.Contains(n.log.String(), `"msg":"renewing certificate","certificate":"early"`) {
		t.Errorf("an order was placed for the stand-in's names")
	}
	// Its property appears: ordered for the property's names.
	writeFiles(t, n.props, map[string]string{"early.yaml": fmt.Sprintf(
		"hostnames: [early.example]\norigins: [{url: %s}]\ntls: {certificate: early, renew_automation: true}\n", o.URL)})
	e = n.waitCert("early", "issued for its property", status("active"))
	if fmt.Sprint(e["subject_names"]) != "[early.example]" {
		t.Errorf("early issued for %v", e["subject_names"])
	}
	if strings.Contains(n.log.String(), `"names":["stand-in.example"]`) {
		t.Errorf("an order named the stand-in's names:\n%s", n.log)
	}
}
