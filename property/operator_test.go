package property

import (
	"strings"
	"testing"
)

// TestOriginPortOutOfRange: http://127.0.0.1:99999 and :0 were accepted by
// validate and by the node, and every request then answered 502. Parse,
// which both use, refuses a port outside 1-65535 with the field's line.
func TestOriginPortOutOfRange(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:99999", "http://127.0.0.1:0", "https://origin.example:65536/x", "http://127.0.0.1:"} {
		_, errs := Parse("p.yaml", []byte("hostnames: [shop.example]\norigins:\n  - url: \""+u+"\"\n"))
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "p.yaml:3: origins[0].url:") || !strings.Contains(errs[0].Error(), "port must be a number from 1 to 65535") {
			t.Errorf("%s: %v", u, errs)
		}
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://127.0.0.1:65535", "https://origin.example", "http://[::1]:8080"} {
		if _, errs := Parse("p.yaml", []byte("hostnames: [shop.example]\norigins: [{url: \""+u+"\"}]\n")); len(errs) > 0 {
			t.Errorf("%s: %v", u, errs)
		}
	}
}

// TestPropertySyntaxErrorNamesFileLineAndHint: a property file with an
// unquoted wildcard in a flow list is refused naming the file, the line
// and what to do.
func TestPropertySyntaxErrorNamesFileLineAndHint(t *testing.T) {
	_, errs := Parse("shop.yaml", []byte("hostnames: [*.shop.example]\norigins: [{url: http://10.0.0.5}]\n"))
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "shop.yaml:1: ") || !strings.Contains(errs[0].Error(), "quote it") {
		t.Errorf("%v", errs)
	}
}
