package yamlfield

import (
	"strings"
	"testing"
)

// TestDurationErrorNamesUnits: "renew_before: 25days" said `invalid
// duration "ays"`, quoting a fragment and not what exists. The error quotes
// the whole value and lists every unit.
func TestDurationErrorNamesUnits(t *testing.T) {
	for _, in := range []string{"25days", "2w", "1day", "3x", "d5"} {
		_, err := ParseDuration(in)
		if err == nil {
			t.Fatalf("%q parsed", in)
		}
		msg := err.Error()
		if !strings.Contains(msg, `"`+in+`"`) || !strings.Contains(msg, "units: ns, us, ms, s, m, h and d for days") {
			t.Errorf("%q: %s; want the value quoted whole and the units listed", in, msg)
		}
	}
}
