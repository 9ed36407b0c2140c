package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edge-cdn/edge/internal/yamlfield"
	"github.com/edge-cdn/edge/property"
	"go.yaml.in/yaml/v3"
)

// checker collects the problems of one config, each located.
type checker struct {
	file string
	doc  *yaml.Node
	errs []error
}

// fail records a problem with key, located in the environment when an
// EDGE_ variable sets it, else at its line in the file.
func (c *checker) fail(key, format string, args ...any) {
	if c.failed(key) {
		return // one problem per key: the first found says the most
	}
	e := &yamlfield.FieldError{Field: key, Msg: fmt.Sprintf(format, args...)}
	env := "EDGE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
	if _, ok := os.LookupEnv(env); ok {
		e.File = "environment " + env
	} else {
		e.File = c.file
		path := make([]any, 0, 4)
		for _, p := range strings.Split(key, ".") {
			if i, err := strconv.Atoi(p); err == nil {
				path = append(path, i)
			} else {
				path = append(path, p)
			}
		}
		e.Line = yamlfield.Line(c.doc, path...)
	}
	c.errs = append(c.errs, e)
}

// failed reports whether key has a problem recorded already.
func (c *checker) failed(key string) bool {
	for _, err := range c.errs {
		var fe *yamlfield.FieldError
		if errors.As(err, &fe) && fe.Field == key {
			return true
		}
	}
	return false
}

// check normalises cfg and records every problem, section by section.
func (c *checker) check(cfg *Config) {
	c.node(cfg)
	c.listen(cfg)
	c.paths(cfg)
	c.store(cfg)
	c.acme(cfg)
	c.renewal(cfg)
	c.notify(cfg)
	c.log(cfg)
	c.limits(cfg)
	c.cache(cfg)
	c.memoryLimit(cfg)
}

func (c *checker) node(cfg *Config) {
	if cfg.Node.Name == "" {
		cfg.Node.Name, _ = os.Hostname()
	}
	if cfg.Node.EdgeHostname != "" {
		if _, err := property.Normalize(cfg.Node.EdgeHostname); err != nil {
			c.fail("node.edge_hostname", "%v", err)
		}
	}
}

func (c *checker) listen(cfg *Config) {
	for key, addr := range map[string]string{"listen.http": cfg.Listen.HTTP, "listen.https": cfg.Listen.HTTPS, "listen.admin": cfg.Listen.Admin} {
		if _, port, err := net.SplitHostPort(addr); err != nil {
			c.fail(key, "%q is not host:port (use :8080 for every address)", addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			c.fail(key, "%q: port must be a number from 0 to 65535", addr)
		}
	}
	if a := cfg.Listen.HTTP3; a != "" && a != HTTP3Auto {
		if _, port, err := net.SplitHostPort(a); err != nil {
			c.fail("listen.http3", "%q is not host:port, %q (the address of listen.https, over UDP) or \"\" (HTTP/3 off)", a, HTTP3Auto)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			c.fail("listen.http3", "%q: port must be a number from 0 to 65535", a)
		}
	}
	if s := cfg.Listen.HTTP1Server; s != HTTP1ServerEdge && s != HTTP1ServerGo {
		c.fail("listen.http1_server", "%q is not %q (Edge's own HTTP/1.1 server) or %q (Go's net/http server)", s, HTTP1ServerEdge, HTTP1ServerGo)
	}
	if p := cfg.Listen.HTTPSRedirectPort; p < 0 || p > 65535 {
		c.fail("listen.https_redirect_port", "%d must be a port number, or 0 for the port of listen.https", p)
	}
}

// paths makes every path absolute, relative to the config file's folder.
func (c *checker) paths(cfg *Config) {
	base := filepath.Dir(c.file)
	for key, dir := range map[string]*string{"data_dir": &cfg.DataDir, "properties_dir": &cfg.PropertiesDir} {
		if *dir == "" {
			c.fail(key, "must not be empty")
			continue
		}
		*dir = ResolvePath(base, *dir)
	}
	if cfg.Admin.TokenFile == "" {
		cfg.Admin.TokenFile = filepath.Join(cfg.DataDir, "admin.token")
	} else {
		cfg.Admin.TokenFile = ResolvePath(base, cfg.Admin.TokenFile)
	}
	if cfg.ACME.CARoots != "" {
		cfg.ACME.CARoots = ResolvePath(base, cfg.ACME.CARoots)
	}
}

func (c *checker) store(cfg *Config) {
	switch cfg.Store.Backend {
	case "bbolt":
	case "etcd":
		if len(cfg.Store.Etcd.Endpoints) == 0 {
			c.fail("store.etcd.endpoints", "store.backend etcd needs at least one endpoint")
		}
		for key, d := range map[string]yamlfield.Duration{"store.etcd.op_timeout": cfg.Store.Etcd.OpTimeout, "store.etcd.lock_timeout": cfg.Store.Etcd.LockTimeout} {
			if d <= 0 {
				c.fail(key, "must be more than 0: every etcd call needs a bound")
			}
		}
		if n := cfg.Store.Etcd.MaxTxnOps; n < 16 {
			c.fail("store.etcd.max_txn_ops", "%d: use the etcd server's --max-txn-ops (128 by default), at least 16", n)
		}
	default:
		c.fail("store.backend", "%q: use bbolt (one node) or etcd (a fleet)", cfg.Store.Backend)
	}
}

func (c *checker) acme(cfg *Config) {
	for key, u := range map[string]string{"acme.directory": cfg.ACME.Directory, "acme.staging_directory": cfg.ACME.StagingDirectory} {
		if u == "" && key == "acme.staging_directory" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" {
			c.fail(key, "%q must be an https:// URL of an ACME directory", u)
		}
	}
	// Let's Encrypt's staging CA tests retries against Let's Encrypt
	// production only: a private CA's retries stay with it (issue 11). A
	// staging directory set to anything else is the operator's choice.
	if cfg.ACME.StagingDirectory == letsEncryptStaging && cfg.ACME.Directory != letsEncrypt {
		cfg.ACME.StagingDirectory = ""
	}
	switch cfg.ACME.Profile {
	case "", "classic", "tlsserver", "shortlived":
	default:
		c.fail("acme.profile", "%q: use classic, tlsserver or shortlived, or leave it empty", cfg.ACME.Profile)
	}
	if p := cfg.ACME.ChallengePort; p < 1 || p > 65535 {
		c.fail("acme.challenge_port", "%d must be a port number from 1 to 65535", p)
	}
	if r := cfg.ACME.Resolver; r != "" {
		if _, _, err := net.SplitHostPort(r); err != nil {
			c.fail("acme.resolver", "%q must be host:port of a DNS server, as in 127.0.0.1:53", r)
		}
	}
}

func (c *checker) renewal(cfg *Config) {
	if cfg.Renewal.RenewBefore <= 0 {
		c.fail("renewal.renew_before", "must be more than 0, as in 25d")
	}
	if d := cfg.Renewal.CheckInterval.Std(); d < time.Second || d > time.Hour {
		c.fail("renewal.check_interval", "%s must be between 1s and 1h: a due certificate's first attempt must start within the hour", d)
	}
}

func (c *checker) notify(cfg *Config) {
	if cfg.Notify.ExpiryWarning <= 0 {
		c.fail("notify.expiry_warning", "must be more than 0, as in 7d")
	}
	for i, w := range cfg.Notify.Webhooks {
		key := fmt.Sprintf("notify.webhooks.%d", i)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.fail(key+".url", "%q must be an http:// or https:// URL", w.URL)
		}
		for j, ev := range w.Events {
			if !knownEvents[ev] {
				c.fail(fmt.Sprintf("%s.events.%d", key, j), "unknown event %q (known: %s)", ev, strings.Join(eventNames, ", "))
			}
		}
	}
}

func (c *checker) log(cfg *Config) {
	switch cfg.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		c.fail("log.level", "%q: use debug, info, warn or error", cfg.Log.Level)
	}
	switch cfg.Log.Format {
	case "json", "console":
	default:
		c.fail("log.format", "%q: use json, or console for people", cfg.Log.Format)
	}
}

func (c *checker) limits(cfg *Config) {
	for key, d := range map[string]yamlfield.Duration{"limits.read_header_timeout": cfg.Limits.ReadHeaderTimeout,
		"limits.idle_timeout": cfg.Limits.IdleTimeout, "limits.shutdown_timeout": cfg.Limits.ShutdownTimeout,
		"limits.upgrade_timeout": cfg.Limits.UpgradeTimeout} {
		if d <= 0 {
			c.fail(key, "must be more than 0")
		}
	}
	// Go's server reads max_header_bytes - 4096 plus its 4096-byte read
	// buffer before it answers 431 (see internal/node): below 8192 that
	// leaves too little for a real browser's head.
	if n := cfg.Limits.MaxHeaderBytes; n < MinHeaderBytes || n > 1<<20 {
		c.fail("limits.max_header_bytes", "%d must be between %d and 1048576", n, MinHeaderBytes)
	}
	if n := cfg.Limits.MaxURIBytes; n < 1024 || n > cfg.Limits.MaxHeaderBytes {
		c.fail("limits.max_uri_bytes", "%d must be between 1024 and limits.max_header_bytes (%d)", n, cfg.Limits.MaxHeaderBytes)
	}
}

func (c *checker) cache(cfg *Config) {
	var err error
	if cfg.Cache.MemoryBytes, err = property.ParseSize(cfg.Cache.MemorySize); err != nil {
		c.fail("cache.memory_size", "%v", err)
	} else if cfg.Cache.MemoryBytes < 1<<20 {
		c.fail("cache.memory_size", "%s is less than 1MiB: a memory tier that small holds almost nothing", cfg.Cache.MemorySize)
	}
	if cfg.Cache.DiskBytes, err = property.ParseSize(cfg.Cache.DiskSize); err != nil {
		c.fail("cache.disk_size", "%v", err)
	}
	if cfg.Cache.Dir == "" {
		cfg.Cache.Dir = filepath.Join(cfg.DataDir, "cache")
	} else {
		cfg.Cache.Dir = ResolvePath(filepath.Dir(c.file), cfg.Cache.Dir)
	}
}

// AutoMemoryLimit is MemoryLimitBytes for limits.memory_limit: auto; the
// node then follows its heap (internal/node, gc.go).
const AutoMemoryLimit = -1

// MinMemoryLimitHeadroom is the least a set limits.memory_limit must
// leave beyond cache.memory_size: under it the collector would run
// nearly constantly once the cache fills.
const MinMemoryLimitHeadroom = 64 << 20

func (c *checker) memoryLimit(cfg *Config) {
	switch v := strings.TrimSpace(cfg.Limits.MemoryLimit); v {
	case "auto", "":
		cfg.Limits.MemoryLimitBytes = AutoMemoryLimit
	case "off", "0":
		cfg.Limits.MemoryLimitBytes = 0
	default:
		n, err := property.ParseSize(v)
		if err != nil {
			c.fail("limits.memory_limit", "%v (or auto, or off)", err)
			return
		}
		if floor := cfg.Cache.MemoryBytes + MinMemoryLimitHeadroom; n < floor {
			c.fail("limits.memory_limit", "%s is less than cache.memory_size + 64MiB (%dMiB): the collector would run almost constantly once the cache fills",
				v, floor>>20)
			return
		}
		cfg.Limits.MemoryLimitBytes = n
	}
}
