package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/edge-cdn/edge/internal/config"
)

const cliUsage = `usage:
  edge cert list [--status S] [--auto-renew acme|none] [--type server|ca] [--json]
  edge cert show ID|NAME [--json]
  edge cert versions ID|NAME [--json]
  edge cert request --name N --common-name H [--alt H ...] [--json]
  edge cert upload --name N --cert FILE [--key FILE] [--type server|ca] [--auto-renew acme|none] [--json]
  edge cert self-signed --name N [--host H ...] [--valid-for DURATION] [--auto-renew acme|none] [--json]
  edge cert rotate ID|NAME --cert FILE [--key FILE] [--json]
  edge cert rollback ID|NAME --version N [--json]
  edge cert auto-renew ID|NAME acme|none
  edge cert renew ID|NAME
  edge cert delete ID|NAME
  edge property list [--json]
  edge property show NAME [--json]
  edge events [--since TIME|SEQ] [--json]
  edge backup FILE
  edge cache purge [--property P] [--url U ...] [--prefix P ...] [--tag T ...] [--all] [--soft] [--json]
  edge cache stats [--json]
Every command takes --config FILE and talks to the running node's admin API.
`

// strList is a repeatable string flag.
type strList []string

func (s *strList) String() string     { return strings.Join(*s, ",") }
func (s *strList) Set(v string) error { *s = append(*s, v); return nil }

// cliCmd holds one CLI invocation's flags and output.
type cliCmd struct {
	fs     *flag.FlagSet
	config *string
	json   *bool
	args   []string
	stdout io.Writer
	stderr io.Writer
}

func newCLICmd(name string, stderr, stdout io.Writer) *cliCmd {
	fs := flag.NewFlagSet("edge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cliUsage) }
	return &cliCmd{fs: fs, config: fs.String("config", "", "config file"), json: fs.Bool("json", false, "print JSON"), stdout: stdout, stderr: stderr}
}

// parse parses flags anywhere among the arguments and checks the number of
// positional ones.
func (c *cliCmd) parse(args []string, positional int, names string) error {
	for {
		if err := c.fs.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		c.args = append(c.args, rest[0])
		args = rest[1:]
	}
	if len(c.args) != positional {
		return usageError{fmt.Sprintf("%s takes %s", c.fs.Name(), names)}
	}
	return nil
}

func (c *cliCmd) client() (*apiClient, error) {
	file, err := config.File(*c.config)
	if err != nil {
		return nil, err
	}
	cfg, errs := config.Load(file)
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %v", file, errs[0])
	}
	return newAPIClient(cfg)
}

// print writes v as indented JSON with --json, else calls table.
func (c *cliCmd) print(v any, table func(w *tabwriter.Writer)) error {
	if *c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// apiCommand runs one command that talks to the admin API; it declares its
// flags on c and parses args with c.run.
type apiCommand func(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error

// apiCommands is the table of the commands that talk to a running node.
var apiCommands = map[string]apiCommand{
	"cache purge":      cmdCachePurge,
	"cache stats":      cmdCacheStats,
	"cert list":        cmdCertList,
	"cert show":        cmdCertShow,
	"cert versions":    cmdCertVersions,
	"cert request":     cmdCertRequest,
	"cert upload":      cmdCertUpload,
	"cert self-signed": cmdCertSelfSigned,
	"cert rotate":      cmdCertRotate,
	"cert rollback":    cmdCertRollback,
	"cert auto-renew":  cmdCertAutoRenew,
	"cert renew":       cmdCertRenew,
	"cert delete":      cmdCertDelete,
	"property list":    cmdPropertyList,
	"property show":    cmdPropertyShow,
	"events":           cmdEvents,
	"backup":           cmdBackup,
}

func runAPI(ctx context.Context, group string, args []string, stdout, stderr io.Writer) error {
	if group == "backup" || group == "events" {
		return runAPICommand(ctx, group, args, stdout, stderr)
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, cliUsage)
		return usageError{fmt.Sprintf("edge %s needs a subcommand", group)}
	}
	return runAPICommand(ctx, group+" "+args[0], args[1:], stdout, stderr)
}

func runAPICommand(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	cmd, ok := apiCommands[name]
	if !ok {
		fmt.Fprint(stderr, cliUsage)
		return usageError{fmt.Sprintf("unknown command %q", "edge "+name)}
	}
	return cmd(ctx, newCLICmd(name, stderr, stdout), args, stdout)
}

func (c *cliCmd) run(args []string, positional int, names string, fn func(*apiClient) error) error {
	if err := c.parse(args, positional, names); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	return fn(cl)
}
