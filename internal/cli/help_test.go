package cli

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestHelpListsEveryCommand: edge help left out cert rotate and cert
// rollback. Every command of the tables is named in edge help, and every
// node command in the detailed usage.
func TestHelpListsEveryCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for name := range topCommands {
		if strings.HasPrefix(name, "-") {
			continue
		}
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + `\b`).MatchString(help) {
			t.Errorf("edge help does not list %q", name)
		}
	}
	for name := range apiCommands {
		group, sub, ok := strings.Cut(name, " ")
		if ok && !regexp.MustCompile(`[\s|(]`+regexp.QuoteMeta(sub)+`[\s|)]`).MatchString(helpSection(help, group)) {
			t.Errorf("edge help does not list %q", "edge "+name)
		}
		if !strings.Contains(cliUsage, "  edge "+name+" ") && !strings.Contains(cliUsage, "  edge "+name+"\n") {
			t.Errorf("the command usage does not list %q", "edge "+name)
		}
	}
}

// helpSection returns the lines of help from the one that starts with the
// command group up to the next command.
func helpSection(help, group string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(help, "\n") {
		switch {
		case strings.HasPrefix(l, "  "+group+" "):
			in = true
		case in && !strings.HasPrefix(l, "    "):
			return b.String()
		}
		if in {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
