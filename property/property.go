package property

import (
	"net/url"
	"slices"
	"time"
)

// Property is one validated property file. It is immutable once built: a
// reload makes new Property values and never changes old ones.
type Property struct {
	Name        string
	File        string // path of the file it came from
	Hostnames   []string
	Origins     []Origin
	OriginHost  string // Host header sent to origins; "" keeps the client's
	TLS         TLS
	Timeouts    Timeouts
	HealthCheck *HealthCheck // nil: no active health checks
	Headers     Headers
	Cache       Cache // SPEC §11; Cache.Enabled false: no caching
	// HTTP3 (key http3, default true) offers the property over QUIC when
	// the node listens for it: Alt-Svc on its HTTPS answers, QUIC
	// handshakes for its names. false refuses those handshakes and sends
	// Alt-Svc: clear for a while.
	HTTP3 bool

	digest    string   // of the file's bytes, to tell a changed file on reload
	stat      fileStat // of the file when it was read (loadFile); zero when not from a file
	hostLines []int    // line of each hostname, for errors found across files
	certLine  int
	nameLine  int
}

// Origin is one upstream of a property.
type Origin struct {
	URL    *url.URL
	Weight int
	// CAFile, when set, is a PEM bundle that replaces the system roots for
	// verifying this https origin.
	CAFile string
	// Dir is the directory served for a file:// origin.
	Dir string
}

// IsFile reports whether the origin is a directory of static files.
func (o Origin) IsFile() bool { return o.URL.Scheme == "file" }

// TLS is the property's HTTPS settings.
type TLS struct {
	Certificate     string // store name; "" serves the property over HTTP only
	RenewAutomation bool
	RedirectHTTP    bool
	HSTS            string
}

// Timeouts bound the talk with origins.
type Timeouts struct {
	Connect        time.Duration
	ResponseHeader time.Duration
	Idle           time.Duration
	// BodyIdle bounds the silence between two reads of the body of a
	// response the cache is storing (never of one streamed through).
	BodyIdle time.Duration
}

// HealthCheck configures active origin health checks.
type HealthCheck struct {
	Path     string
	Interval time.Duration
	Timeout  time.Duration
}

// Headers holds header rewrite rules, names in canonical form.
type Headers struct {
	Request  HeaderRules
	Response HeaderRules
	// AllowOverrides names the override headers (see OverrideHeader) that
	// clients may send to the origin, sorted; on a caching property their
	// values join the cache key. The others are dropped.
	AllowOverrides []string
}

// HeaderRules sets then removes headers.
type HeaderRules struct {
	Set    []Header
	Remove []string
}

// Rules reports whether the rules set or remove header k (canonical): the
// rule then decides what the origin gets of it, not the client.
func (r *HeaderRules) Rules(k string) bool {
	for _, kv := range r.Set {
		if kv.Name == k {
			return true
		}
	}
	return slices.Contains(r.Remove, k)
}

// Header is one name and value.
type Header struct{ Name, Value string }

// Default timeouts, as documented in the README.
const (
	DefaultConnectTimeout        = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleTimeout           = 90 * time.Second
	DefaultBodyIdleTimeout       = 30 * time.Second
	DefaultHealthInterval        = 10 * time.Second
	DefaultHealthTimeout         = 2 * time.Second
)

// Digest identifies the content of the file the property came from: equal
// digests mean an unchanged file.
func (p *Property) Digest() string { return p.digest }
