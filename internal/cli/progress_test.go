package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/store"
	"golang.org/x/sys/unix"
)

// storeFile writes a bbolt store at path holding n certificate keys (the
// restore counts them; their values do not matter here).
func storeFile(t *testing.T, path string, n int, tag string) {
	t.Helper()
	b, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(context.Background(), func(tx store.Tx) error {
		for i := range n {
			if err := tx.Put(store.Certificates, fmt.Sprintf("%s-%05d", tag, i), bytes.Repeat([]byte("x"), 512)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// restoreDir is a config dir whose data_dir holds a store of 2 keys, and a
// backup of 300 beside it.
func restoreDir(t *testing.T) (dir, backup, target string) {
	dir = t.TempDir()
	writeFiles(t, dir, map[string]string{"edge.yaml": baseConfig})
	target = filepath.Join(dir, "data", "edge.db")
	storeFile(t, target, 2, "old")
	backup = filepath.Join(dir, "backup.db")
	storeFile(t, backup, 300, "backup")
	return dir, backup, target
}

func keys(t *testing.T, path string) int {
	n, err := checkBackup(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRestoreOffTerminalPrintsOneLine: restoring a backup with stdout not
// a terminal (a script, CI) prints exactly one final line, no bar, and
// leaves the backup's store in place with the old one kept aside.
func TestRestoreOffTerminalPrintsOneLine(t *testing.T) {
	dir, backup, target := restoreDir(t)
	var stdout, stderr bytes.Buffer
	if code := exitCode(run(context.Background(), []string{"store", "restore", backup, "--config", filepath.Join(dir, "edge.yaml")}, &stdout, &stderr), &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if strings.Count(out, "\n") != 1 || strings.Contains(out, "\r") || !strings.HasPrefix(out, "restored "+backup+" (300 certificates") {
		t.Errorf("stdout %q: want one line, restored ... (300 certificates", out)
	}
	if got := keys(t, target); got != 300 {
		t.Errorf("restored store has %d certificates, want the backup's 300", got)
	}
	if got := keys(t, target+".before-restore"); got != 2 {
		t.Errorf("kept store has %d certificates, want the old 2", got)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored store: %v, mode %v, want 0600", err, fi.Mode())
	}
}

// TestRestoreWhileNodeRunsRefused: a store held by a running node is not
// replaced under it.
func TestRestoreWhileNodeRunsRefused(t *testing.T) {
	dir, backup, target := restoreDir(t)
	held, err := store.OpenBolt(target)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var stdout, stderr bytes.Buffer
	code := exitCode(run(context.Background(), []string{"store", "restore", backup, "--config", filepath.Join(dir, "edge.yaml")}, &stdout, &stderr), &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "stop the node first") {
		t.Errorf("exit %d, stderr %q: want 1 and stop the node first", code, stderr.String())
	}
	if _, err := os.Stat(target + ".restore"); err == nil {
		t.Error("a partial copy was left behind")
	}
}

// TestRestoreNotAStoreRefused: a file that is not a store backup (a
// truncated download, the wrong file) leaves the store as it was.
func TestRestoreNotAStoreRefused(t *testing.T) {
	dir, _, target := restoreDir(t)
	bad := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(bad, bytes.Repeat([]byte("not a store "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := exitCode(run(context.Background(), []string{"store", "restore", bad, "--config", filepath.Join(dir, "edge.yaml")}, &stdout, &stderr), &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "is not a store backup") {
		t.Errorf("exit %d, stderr %q: want 1 and not a store backup", code, stderr.String())
	}
	if got := keys(t, target); got != 2 {
		t.Errorf("store has %d certificates after a refused restore, want 2", got)
	}
}

// openPTY opens a pseudo-terminal: the program writes to tty, the test
// reads what a terminal would show from pt.
func openPTY(t *testing.T) (pt, tty *os.File) {
	pt, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(pt.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		pt.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(pt.Fd()), unix.TIOCGPTN)
	if err != nil {
		pt.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		pt.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close(); pt.Close() })
	return pt, tty
}

// TestRestoreOnTerminalShowsProgress: on a terminal the restore draws a
// bar (description, percentage, bytes), clears it and prints the final
// line.
func TestRestoreOnTerminalShowsProgress(t *testing.T) {
	dir, backup, _ := restoreDir(t)
	pt, tty := openPTY(t)
	shown := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(pt) // ends when the tty side is closed (EIO)
		shown <- string(b)
	}()
	var stderr bytes.Buffer
	code := exitCode(run(context.Background(), []string{"store", "restore", backup, "--config", filepath.Join(dir, "edge.yaml")}, tty, &stderr), &stderr)
	tty.Close()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var out string
	select {
	case out = <-shown:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	for _, want := range []string{"restore", "%", "\r", "restored " + backup} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal shows %q: want %q in it", out, want)
		}
	}
}

// TestBackupProgress: `edge backup` off a terminal prints its one line;
// on a terminal it draws a bar against the size the API announced
// (Content-Length), then the same line.
func TestBackupProgress(t *testing.T) {
	n := startNode(t, "", map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: a}\n"})
	code, out := n.cli("backup", filepath.Join(t.TempDir(), "plain.db"))
	if code != 0 || strings.Count(out, "\n") != 1 || strings.Contains(out, "\r") || !strings.HasPrefix(out, "saved ") {
		t.Errorf("off a terminal: exit %d, %q; want one line, saved ...", code, out)
	}
	pt, tty := openPTY(t)
	shown := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(pt)
		shown <- string(b)
	}()
	file := filepath.Join(t.TempDir(), "tty.db")
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"backup", file, "--config", filepath.Join(n.dir, "cli.yaml")}, tty, &stderr)
	tty.Close()
	if err != nil {
		t.Fatalf("backup on a terminal: %v %s", err, stderr.String())
	}
	select {
	case out = <-shown:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	for _, want := range []string{"backup", "%", "\r", "saved " + file} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal shows %q: want %q in it", out, want)
		}
	}
}
