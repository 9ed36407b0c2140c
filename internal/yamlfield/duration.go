package yamlfield

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParseDuration parses Go duration syntax plus a leading whole number of days:
// "25d", "1d12h", "90s". Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	orig := s
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: days must be a whole number, as in 25d or 1d12h; %s", orig, durationUnits)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use numbers with units, as in 30s, 90m, 25d or 1d12h; %s", orig, durationUnits)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", orig)
	}
	return days + d, nil
}

// durationUnits names every unit ParseDuration takes: "25days" or "2w"
// should say what exists, not only that the rest did not parse.
const durationUnits = "units: ns, us, ms, s, m, h and d for days"

// Duration is a time.Duration that decodes from YAML with ParseDuration.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler. A value that does not parse
// decodes as 0: CheckKeys reports it with its field, and decoding goes on
// so that every other problem of the file is found too.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	*d = 0
	if n.Kind == yaml.ScalarNode {
		if v, err := ParseDuration(n.Value); err == nil {
			*d = Duration(v)
		}
	}
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
