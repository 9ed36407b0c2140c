// Package cli is the edge command line: a table of commands, each a
// function of its own. serve and validate read the config and run the node
// (internal/node); the others talk to a running node's admin API.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/edge-cdn/edge/internal/config"
)

// version is the binary's version, given by Main; tests see "dev".
var version = "dev"

// ownProcess is set by Main: `edge serve` is the process's only node, so
// it may take part in binary upgrades (node.Handover, one per process).
// Tests that run several nodes in one process leave it unset: they call
// run, never Main (which sets it for the whole test binary).
var ownProcess bool

// Main runs the command in args and returns the process's exit status:
// 0 success, 1 a problem the user must fix (printed), 2 wrong usage.
func Main(ctx context.Context, v string, args []string, stdout, stderr io.Writer) int {
	version = v
	ownProcess = true
	return exitCode(run(ctx, args, stdout, stderr), stderr)
}

// usageError is wrong usage: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// reportedError is a failure already printed to the user: exit status 1.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "edge:", ue.msg)
		fmt.Fprintln(stderr, "run 'edge help' for usage")
		return 2
	}
	var re reportedError
	if !errors.As(err, &re) {
		fmt.Fprintln(stderr, "edge:", err)
	}
	return 1
}

const usage = `usage: edge <command> [flags]

commands:
  serve    [--config FILE]   run the node in the foreground
  upgrade  [--config FILE]   hand the running node's sockets to the binary now at its path
                             (SIGUSR2) and wait until the new process serves
  validate [--config FILE]   check the config and every property file
  cert ...                   certificates of the running node (edge cert list|show|versions|
                             request|upload|self-signed|rotate|rollback|auto-renew|renew|delete)
  property list|show         properties of the running node
  events                     recent events of the running node
  backup FILE                save a consistent copy of the running node's store
  cache purge|stats          purge the running node's (and fleet's) cache; its figures
  store migrate --to etcd|bbolt   copy the bbolt store into etcd, or back
  store restore BACKUP       put a backup in place of the stopped node's store
  version                    print the version
  help                       print this text

The config file is --config, else $EDGE_CONFIG, else ./edge.yaml, else
/etc/edge/edge.yaml. Every key can be overridden by EDGE_<KEY>, dots as
underscores (EDGE_LISTEN_HTTP=:8080). Commands other than serve find the
node's admin API at listen.admin of that same config, with the same EDGE_
overrides: a node started with EDGE_LISTEN_ADMIN=127.0.0.1:9901 is reached
by giving the command the same variable. Each command's flags: edge cert
(or property, cache) with no subcommand.
`

// topCommand runs one top-level command with the arguments after its name.
type topCommand func(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error

// topCommands is the command table; cert, property, events and backup
// dispatch again through apiCommands.
var topCommands = map[string]topCommand{
	"serve":     runServe,
	"upgrade":   runUpgrade,
	"validate":  runValidate,
	"store":     runStore,
	"cert":      runAPI,
	"property":  runAPI,
	"events":    runAPI,
	"backup":    runAPI,
	"cache":     runAPI,
	"version":   runVersion,
	"--version": runVersion,
	"help":      runHelp,
	"-h":        runHelp,
	"--help":    runHelp,
}

// run is the whole program, testable: it returns when the command is done
// or, for serve, when ctx is cancelled and the node has shut down.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, ok := topCommands[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	return cmd(ctx, args[0], args[1:], stdout, stderr)
}

func runVersion(_ context.Context, _ string, _ []string, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "edge", version)
	return nil
}

func runHelp(_ context.Context, _ string, _ []string, stdout, _ io.Writer) error {
	fmt.Fprint(stdout, usage)
	return nil
}

func parseConfigFlag(cmd string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("edge "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return "", usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return "", usageError{fmt.Sprintf("edge %s takes no arguments, got %q", cmd, fs.Args())}
	}
	return config.File(*file)
}

// loadConfig loads file, printing every problem to w.
func loadConfig(file string, w io.Writer) (*config.Config, error) {
	cfg, errs := config.Load(file)
	if len(errs) > 0 {
		printProblems(w, errs)
		return nil, reportedError{fmt.Errorf("config %s has %d problems", file, len(errs))}
	}
	return cfg, nil
}

func printProblems(w io.Writer, errs []error) {
	for _, e := range errs {
		fmt.Fprintln(w, e)
	}
	fmt.Fprintf(w, "%d problem(s)\n", len(errs))
}
