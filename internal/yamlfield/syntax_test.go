package yamlfield

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestYAMLSyntaxErrorNamesLineAndHint: an unquoted *.example.com in a flow
// list said only "did not find expected alphabetic or numeric character",
// with no line when it was the first one. Every syntax error names its
// line, and the common causes say what to do.
func TestYAMLSyntaxErrorNamesLineAndHint(t *testing.T) {
	for _, tc := range []struct {
		src, want string
	}{
		{"hostnames: [*.example.com]\norigins: [{url: http://10.0.0.5}]\n", `f.yaml:1: did not find expected alphabetic or numeric character: a value that starts with * or & is read as a YAML alias or anchor: quote it`},
		{"origins: [{url: http://10.0.0.5}]\n\nhostnames: [shop.example, *.example.com]\n", `f.yaml:3: did not find expected alphabetic or numeric character: a value that starts with * or & is read as a YAML alias or anchor: quote it`},
		{"origins: [{url: http://10.0.0.5}]\nhostnames:\n  - *.example.com\n", `f.yaml:3: `},
		{"a: b: c\n", `f.yaml:1: mapping values are not allowed in this context: a value that holds ": " or ends with ":" must be quoted`},
		{"a: 1\nb:\n\t- x\n", `f.yaml:3: found character that cannot start any token: indent with spaces, not tabs`},
	} {
		var doc yaml.Node
		err := yaml.Unmarshal([]byte(tc.src), &doc)
		if err == nil {
			t.Fatalf("%q parsed", tc.src)
		}
		errs := FromYAMLSource("f.yaml", []byte(tc.src), err)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tc.want) {
			t.Errorf("%q: %v\nwant prefix %s", tc.src, errs, tc.want)
		}
		if tc.want == "f.yaml:3: " && !strings.Contains(errs[0].Error(), "quote it") {
			t.Errorf("%q: %v: no hint", tc.src, errs)
		}
	}
	// A type error keeps what FromYAML says.
	var v struct{ A int }
	err := yaml.Unmarshal([]byte("a: [1]\n"), &v)
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		t.Fatalf("want a type error, got %v", err)
	}
	if got := FromYAMLSource("f.yaml", []byte("a: [1]\n"), err); len(got) != 1 || strings.Contains(got[0].Error(), "quote") {
		t.Errorf("type error: %v", got)
	}
}
