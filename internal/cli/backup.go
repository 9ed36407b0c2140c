package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// cmdBackup is `edge backup`.
func cmdBackup(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	return c.run(args, 1, "FILE", func(cl *apiClient) error {
		return backupTo(ctx, cl, c.args[0], stdout)
	})
}

// backupTo saves a consistent copy of the store to file, atomically.
func backupTo(ctx context.Context, cl *apiClient, file string, stdout io.Writer) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".edge-backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	prog := newProgress(stdout, "backup", -1, true, "")
	err = cl.do(ctx, "GET", "/api/v1/backup", nil, nil, progressWriter{tmp, prog})
	prog.finish()
	if err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	st, _ := os.Stat(file)
	fmt.Fprintf(stdout, "saved %s (%d bytes)\n", file, st.Size())
	return nil
}

// progressWriter writes to w and counts what it wrote on p.
type progressWriter struct {
	w io.Writer
	p *progress
}

func (pw progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.Write(b[:n])
	return n, err
}

// SetTotal is the size the API announced (Content-Length).
func (pw progressWriter) SetTotal(n int64) { pw.p.SetTotal(n) }
