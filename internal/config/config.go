package config

import (
	"errors"
	"path/filepath"
	"reflect"

	"github.com/edge-cdn/edge/internal/yamlfield"
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
	Cache         CacheConfig     `mapstructure:"cache"`

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
	// HTTP3 is the UDP address of the QUIC (HTTP/3) listener: "auto" (the
	// default) takes the host of listen.https and the port number the HTTPS
	// listener bound (also when listen.https asks for port 0); "" turns
	// HTTP/3 off.
	HTTP3 string `mapstructure:"http3"`
	// HTTPSRedirectPort is the port written in http→https redirects; 0
	// takes the port of listen.https. Set 443 when a port mapping puts the
	// HTTPS listener behind 443.
	HTTPSRedirectPort int `mapstructure:"https_redirect_port"`
	// HTTP1Server picks the server that speaks HTTP/1.x on listen.http:
	// "edge" (the default: Edge's own, internal/h1, as strict as Go's and
	// cheaper per request) or "go" (Go's net/http server, as before).
	HTTP1Server string `mapstructure:"http1_server"`
}

type StoreConfig struct {
	Backend string     `mapstructure:"backend"`
	Etcd    EtcdConfig `mapstructure:"etcd"`
}

type EtcdConfig struct {
	Endpoints   []string           `mapstructure:"endpoints"`
	Prefix      string             `mapstructure:"prefix"`
	Username    string             `mapstructure:"username"`
	Password    string             `mapstructure:"password"`
	TLS         EtcdTLS            `mapstructure:"tls"`
	DialTimeout yamlfield.Duration `mapstructure:"dial_timeout"`
	// OpTimeout bounds each etcd request, LockTimeout a wait for a lock
	// another node holds; MaxTxnOps must equal the server's --max-txn-ops
	// (extensions, issue 13).
	OpTimeout   yamlfield.Duration `mapstructure:"op_timeout"`
	LockTimeout yamlfield.Duration `mapstructure:"lock_timeout"`
	MaxTxnOps   int                `mapstructure:"max_txn_ops"`
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
	Enabled       bool               `mapstructure:"enabled"`
	RenewBefore   yamlfield.Duration `mapstructure:"renew_before"`
	CheckInterval yamlfield.Duration `mapstructure:"check_interval"`
	ARI           bool               `mapstructure:"ari"`
}

type PreflightConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

type NotifyConfig struct {
	Webhooks      []WebhookConfig    `mapstructure:"webhooks"`
	ExpiryWarning yamlfield.Duration `mapstructure:"expiry_warning"`
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

// CacheConfig is the node's shared cache (SPEC §11). Sizes are strings
// such as 256MiB, read into the Bytes fields by the checks.
type CacheConfig struct {
	MemorySize string `mapstructure:"memory_size"`
	DiskSize   string `mapstructure:"disk_size"`
	Dir        string `mapstructure:"dir"`

	MemoryBytes int64 `mapstructure:"-"`
	DiskBytes   int64 `mapstructure:"-"`
}

// LimitsConfig bounds what clients may cost the node (an extension of
// SPEC §3, documented in the README).
type LimitsConfig struct {
	ReadHeaderTimeout yamlfield.Duration `mapstructure:"read_header_timeout"`
	IdleTimeout       yamlfield.Duration `mapstructure:"idle_timeout"`
	MaxHeaderBytes    int                `mapstructure:"max_header_bytes"`
	MaxURIBytes       int                `mapstructure:"max_uri_bytes"`
	ShutdownTimeout   yamlfield.Duration `mapstructure:"shutdown_timeout"`
	// UpgradeTimeout bounds a binary upgrade (SIGUSR2): the new process
	// must say ready within it, or it is killed and this one resumes.
	UpgradeTimeout yamlfield.Duration `mapstructure:"upgrade_timeout"`
	// MemoryLimit is the Go runtime's soft memory limit: "auto" (the node
	// sets it from cache.memory_size and its live heap), "off", or a size
	// such as 512MiB; read into MemoryLimitBytes (AutoMemoryLimit for
	// auto, 0 for off) by the checks.
	MemoryLimit      string `mapstructure:"memory_limit"`
	MemoryLimitBytes int64  `mapstructure:"-"`
}

// MinHeaderBytes is the smallest limits.max_header_bytes accepted.
const MinHeaderBytes = 8192

func lineOf(err error) int {
	var fe *yamlfield.FieldError
	if errors.As(err, &fe) {
		return fe.Line
	}
	return 0
}

// ResolvePath makes p absolute, relative to base when it is relative.
func ResolvePath(base, p string) string {
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

// MaxNamesPerOrder is the CA's limit on names in one order for a profile.
func (c *Config) MaxNamesPerOrder() int {
	switch c.ACME.Profile {
	case "tlsserver", "shortlived":
		return 25
	}
	return 100
}

// HTTPSRedirectPort is the port written in redirects to https.
func (c *Config) HTTPSRedirectPort(bound int) int {
	if c.Listen.HTTPSRedirectPort != 0 {
		return c.Listen.HTTPSRedirectPort
	}
	return bound
}

// HTTP3Auto is the value of listen.http3 that follows listen.https.
const HTTP3Auto = "auto"

// The values of listen.http1_server.
const (
	HTTP1ServerEdge = "edge"
	HTTP1ServerGo   = "go"
)

// ChangedSections lists the top-level keys whose values differ between
// two configs, in file order.
func ChangedSections(a, b *Config) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	for i := 0; i < va.NumField(); i++ {
		f := va.Type().Field(i)
		key := f.Tag.Get("mapstructure")
		if key == "" || !f.IsExported() {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, key)
		}
	}
	return out
}

// File is the file the config was read from.
func (c *Config) File() string { return c.file }
