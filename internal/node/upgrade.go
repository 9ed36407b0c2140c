package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/edge-cdn/edge/internal/config"
	"go.uber.org/zap"
)

// Handover is this process's side of a binary upgrade (SIGUSR2), nginx's
// scheme in the form of github.com/cloudflare/tableflip: the listening
// sockets are kept in a registry named by network and address; on SIGUSR2
// the binary now at the path this process was started from (not a copy of
// the running one) is started with those sockets, loads, says ready, and
// only then does this process stop accepting, finish its requests in
// flight and exit. A new process that fails (bad config, crash, not ready
// within limits.upgrade_timeout) is killed, and this one keeps serving.
//
// There is one Handover per process (tableflip allows one): only `edge
// serve` run as its own process makes one. A node without it (tests that
// run several nodes in one process) listens as before and refuses SIGUSR2.
type Handover struct {
	upg     *tableflip.Upgrader
	pidFile string
}

// NewHandover takes the sockets a parent process handed over, if any.
// Call it once per process, before Run.
func NewHandover(cfg *config.Config) (*Handover, error) {
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: cfg.Limits.UpgradeTimeout.Std(), ListenConfig: listenConfig()})
	if err != nil {
		return nil, fmt.Errorf("binary upgrades: %w", err)
	}
	return &Handover{upg: upg, pidFile: PIDFile(cfg)}, nil
}

// PIDFile is where a ready node writes its process ID (`edge upgrade` reads
// it): <data_dir>/edge.pid.
func PIDFile(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "edge.pid") }

// Listen returns the TCP listener for addr: the one the parent process
// handed over when there is one, else a new one. A nil Handover listens
// plainly. The registry keeps a duplicate of the socket (taken without
// os.File.Fd, so the listener stays non-blocking) for the next upgrade.
func (h *Handover) Listen(addr string) (net.Listener, error) {
	if h == nil {
		return listenConfig().Listen(context.Background(), "tcp", addr)
	}
	return h.upg.Listen("tcp", addr)
}

// ListenPacket is Listen for a UDP socket: the HTTP/3 listener binds with
// n.handover.ListenPacket(addr) (nil-safe), and the new process of an
// upgrade gets the same socket. The old one must stop reading it once the
// new one is ready (it sends GOAWAY on its QUIC connections): never two
// readers on one UDP socket for longer than the hand-over.
func (h *Handover) ListenPacket(addr string) (net.PacketConn, error) {
	if h == nil {
		return net.ListenPacket("udp", addr)
	}
	return h.upg.ListenPacket("udp", addr)
}

// inherited reports whether this process was started by an upgrade.
func (h *Handover) inherited() bool { return h != nil && h.upg.HasParent() }

// ready tells systemd (MAINPID is this process when it replaces another;
// the unit needs NotifyAccess=all), writes the PID file, and tells the
// parent process, which then stops accepting and exits.
func (h *Handover) ready(log *zap.Logger) {
	state := daemon.SdNotifyReady
	if h.inherited() {
		state = fmt.Sprintf("MAINPID=%d\n%s", os.Getpid(), daemon.SdNotifyReady)
	}
	_, _ = daemon.SdNotify(false, state)
	if h == nil {
		return
	}
	if err := writePIDFile(h.pidFile); err != nil {
		log.Warn("writing the PID file (edge upgrade reads it)", zap.String("file", h.pidFile), zap.Error(err))
	}
	if err := h.upg.Ready(); err != nil {
		log.Error("telling the old process of the upgrade that this one is ready", zap.Error(err))
	}
}

// parentRunning reports whether the process this one replaced has not
// exited yet: tableflip refuses a new upgrade until it has, and this
// process must not let go of its store for nothing.
func (h *Handover) parentRunning() bool {
	if !h.upg.HasParent() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	return errors.Is(h.upg.WaitForParent(ctx), context.DeadlineExceeded)
}

// announceSuccessor tells systemd, from the main process, the PID of the
// ready process that replaces it (which said so itself; this also works
// where the unit still has NotifyAccess=main).
func (h *Handover) announceSuccessor(log *zap.Logger) {
	pid, err := ReadPIDFile(h.pidFile)
	if err != nil || pid == os.Getpid() {
		log.Warn("the new process's PID is not in the PID file", zap.Error(err))
		return
	}
	_, _ = daemon.SdNotify(false, fmt.Sprintf("MAINPID=%d", pid))
	log.Info("upgrade: the new process is ready; this one stops accepting, finishes its requests and exits", zap.Int("new_pid", pid))
}

// removePIDFile removes the PID file if it still names this process (after
// an upgrade it names the new one).
func (h *Handover) removePIDFile() {
	if h == nil {
		return
	}
	if pid, err := ReadPIDFile(h.pidFile); err == nil && pid == os.Getpid() {
		_ = os.Remove(h.pidFile)
	}
}

func writePIDFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadPIDFile reads a process ID written by a ready node.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a process ID", path)
	}
	return pid, nil
}

// executable is the path the new process of an upgrade is started from:
// the one this process was started as, looked up again now.
func executable() (string, error) {
	return exec.LookPath(os.Args[0])
}

// errUpgraded ends the loop of an old process whose successor is ready.
var errUpgraded = errors.New("upgraded")

// diskHandover is what the cache offers to hand its disk tier to the new
// process of an upgrade: the tier has one owner (opening it cleans its
// temporary files and duplicates), so the old process stops reading and
// writing it (memory keeps serving) before the new one opens it, and
// takes it back if the new one fails.
type diskHandover interface {
	SuspendDisk() error
	ResumeDisk() error
}

// startUpgrade lets go of what one process may hold at a time and starts
// the binary at the path; the channel gets the outcome (nil: the new
// process is ready). It returns nil when the upgrade cannot start, having
// said why.
func (n *node) startUpgrade(ctx context.Context) <-chan error {
	log := n.log.Named("upgrade")
	if n.handover == nil {
		log.Warn("SIGUSR2 ignored: binary upgrades need `edge serve` as a process of its own")
		return nil
	}
	if os.Getpid() == 1 {
		log.Warn("SIGUSR2 ignored: this is PID 1 (a container), whose exit would end the container and the new process with it; upgrade by replacing the container (see the README's Deployment section)")
		return nil
	}
	if n.handover.parentRunning() {
		log.Warn("SIGUSR2 ignored: the process this one replaced is still finishing its requests (up to limits.shutdown_timeout); upgrade again once it has exited")
		return nil
	}
	exe, err := executable()
	if err != nil {
		log.Error("SIGUSR2: cannot upgrade; this process keeps serving", zap.Error(err))
		return nil
	}
	log.Info("SIGUSR2: upgrading: starting the binary at the path with this process's sockets",
		zap.String("binary", exe), zap.Duration("timeout", n.cfg.Limits.UpgradeTimeout.Std()))
	_, _ = daemon.SdNotify(false, "STATUS=upgrading: starting "+exe)
	at := time.Now()
	n.upgrading.Store(true)
	n.pauseRenewals()
	n.holdCertificates(ctx)
	fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if err := n.events.Flush(fctx); err != nil {
		log.Warn("events not stored before the hand-over stay in this process's log", zap.Error(err))
	}
	cancel()
	if d, ok := any(n.cache).(diskHandover); ok {
		if err := d.SuspendDisk(); err != nil {
			log.Warn("suspending the cache's disk tier", zap.Error(err))
		}
	} else if n.cfg.Cache.DiskBytes > 0 {
		log.Warn("this build cannot suspend the cache's disk tier: the new process opens it while this one may still write it")
	}
	if n.slot != nil {
		if err := n.slot.release(); err != nil {
			log.Warn("closing the store for the new process", zap.Error(err))
		}
	}
	log.Info("store and disk tier let go; serving from memory until the new process is ready", zap.Duration("took", time.Since(at)))
	done := make(chan error, 1)
	go func() {
		if err := n.handover.upg.Upgrade(); err != nil {
			done <- fmt.Errorf("the new process of %s (limits.upgrade_timeout %v): %w", exe, n.cfg.Limits.UpgradeTimeout.Std(), err)
			return
		}
		done <- nil
	}()
	return done
}

// abandonUpgrade stops the upgrade under way, if any (the new process is
// killed), and waits for it: this process is stopping.
func (n *node) abandonUpgrade(upgrade <-chan error) {
	if upgrade == nil {
		return
	}
	n.handover.upg.Stop()
	<-upgrade
}

// upgradeFailed takes back the store, the disk tier and the renewals after
// a new process failed, and says why; this process keeps serving.
func (n *node) upgradeFailed(ctx context.Context, cause error) {
	log := n.log.Named("upgrade")
	log.Error("the new process failed; this process keeps serving", zap.Error(cause))
	// `edge upgrade` waits for the PID file: rewritten once this process
	// has taken everything back (its store, admin writes), so that what
	// the command reports is already true.
	defer func() {
		if err := writePIDFile(n.handover.pidFile); err != nil {
			log.Warn("rewriting the PID file", zap.Error(err))
		}
	}()
	if n.slot != nil {
		if err := n.slot.reopen(ctx, 15*time.Second); err != nil {
			log.Error("the store stays closed: admin writes answer 503 and renewals wait", zap.Error(err))
			_, _ = daemon.SdNotify(false, "READY=1\nSTATUS=upgrade failed and the store could not be reopened: "+err.Error())
			return
		}
	}
	if d, ok := any(n.cache).(diskHandover); ok {
		if err := d.ResumeDisk(); err != nil {
			log.Warn("resuming the cache's disk tier", zap.Error(err))
		}
	}
	// The new process may have stored certificates before it failed.
	if err := n.tls.Load(ctx); err != nil {
		log.Warn("reloading certificates", zap.Error(err))
	}
	n.upgrading.Store(false)
	n.resumeRenewals(ctx)
	// In a fleet, the purge watch was paused with the renewals: apply what
	// the fleet purged meanwhile (replaying older purges spares what was
	// fetched after them).
	n.replayPurges(ctx)
	_, _ = daemon.SdNotify(false, "READY=1\nSTATUS=upgrade failed: "+cause.Error())
}

// holdCertificates loads every certificate the node serves into memory
// before the bbolt file is let go: the warm-up may not have reached them
// all, and a handshake that needs the store while it is handed over would
// fail. (On etcd the store stays open: nothing to do.) A certificate is a
// local read and a parse; the whole is bounded all the same.
func (n *node) holdCertificates(ctx context.Context) {
	if n.slot == nil {
		return
	}
	var names []string
	n.tls.Each(func(name string, _ time.Time) { names = append(names, name) })
	deadline := time.Now().Add(30 * time.Second)
	for i, name := range names {
		if ctx.Err() != nil {
			return
		}
		if time.Now().After(deadline) {
			n.log.Warn("upgrade: not every certificate is in memory; a handshake for one that is not fails until the new process serves",
				zap.Int("loaded", i), zap.Int("certificates", len(names)))
			return
		}
		n.tls.Certificate(name)
	}
}

// upgradeGate answers the admin requests that need the store with 503
// while it is handed over; probes, metrics and what is in memory answer.
func (n *node) upgradeGate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.upgrading.Load() && needsStore(r) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"upgrading","message":"a binary upgrade is handing this node over to a new process: nothing was changed; retry in a few seconds"}}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// needsStore reports whether an admin request reads or writes the store
// (every write, and the reads of certificates, events and backups).
func needsStore(r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return true
	}
	return !strings.HasPrefix(r.URL.Path, "/api/v1/properties") && r.URL.Path != "/api/v1/cache"
}

// pauseRenewals stops the renewal loop and the store watches and waits
// for them; resumeRenewals starts them again.
func (n *node) pauseRenewals() {
	if n.stopRenewals != nil {
		n.stopRenewals()
		n.stopRenewals = nil
	}
}

func (n *node) resumeRenewals(ctx context.Context) {
	if n.stopRenewals != nil {
		return
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wait := n.startRenewals(rctx)
	n.stopRenewals = func() { cancel(); wait() }
}
