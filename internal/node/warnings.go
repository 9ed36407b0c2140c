package node

import (
	"net"
	"os"
	"strings"

	"github.com/edge-cdn/edge/internal/config"
	"go.uber.org/zap"
)

// warnExposures logs, at warn level and at every start, the settings that
// let secrets cross the network in clear or be read by other local users:
// etcd endpoints over plain HTTP (certificates' private keys and the ACME
// account key travel there), an admin API reachable beyond loopback (it
// has no TLS: the token and uploaded keys travel in clear), and a token
// file other users may read.
func warnExposures(log *zap.Logger, cfg *config.Config, admin net.Addr) {
	for _, msg := range exposures(cfg, admin) {
		log.Warn("INSECURE: " + msg)
	}
}

// exposures returns one message per exposure found.
func exposures(cfg *config.Config, admin net.Addr) []string {
	var out []string
	if cfg.Store.Backend == "etcd" {
		for _, ep := range cfg.Store.Etcd.Endpoints {
			if plainEtcd(ep) {
				out = append(out, "store.etcd endpoint "+ep+" is plain HTTP: private keys and the ACME account key "+
					"cross the network unencrypted; use https:// endpoints with store.etcd.tls")
			}
		}
	}
	if a, ok := admin.(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		out = append(out, "the admin API listens on "+a.String()+" (listen.admin) without TLS: the admin token, "+
			"uploaded private keys and backups cross the network in clear; bind it to 127.0.0.1 or put a TLS proxy in front")
	}
	if fi, err := os.Stat(cfg.Admin.TokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		out = append(out, "admin.token_file "+cfg.Admin.TokenFile+" has mode "+fi.Mode().Perm().String()+
			": other users may read the admin token; chmod 600 it")
	}
	return out
}

// plainEtcd reports whether an etcd endpoint is dialled without TLS: an
// http:// URL, or host:port with no scheme (the etcd client's plain
// default).
func plainEtcd(ep string) bool {
	ep = strings.ToLower(strings.TrimSpace(ep))
	if strings.HasPrefix(ep, "https://") || strings.HasPrefix(ep, "unix") {
		return false
	}
	return true
}
