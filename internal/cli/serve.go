package cli

import (
	"context"
	"io"

	"github.com/edge-cdn/edge/internal/node"
)

// runServe is `edge serve`: the node in the foreground until ctx ends.
func runServe(ctx context.Context, name string, args []string, _, stderr io.Writer) error {
	file, err := parseConfigFlag(name, args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(file, stderr)
	if err != nil {
		return err
	}
	opts := node.Options{Stderr: stderr, Version: version}
	if ownProcess {
		if opts.Handover, err = node.NewHandover(cfg); err != nil {
			return err
		}
	}
	return node.Run(ctx, cfg, opts)
}
