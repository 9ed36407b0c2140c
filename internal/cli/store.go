package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/node"
	"go.uber.org/zap"
)

const storeUsage = "usage: edge store migrate --to etcd|bbolt [--config FILE]\n       edge store restore BACKUP [--config FILE]"

// runStore is `edge store migrate --to etcd|bbolt`: it copies the bbolt
// file (data_dir/edge.db) into etcd (store.etcd.*) or back. The bbolt side
// must not be held by a running node. `edge store restore` puts a backup
// in place of the bbolt file (restore.go).
func runStore(ctx context.Context, _ string, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "restore" {
		return runRestore(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "migrate" {
		return usageError{storeUsage}
	}
	fs := flag.NewFlagSet("edge store migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "config file")
	to := fs.String("to", "", "etcd or bbolt")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if (*to != "etcd" && *to != "bbolt") || fs.NArg() > 0 {
		return usageError{storeUsage}
	}
	file, err := config.File(*cfgFile)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(file, stderr)
	if err != nil {
		return err
	}
	if len(cfg.Store.Etcd.Endpoints) == 0 {
		return errors.New("store.etcd.endpoints: set the etcd to migrate to or from")
	}
	prog := newProgress(stdout, "migrate", -1, false, "keys")
	n, err := node.Migrate(ctx, cfg, *to, zap.NewNop(), func(done, total int) { prog.set(int64(done), int64(total)) })
	prog.finish()
	if err != nil {
		return fmt.Errorf("migrate: %w (nothing is lost: the source is unchanged, and migrating again is safe)", err)
	}
	from := "bbolt " + filepath.Join(cfg.DataDir, "edge.db")
	dst := "etcd " + cfg.Store.Etcd.Prefix
	if *to == "bbolt" {
		from, dst = dst, from
	}
	fmt.Fprintf(stdout, "copied %d keys from %s to %s\n", n, from, dst)
	return nil
}
