package property

import (
	"strings"
	"testing"
)

// TestDeceptionArmorKey: cache.deception_armor is on unless set to false,
// and only a boolean is taken.
func TestDeceptionArmorKey(t *testing.T) {
	for _, tc := range []struct {
		line string
		off  bool
		bad  bool
	}{
		{"cache: {enabled: true}", false, false},
		{"cache: {enabled: true, deception_armor: true}", false, false},
		{"cache: {enabled: true, deception_armor: false}", true, false},
		{"cache: {enabled: true, deception_armor: sometimes}", false, true},
	} {
		p, errs := Parse("p.yaml", []byte("hostnames: [a.example]\norigins: [{url: 'http://127.0.0.1:1'}]\n"+tc.line+"\n"))
		if tc.bad {
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), "deception_armor") {
				t.Errorf("%s: errors %v, want one naming deception_armor", tc.line, errs)
			}
			continue
		}
		if len(errs) > 0 {
			t.Fatalf("%s: %v", tc.line, errs)
		}
		if p.Cache.NoDeceptionArmor != tc.off {
			t.Errorf("%s: NoDeceptionArmor = %v, want %v", tc.line, p.Cache.NoDeceptionArmor, tc.off)
		}
	}
}
