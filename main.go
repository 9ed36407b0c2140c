// Command edge is a CDN edge node: it terminates HTTP and HTTPS for many
// properties, proxies them to their origins and keeps their certificates
// valid. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
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
  validate [--config FILE]   check the config and every property file
  cert ...                   certificates of the running node (edge cert list|show|request|
                             upload|self-signed|versions|auto-renew|renew|delete)
  property list|show         properties of the running node
  events                     recent events of the running node
  backup FILE                save a consistent copy of the running node's store
  store migrate --to etcd|bbolt   copy the bbolt store into etcd, or back
  version                    print the version
  help                       print this text

The config file is --config, else $EDGE_CONFIG, else ./edge.yaml, else
/etc/edge/edge.yaml. Every key can be overridden by EDGE_<KEY>, dots as
underscores (EDGE_LISTEN_HTTP=:8080).
`

// run is the whole program, testable: it returns when the command is done
// or, for serve, when ctx is cancelled and the node has shut down.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		file, err := parseConfigFlag(cmd, rest, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, file, stderr)
	case "validate":
		file, err := parseConfigFlag(cmd, rest, stderr)
		if err != nil {
			return err
		}
		return validate(file, stdout)
	case "store":
		return runStore(ctx, rest, stdout, stderr)
	case "cert", "property", "events", "backup":
		return runCLI(ctx, cmd, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "edge", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
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
	return configFile(*file)
}
