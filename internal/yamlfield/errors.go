package yamlfield

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is a problem in a file, located as precisely as is known.
type FieldError struct {
	File  string // path of the file, if known
	Line  int    // 1-based; 0 when unknown
	Field string // dotted path such as origins[1].url; empty for the whole file
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// FromYAMLSource is FromYAML for an error of parsing data, the file's
// bytes: a syntax error always names a line (the YAML library leaves the
// first line out of its message), and the common causes get a hint, such
// as an unquoted *.example.com in a flow list, which YAML reads as an
// alias.
func FromYAMLSource(file string, data []byte, err error) []error {
	out := FromYAML(file, err)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return out
	}
	for _, e := range out {
		fe, ok := e.(*FieldError)
		if !ok {
			continue
		}
		for _, h := range syntaxHints {
			if !strings.Contains(fe.Msg, h.msg) {
				continue
			}
			if line := firstMatch(data, h.at, fe.Line); line > 0 {
				fe.Line = line
			}
			fe.Msg += ": " + h.hint
			break
		}
		if fe.Line == 0 {
			fe.Line = 1
		}
	}
	return out
}

// syntaxHints are the common causes of YAML syntax errors: what the
// library says, the lines that cause it, and what to do.
var syntaxHints = []struct {
	msg  string
	at   *regexp.Regexp
	hint string
}{
	{"did not find expected alphabetic or numeric character", aliasStart,
		`a value that starts with * or & is read as a YAML alias or anchor: quote it, as in hostnames: ["*.example.com"]`},
	{"unknown anchor", aliasStart,
		`a value that starts with * is read as a YAML alias: quote it, as in hostnames: ["*.example.com"]`},
	{"found character that cannot start any token", regexp.MustCompile("\t|(^|[\\s\\[{,])[`@%]"),
		"indent with spaces, not tabs, and quote a value that starts with `, @ or %"},
	{"mapping values are not allowed in this context", regexp.MustCompile(`:\s.*:(\s|$)`),
		`a value that holds ": " or ends with ":" must be quoted, as in path: "a: b"`},
}

// aliasStart matches a * or & where a YAML value starts.
var aliasStart = regexp.MustCompile(`(^|[\[{,]|:\s|-\s)\s*[*&]`)

// firstMatch returns the 1-based number of the first line of data that
// re matches, preferring near (the line the library named) when it
// matches; 0 when none does.
func firstMatch(data []byte, re *regexp.Regexp, near int) int {
	lines := strings.Split(string(data), "\n")
	if near > 0 && near <= len(lines) && re.MatchString(lines[near-1]) {
		return near
	}
	for i, l := range lines {
		if re.MatchString(l) {
			return i + 1
		}
	}
	return 0
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// FromYAML turns an error of the YAML decoder into FieldErrors naming file.
// A decode error may hold several problems; each becomes one FieldError.
func FromYAML(file string, err error) []error {
	var fe *FieldError
	if errors.As(err, &fe) {
		c := *fe
		c.File = file
		return []error{&c}
	}
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]error, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		e := &FieldError{File: file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			e.Line, _ = strconv.Atoi(sm[1])
			e.Msg = sm[2]
		}
		out = append(out, e)
	}
	return out
}
