// Package etcdtest runs a real single-member etcd server inside a test
// process (go.etcd.io/etcd/server/v3/embed) on loopback ports the OS
// picks, so tests need no etcd installed. It can be stopped and started
// again on the same data and ports, to test a fleet riding out an outage.
package etcdtest

import (
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Etcd is a running embedded etcd.
type Etcd struct {
	t        testing.TB
	cfg      *embed.Config
	e        *embed.Etcd
	Endpoint string // http://127.0.0.1:port
}

// Start runs etcd until the test ends.
func Start(t testing.TB) *Etcd {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	cfg.LogLevel = "error"
	// The server's log goes to a buffer, shown only when the test fails:
	// its error lines (a peer gone, a stopped server's last words) are
	// expected in tests that stop it, and clutter every other output.
	logs := &testutil.SyncBuffer{}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(zapcore.NewCore(
		zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zap.WarnLevel)))
	t.Cleanup(func() { // runs after Stop (cleanups run last-registered first)
		if t.Failed() && logs.String() != "" {
			t.Logf("embedded etcd's log:\n%s", logs)
		}
	})
	client, peer := freeURL(t), freeURL(t)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, peer.String())
	cfg.MaxTxnOps = 256
	e := &Etcd{t: t, cfg: cfg, Endpoint: client.String()}
	e.start()
	t.Cleanup(e.Stop)
	return e
}

// freeURL is a loopback URL on a port below the ephemeral range (see
// testutil.FreePort): a ":0" port, once closed, could go to another test
// binary's listener or outgoing connection before etcd binds it.
func freeURL(t testing.TB) url.URL {
	return url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))}
}

func (e *Etcd) start() {
	e.t.Helper()
	var err error
	for try := 0; try < 50; try++ { // the ports of a stopped server free up shortly
		if e.e, err = embed.StartEtcd(e.cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("embedded etcd: %v", err)
	}
	select {
	case <-e.e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.e.Close()
		e.t.Fatal("embedded etcd not ready in 30s")
	}
}

// Stop stops the server; its data stays for Restart.
func (e *Etcd) Stop() {
	if e.e != nil {
		e.e.Close()
		e.e = nil
	}
}

// Restart starts a stopped server again on the same data and ports.
func (e *Etcd) Restart() { e.start() }
