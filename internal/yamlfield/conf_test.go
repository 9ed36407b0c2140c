package yamlfield

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"25d", 25 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"90s", 90 * time.Second, false},
		{" 10m ", 10 * time.Minute, false},
		{"0s", 0, false},
		{"", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"-1s", 0, true},
		{"soon", 0, true},
		{"5", 0, true},
	} {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestCheckKeys(t *testing.T) {
	type inner struct {
		D Duration `yaml:"d"`
		N int      `yaml:"n"`
	}
	type doc struct {
		In   inner             `yaml:"in"`
		List []inner           `yaml:"list"`
		M    map[string]string `yaml:"m"`
		B    bool              `yaml:"b"`
	}
	var n yaml.Node
	src := "in: {d: 3x, n: many}\nlist:\n  - {d: 1s, zz: 1}\nm: [a]\nb: yes please\nextra: 1\n"
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range CheckKeys("f.yaml", &n, reflect.TypeOf(doc{}), "yaml") {
		got = append(got, e.Error())
	}
	want := []string{
		`f.yaml:1: in.d: invalid duration "3x"`,
		`f.yaml:1: in.n: must be a whole number, not "many"`,
		`f.yaml:3: list[0].zz: unknown key`,
		`f.yaml:4: m: must be a mapping of keys to values, not a list`,
		`f.yaml:5: b: must be true or false, not "yes please"`,
		`f.yaml:6: extra: unknown key`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d: got %q, want prefix %q", i, got[i], want[i])
		}
	}
	if l := Line(&n, "list", 0, "d"); l != 3 {
		t.Errorf("Line(list[0].d) = %d, want 3", l)
	}
}
