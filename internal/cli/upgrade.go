package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/edge-cdn/edge/internal/node"
)

// runUpgrade is `edge upgrade`: SIGUSR2 to the node whose PID file is in
// the config's data_dir, then wait until a new process has written it
// (upgraded) or the old one writes it again (the new binary failed; the
// old one keeps serving and logs why).
func runUpgrade(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	file, err := parseConfigFlag(name, args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(file, stderr)
	if err != nil {
		return err
	}
	pidFile := node.PIDFile(cfg)
	before, err := os.Stat(pidFile)
	if err != nil {
		return fmt.Errorf("no running node found: %w", err)
	}
	old, err := node.ReadPIDFile(pidFile)
	if err != nil {
		return err
	}
	if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
		return fmt.Errorf("signalling the node (pid %d from %s): %w", old, pidFile, err)
	}
	fmt.Fprintf(stdout, "upgrading the node (pid %d)...\n", old)
	limit := cfg.Limits.UpgradeTimeout.Std() + 20*time.Second
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		now, err := os.Stat(pidFile)
		if err != nil || os.SameFile(before, now) {
			continue
		}
		pid, err := node.ReadPIDFile(pidFile)
		if err != nil {
			continue
		}
		if pid == old {
			return errors.New("the new binary failed; the node keeps serving with the old one (pid " + fmt.Sprint(old) + "): its log says why")
		}
		fmt.Fprintf(stdout, "upgraded: pid %d serves; pid %d finishes its requests and exits\n", pid, old)
		return nil
	}
	return fmt.Errorf("no answer within %v: see the node's log", limit)
}
