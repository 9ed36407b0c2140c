package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/edge-cdn/edge/internal/conf"
	"github.com/edge-cdn/edge/property"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Config is the node configuration (SPEC §3), read once by viper and then
// immutable. Every key is documented with its default in config.example.yaml.
type Config struct {
	Node          NodeConfig      `mapstructure:"node"`
	Listen        ListenConfig    `mapstructure:"listen"`
	DataDir       string          `mapstructure:"data_dir"`
	PropertiesDir string          `mapstructure:"properties_dir"`
	Store         StoreConfig     `mapstructure:"store"`
	ACME          ACMEConfig      `mapstructure:"acme"`
	Renewal       RenewalConfig   `mapstructure:"renewal"`
	Preflight     PreflightConfig `mapstructure:"preflight"`
	Notify        NotifyConfig    `mapstructure:"notify"`
	Admin         AdminConfig     `mapstructure:"admin"`
	Log           LogConfig       `mapstructure:"log"`
	Limits        LimitsConfig    `mapstructure:"limits"`

	file string // the file it was read from
}

type NodeConfig struct {
	Name         string `mapstructure:"name"`
	EdgeHostname string `mapstructure:"edge_hostname"`
}

type ListenConfig struct {
	HTTP  string `mapstructure:"http"`
	HTTPS string `mapstructure:"https"`
	Admin string `mapstructure:"admin"`
	// HTTPSRedirectPort is the port written in http→https redirects; 0
	// takes the port of listen.https. Set 443 when a port mapping puts the
	// HTTPS listener behind 443.
	HTTPSRedirectPort int `mapstructure:"https_redirect_port"`
}

type StoreConfig struct {
	Backend string     `mapstructure:"backend"`
	Etcd    EtcdConfig `mapstructure:"etcd"`
}

type EtcdConfig struct {
	Endpoints   []string      `mapstructure:"endpoints"`
	Prefix      string        `mapstructure:"prefix"`
	Username    string        `mapstructure:"username"`
	Password    string        `mapstructure:"password"`
	TLS         EtcdTLS       `mapstructure:"tls"`
	DialTimeout conf.Duration `mapstructure:"dial_timeout"`
}

type EtcdTLS struct {
	CA   string `mapstructure:"ca"`
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

type ACMEConfig struct {
	Directory        string `mapstructure:"directory"`
	StagingDirectory string `mapstructure:"staging_directory"`
	Email            string `mapstructure:"email"`
	AgreeTOS         bool   `mapstructure:"agree_tos"`
	CARoots          string `mapstructure:"ca_roots"`
	Profile          string `mapstructure:"profile"`
	ChallengePort    int    `mapstructure:"challenge_port"`
	Resolver         string `mapstructure:"resolver"`
}

type RenewalConfig struct {
	// Enabled (extension) lets this node order and renew certificates; a
	// fleet node with it off still answers challenges and serves.
	Enabled       bool          `mapstructure:"enabled"`
	RenewBefore   conf.Duration `mapstructure:"renew_before"`
	CheckInterval conf.Duration `mapstructure:"check_interval"`
	ARI           bool          `mapstructure:"ari"`
}

type PreflightConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

type NotifyConfig struct {
	Webhooks      []WebhookConfig `mapstructure:"webhooks"`
	ExpiryWarning conf.Duration   `mapstructure:"expiry_warning"`
}

type WebhookConfig struct {
	URL    string   `mapstructure:"url"`
	Secret string   `mapstructure:"secret"`
	Events []string `mapstructure:"events"`
}

type AdminConfig struct {
	TokenFile string `mapstructure:"token_file"`
}

type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
	Access bool   `mapstructure:"access"`
}

// LimitsConfig bounds what clients may cost the node (an extension of
// SPEC §3, documented in the README).
type LimitsConfig struct {
	ReadHeaderTimeout conf.Duration `mapstructure:"read_header_timeout"`
	IdleTimeout       conf.Duration `mapstructure:"idle_timeout"`
	MaxHeaderBytes    int           `mapstructure:"max_header_bytes"`
	ShutdownTimeout   conf.Duration `mapstructure:"shutdown_timeout"`
}

const (
	letsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

var defaults = map[string]any{
	"node.name":                  "",
	"node.edge_hostname":         "",
	"listen.http":                ":80",
	"listen.https":               ":443",
	"listen.admin":               "127.0.0.1:9180",
	"listen.https_redirect_port": 0,
	"data_dir":                   "/var/lib/edge",
	"properties_dir":             "/etc/edge/properties",
	"store.backend":              "bbolt",
	"store.etcd.endpoints":       []string{},
	"store.etcd.prefix":          "/edge/",
	"store.etcd.username":        "",
	"store.etcd.password":        "",
	"store.etcd.tls.ca":          "",
	"store.etcd.tls.cert":        "",
	"store.etcd.tls.key":         "",
	"store.etcd.dial_timeout":    "5s",
	"acme.directory":             letsEncrypt,
	"acme.staging_directory":     letsEncryptStaging,
	"acme.email":                 "",
	"acme.agree_tos":             false,
	"acme.ca_roots":              "",
	"acme.profile":               "",
	"acme.challenge_port":        80,
	"acme.resolver":              "",
	"renewal.enabled":            true,
	"renewal.renew_before":       "25d",
	"renewal.check_interval":     "10m",
	"renewal.ari":                true,
	"preflight.enabled":          true,
	"notify.webhooks":            []any{},
	"notify.expiry_warning":      "7d",
	"admin.token_file":           "",
	"log.level":                  "info",
	"log.format":                 "json",
	"log.access":                 true,
	"limits.read_header_timeout": "10s",
	"limits.idle_timeout":        "120s",
	"limits.max_header_bytes":    64 << 10,
	"limits.shutdown_timeout":    "30s",
}

// configFile finds the config file: the flag, else $EDGE_CONFIG, else
// ./edge.yaml, else /etc/edge/edge.yaml.
func configFile(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if env := os.Getenv("EDGE_CONFIG"); env != "" {
		return env, nil
	}
	for _, f := range []string{"edge.yaml", "/etc/edge/edge.yaml"} {
		if _, err := os.Stat(f); err == nil {
			return f, nil
		}
	}
	return "", errors.New("no config file: pass --config FILE or set EDGE_CONFIG (looked for ./edge.yaml and /etc/edge/edge.yaml)")
}

// loadConfig reads, checks and normalises the config. It returns every
// problem found, each naming the file and line, or the environment
// variable, and the key.
func loadConfig(file string) (*Config, []error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, []error{fmt.Errorf("config: %w", err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, conf.FromYAML(file, err)
	}
	if len(doc.Content) > 0 && doc.Content[0].Kind != yaml.MappingNode {
		return nil, []error{&conf.FieldError{File: file, Line: conf.Line(&doc), Msg: "the config must be a YAML mapping"}}
	}
	if errs := conf.CheckKeys(file, &doc, reflect.TypeOf(Config{}), "mapstructure"); len(errs) > 0 {
		return nil, errs
	}
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("EDGE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return nil, []error{fmt.Errorf("%s: %w", file, err)}
	}
	c := &Config{file: file}
	chk := &configChecker{file: file, doc: &doc}
	if err := v.UnmarshalExact(c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationHook, mapstructure.StringToSliceHookFunc(","),
	))); err != nil {
		return nil, chk.decodeErrors(err)
	}
	chk.check(c)
	sort.SliceStable(chk.errs, func(i, j int) bool { return lineOf(chk.errs[i]) < lineOf(chk.errs[j]) })
	if len(chk.errs) > 0 {
		return nil, chk.errs
	}
	return c, nil
}

var durationType = reflect.TypeOf(conf.Duration(0))

func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch d := data.(type) {
	case string:
		v, err := conf.ParseDuration(d)
		return conf.Duration(v), err
	case time.Duration:
		return conf.Duration(d), nil
	case int:
		if d == 0 {
			return conf.Duration(0), nil
		}
	}
	return nil, fmt.Errorf("%v is not a duration: use a number with a unit, as in 30s or 25d", data)
}

type configChecker struct {
	file string
	doc  *yaml.Node
	errs []error
}

// fail records a problem with key, located in the environment when an
// EDGE_ variable sets it, else at its line in the file.
func (c *configChecker) fail(key, format string, args ...any) {
	e := &conf.FieldError{Field: key, Msg: fmt.Sprintf(format, args...)}
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
		e.Line = conf.Line(c.doc, path...)
	}
	c.errs = append(c.errs, e)
}

// decodeErrors turns mapstructure's errors ("'renewal.renew_before' …")
// into located ones.
func (c *configChecker) decodeErrors(err error) []error {
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
		if line == "" || strings.HasPrefix(line, "decoding failed") || strings.HasSuffix(line, "error(s) decoding:") {
			continue
		}
		key := ""
		if i := strings.Index(line, "'"); i >= 0 {
			if j := strings.Index(line[i+1:], "'"); j >= 0 {
				key = line[i+1 : i+1+j]
				line = strings.TrimSpace(line[i+j+2:])
			}
		}
		key = strings.NewReplacer("[", ".", "]", "").Replace(key)
		c.fail(key, "%s", line)
	}
	if len(c.errs) == 0 {
		c.errs = append(c.errs, fmt.Errorf("%s: %w", c.file, err))
	}
	return c.errs
}

func (c *configChecker) check(cfg *Config) {
	if cfg.Node.Name == "" {
		cfg.Node.Name, _ = os.Hostname()
	}
	if cfg.Node.EdgeHostname != "" {
		if _, err := property.Normalize(cfg.Node.EdgeHostname); err != nil {
			c.fail("node.edge_hostname", "%v", err)
		}
	}
	for key, addr := range map[string]string{"listen.http": cfg.Listen.HTTP, "listen.https": cfg.Listen.HTTPS, "listen.admin": cfg.Listen.Admin} {
		if _, port, err := net.SplitHostPort(addr); err != nil {
			c.fail(key, "%q is not host:port (use :8080 for every address)", addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			c.fail(key, "%q: port must be a number from 0 to 65535", addr)
		}
	}
	if p := cfg.Listen.HTTPSRedirectPort; p < 0 || p > 65535 {
		c.fail("listen.https_redirect_port", "%d must be a port number, or 0 for the port of listen.https", p)
	}
	base := filepath.Dir(c.file)
	for key, dir := range map[string]*string{"data_dir": &cfg.DataDir, "properties_dir": &cfg.PropertiesDir} {
		if *dir == "" {
			c.fail(key, "must not be empty")
			continue
		}
		*dir = resolvePath(base, *dir)
	}
	if cfg.Admin.TokenFile == "" {
		cfg.Admin.TokenFile = filepath.Join(cfg.DataDir, "admin.token")
	} else {
		cfg.Admin.TokenFile = resolvePath(base, cfg.Admin.TokenFile)
	}
	switch cfg.Store.Backend {
	case "bbolt":
	case "etcd":
		if len(cfg.Store.Etcd.Endpoints) == 0 {
			c.fail("store.etcd.endpoints", "store.backend etcd needs at least one endpoint")
		}
	default:
		c.fail("store.backend", "%q: use bbolt (one node) or etcd (a fleet)", cfg.Store.Backend)
	}
	for key, u := range map[string]string{"acme.directory": cfg.ACME.Directory, "acme.staging_directory": cfg.ACME.StagingDirectory} {
		if u == "" && key == "acme.staging_directory" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" {
			c.fail(key, "%q must be an https:// URL of an ACME directory", u)
		}
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
	if cfg.ACME.CARoots != "" {
		cfg.ACME.CARoots = resolvePath(base, cfg.ACME.CARoots)
	}
	if cfg.Renewal.RenewBefore <= 0 {
		c.fail("renewal.renew_before", "must be more than 0, as in 25d")
	}
	if d := cfg.Renewal.CheckInterval.Std(); d < time.Second || d > time.Hour {
		c.fail("renewal.check_interval", "%s must be between 1s and 1h: a due certificate's first attempt must start within the hour", d)
	}
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
	for key, d := range map[string]conf.Duration{"limits.read_header_timeout": cfg.Limits.ReadHeaderTimeout,
		"limits.idle_timeout": cfg.Limits.IdleTimeout, "limits.shutdown_timeout": cfg.Limits.ShutdownTimeout} {
		if d <= 0 {
			c.fail(key, "must be more than 0")
		}
	}
	if n := cfg.Limits.MaxHeaderBytes; n < 4096 || n > 1<<20 {
		c.fail("limits.max_header_bytes", "%d must be between 4096 and 1048576", n)
	}
}

func lineOf(err error) int {
	var fe *conf.FieldError
	if errors.As(err, &fe) {
		return fe.Line
	}
	return 0
}

func resolvePath(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

// eventNames are the event types of SPEC §8.
var eventNames = []string{"certificate.issued", "certificate.renewed", "certificate.failed",
	"certificate.expiring", "certificate.expired", "property.loaded", "property.rejected"}

var knownEvents = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range eventNames {
		m[e] = true
	}
	return m
}()

// maxNamesPerOrder is the CA's limit on names in one order for a profile.
func (c *Config) maxNamesPerOrder() int {
	switch c.ACME.Profile {
	case "tlsserver", "shortlived":
		return 25
	}
	return 100
}

// httpsRedirectPort is the port written in redirects to https.
func (c *Config) httpsRedirectPort(bound int) int {
	if c.Listen.HTTPSRedirectPort != 0 {
		return c.Listen.HTTPSRedirectPort
	}
	return bound
}
