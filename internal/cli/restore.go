package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/store"
)

// runRestore is `edge store restore BACKUP`: it checks that BACKUP is a
// store file, then puts it in place of data_dir/edge.db (mode 0600,
// written beside it, synced, then renamed), keeping the file it replaces
// as edge.db.before-restore. The node must be stopped: its store holds the
// file, and the restore says so instead of waiting.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("edge store restore", flag.ContinueOnError)
	fl.SetOutput(stderr)
	cfgFile := fl.String("config", "", "config file")
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		if fl.NArg() == 0 {
			break
		}
		pos, args = append(pos, fl.Arg(0)), fl.Args()[1:]
	}
	if len(pos) != 1 {
		return usageError{storeUsage}
	}
	backup := pos[0]
	file, err := config.File(*cfgFile)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(file, stderr)
	if err != nil {
		return err
	}
	if cfg.Store.Backend == "etcd" {
		return errors.New("store.backend is etcd: restore the backup into a bbolt data_dir, then `edge store migrate --to etcd`")
	}
	certs, err := checkBackup(ctx, backup)
	if err != nil {
		return err
	}
	target := filepath.Join(cfg.DataDir, "edge.db")
	// Holding the current store keeps a node from starting on it while
	// it is replaced, and fails at once if one runs.
	if _, err := os.Stat(target); err == nil {
		held, err := store.OpenBolt(target)
		if err != nil {
			return fmt.Errorf("%w: stop the node first (systemctl stop edge)", err)
		}
		defer held.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	n, err := copyFile(backup, target, stdout)
	if err != nil {
		return fmt.Errorf("restore: %w (the store is unchanged)", err)
	}
	kept := ""
	if _, err := os.Stat(target); err == nil {
		if err := os.Rename(target, target+".before-restore"); err != nil {
			os.Remove(target + ".restore")
			return fmt.Errorf("restore: %w (the store is unchanged)", err)
		}
		kept = "; the store it replaced is " + target + ".before-restore"
	}
	if err := os.Rename(target+".restore", target); err != nil {
		return fmt.Errorf("restore: %w (put %s back as %s)", err, target+".before-restore", target)
	}
	fmt.Fprintf(stdout, "restored %s (%d certificates, %d bytes) to %s%s\n", backup, certs, n, target, kept)
	return nil
}

// checkBackup opens file read-only as a store and counts its certificates.
func checkBackup(ctx context.Context, file string) (int, error) {
	b, err := store.OpenBoltReadOnly(file)
	if err != nil {
		return 0, fmt.Errorf("%s is not a store backup: %w", file, err)
	}
	defer b.Close()
	n := 0
	err = b.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.Certificates, "", func(string, []byte) error { n++; return nil })
	})
	if err != nil {
		return 0, fmt.Errorf("%s is not a store backup: %w", file, err)
	}
	return n, nil
}

// copyFile copies from to to+".restore", mode 0600, synced, with its
// progress on stdout's terminal.
func copyFile(from, to string, stdout io.Writer) (int64, error) {
	src, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return 0, err
	}
	dst, err := os.OpenFile(to+".restore", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	prog := newProgress(stdout, "restore", st.Size(), true, "")
	n, err := io.Copy(progressWriter{dst, prog}, src)
	prog.finish()
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(to + ".restore")
		return 0, err
	}
	return n, nil
}
