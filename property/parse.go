package property

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/edge-cdn/edge/internal/yamlfield"
	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"
)

// NamePattern is what property and certificate names look like.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Parse reads one property file's bytes. It returns the property, or every
// problem found (each a *yamlfield.FieldError naming file, line and field).
// Problems that need other files (duplicate hostnames) are checked by Build.
func Parse(file string, data []byte) (*Property, []error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil, []error{&yamlfield.FieldError{File: file, Msg: "empty file: a property needs at least hostnames and origins"}}
		}
		return nil, yamlfield.FromYAMLSource(file, data, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, []error{&yamlfield.FieldError{File: file, Line: yamlfield.Line(&doc), Msg: "a property file must be a YAML mapping (key: value lines)"}}
	}
	shape := yamlfield.CheckKeys(file, &doc, reflect.TypeOf(fileSchema{}), "yaml")
	var s fileSchema
	if err := doc.Decode(&s); err != nil {
		if len(shape) > 0 {
			return nil, shape
		}
		return nil, yamlfield.FromYAML(file, err)
	}
	v := &validator{file: file, doc: &doc, dir: filepath.Dir(file)}
	p := v.property(&s)
	if errs := merge(shape, v.errs); len(errs) > 0 {
		return nil, errs
	}
	p.nameLine = yamlfield.Line(&doc, "name")
	p.certLine = yamlfield.Line(&doc, "tls", "certificate")
	for i := range s.Hostnames {
		p.hostLines = append(p.hostLines, yamlfield.Line(&doc, "hostnames", i))
	}
	p.digest = digestOf(data)
	return p, nil
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// merge returns the shape errors, then the validation errors about fields
// that no shape error already covers (a field of the wrong kind decodes as
// its zero value, which validation would report a second time), in line
// order.
func merge(shape, valid []error) []error {
	out := append([]error(nil), shape...)
	for _, e := range valid {
		if !coveredBy(e, shape) {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return errLine(out[i]) < errLine(out[j]) })
	return out
}

func coveredBy(e error, shape []error) bool {
	fe, ok := e.(*yamlfield.FieldError)
	if !ok {
		return false
	}
	for _, s := range shape {
		sf, ok := s.(*yamlfield.FieldError)
		if ok && (sf.Field == fe.Field || strings.HasPrefix(fe.Field, sf.Field+".") || strings.HasPrefix(fe.Field, sf.Field+"[") ||
			strings.HasPrefix(sf.Field, fe.Field+".") || strings.HasPrefix(sf.Field, fe.Field+"[")) {
			return true
		}
	}
	return false
}

func errLine(err error) int {
	if fe, ok := err.(*yamlfield.FieldError); ok {
		return fe.Line
	}
	return 0
}

type validator struct {
	file string
	doc  *yaml.Node
	dir  string
	errs []error
}

// fail records a problem at the YAML path (keys and indexes).
func (v *validator) fail(path []any, format string, args ...any) {
	v.errs = append(v.errs, &yamlfield.FieldError{
		File: v.file, Line: yamlfield.Line(v.doc, path...), Field: fieldName(path),
		Msg: fmt.Sprintf(format, args...),
	})
}

func fieldName(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			b.WriteString("[" + strconv.Itoa(k) + "]")
		}
	}
	return b.String()
}

func at(path ...any) []any { return path }

func (v *validator) property(s *fileSchema) *Property {
	p := &Property{File: v.file, OriginHost: s.OriginHost}
	p.Name = s.Name
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(v.file), filepath.Ext(v.file))
	}
	if !NamePattern.MatchString(p.Name) {
		v.fail(at("name"), "property name %q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", p.Name)
	}
	p.TLS = TLS{Certificate: s.TLS.Certificate, RenewAutomation: s.TLS.RenewAutomation,
		RedirectHTTP: s.TLS.RedirectHTTP, HSTS: s.TLS.HSTS}
	p.Hostnames = v.hostnames(s.Hostnames, p.TLS.RenewAutomation)
	p.Origins = v.origins(s.Origins)
	v.originHost(s.OriginHost)
	v.tls(&p.TLS)
	p.Timeouts = Timeouts{
		Connect:        v.timeout("connect", s.Timeouts.Connect, DefaultConnectTimeout),
		ResponseHeader: v.timeout("response_header", s.Timeouts.ResponseHeader, DefaultResponseHeaderTimeout),
		Idle:           v.timeout("idle", s.Timeouts.Idle, DefaultIdleTimeout),
		BodyIdle:       v.timeout("body_idle", s.Timeouts.BodyIdle, DefaultBodyIdleTimeout),
	}
	p.HealthCheck = v.health(s.HealthCheck)
	p.Headers = Headers{
		Request:  v.headerRules("request", s.Headers.Request),
		Response: v.headerRules("response", s.Headers.Response),
	}
	p.Headers.AllowOverrides = v.allowOverrides(s.Headers.AllowOverrides)
	p.Cache = v.cache(&s.Cache)
	p.HTTP3 = s.HTTP3 == nil || *s.HTTP3
	if s.HTTP3 != nil && *s.HTTP3 && p.TLS.Certificate == "" {
		v.fail(at("http3"), "needs tls.certificate: HTTP/3 runs over TLS")
	}
	return p
}

func (v *validator) hostnames(in []string, automation bool) []string {
	if len(in) == 0 {
		v.fail(at("hostnames"), "at least one hostname is required, as a list: hostnames: [shop.example]")
		return nil
	}
	seen := make(map[string]int, len(in))
	out := make([]string, 0, len(in))
	for i, h := range in {
		n, err := NormalizeWildcard(h)
		if err != nil {
			v.fail(at("hostnames", i), "%v", err)
			continue
		}
		if j, dup := seen[n]; dup {
			v.fail(at("hostnames", i), "hostname %q is listed twice (also hostnames[%d])", n, j)
			continue
		}
		if automation && strings.HasPrefix(n, "*.") {
			v.fail(at("hostnames", i), "wildcard %q cannot be used with tls.renew_automation: HTTP-01 cannot validate wildcards; list each name, or turn renew_automation off and upload a wildcard certificate", n)
			continue
		}
		seen[n] = i
		out = append(out, n)
	}
	return out
}

func (v *validator) origins(in []originSchema) []Origin {
	if len(in) == 0 {
		v.fail(at("origins"), "at least one origin is required, as in origins: [{url: http://10.0.0.5:8080}]")
		return nil
	}
	if len(in) > 64 {
		v.fail(at("origins"), "%d origins: at most 64 are allowed", len(in))
		return nil
	}
	out := make([]Origin, 0, len(in))
	for i, o := range in {
		u, err := url.Parse(o.URL)
		if err != nil || o.URL == "" {
			v.fail(at("origins", i, "url"), "%q is not a URL: use http://host:port, https://host or file:///directory", o.URL)
			continue
		}
		org := Origin{URL: u, Weight: 1}
		if o.Weight != nil {
			if *o.Weight < 1 || *o.Weight > 1000 {
				v.fail(at("origins", i, "weight"), "weight %d must be between 1 and 1000", *o.Weight)
				continue
			}
			org.Weight = *o.Weight
		}
		switch u.Scheme {
		case "http", "https":
			if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				v.fail(at("origins", i, "url"), "%q must be scheme://host[:port][/path], with no user, query or fragment", o.URL)
				continue
			}
			if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
					v.fail(at("origins", i, "url"), "%q: port must be a number from 1 to 65535", o.URL)
					continue
				}
			}
			if o.CAFile != "" {
				if u.Scheme != "https" {
					v.fail(at("origins", i, "ca_file"), "ca_file applies to https origins only")
					continue
				}
				org.CAFile = v.path(o.CAFile)
				if err := checkPEMFile(org.CAFile); err != nil {
					v.fail(at("origins", i, "ca_file"), "%v", err)
					continue
				}
			}
		case "file":
			if len(in) > 1 {
				v.fail(at("origins", i, "url"), "a file origin must be the property's only origin")
				continue
			}
			dir := u.Path
			if u.Opaque != "" {
				dir = u.Opaque
			}
			org.Dir = v.path(dir)
			if st, err := os.Stat(org.Dir); err != nil || !st.IsDir() {
				v.fail(at("origins", i, "url"), "directory %s does not exist or is not a directory", org.Dir)
				continue
			}
		default:
			v.fail(at("origins", i, "url"), "scheme %q is not supported: use http, https or file", u.Scheme)
			continue
		}
		out = append(out, org)
	}
	return out
}

// path resolves a path relative to the property file's directory.
func (v *validator) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(v.dir, p)
}

func checkPEMFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", path, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}

func (v *validator) originHost(h string) {
	if h == "" {
		return
	}
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.fail(at("origin_host"), "%q: port must be a number from 1 to 65535", h)
			return
		}
	}
	if net.ParseIP(host) != nil {
		return
	}
	if _, err := Normalize(host); err != nil {
		v.fail(at("origin_host"), "%v", err)
	}
}

var hstsPattern = regexp.MustCompile(`^max-age=\d+(\s*;\s*(includeSubDomains|preload))*$`)

func (v *validator) tls(t *TLS) {
	if t.Certificate == "" {
		for _, f := range []struct {
			set  bool
			name string
		}{{t.RenewAutomation, "renew_automation"}, {t.RedirectHTTP, "redirect_http"}, {t.HSTS != "", "hsts"}} {
			if f.set {
				v.fail(at("tls", f.name), "needs tls.certificate: name the certificate this property serves (Edge creates a self-signed one under that name if none exists)")
			}
		}
		return
	}
	if !NamePattern.MatchString(t.Certificate) {
		v.fail(at("tls", "certificate"), "certificate name %q must be 1-64 letters, digits, '.', '_' or '-'", t.Certificate)
	}
	if t.HSTS != "" && !hstsPattern.MatchString(t.HSTS) {
		v.fail(at("tls", "hsts"), "%q is not a Strict-Transport-Security value such as \"max-age=31536000; includeSubDomains\"", t.HSTS)
	}
}

func (v *validator) timeout(key string, d yamlfield.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	if d.Std() < time.Millisecond || d.Std() > 24*time.Hour {
		v.fail(at("timeouts", key), "%s must be between 1ms and 24h", d.Std())
	}
	return d.Std()
}

func (v *validator) health(h *healthSchema) *HealthCheck {
	if h == nil {
		return nil
	}
	hc := &HealthCheck{Path: h.Path, Interval: h.Interval.Std(), Timeout: h.Timeout.Std()}
	if hc.Interval == 0 {
		hc.Interval = DefaultHealthInterval
	}
	if hc.Timeout == 0 {
		hc.Timeout = DefaultHealthTimeout
	}
	if !strings.HasPrefix(hc.Path, "/") {
		v.fail(at("health_check", "path"), "path %q must start with /", hc.Path)
	}
	if hc.Interval < time.Second {
		v.fail(at("health_check", "interval"), "interval %s must be at least 1s", hc.Interval)
	}
	if hc.Timeout >= hc.Interval {
		v.fail(at("health_check", "timeout"), "timeout %s must be shorter than interval %s", hc.Timeout, hc.Interval)
	}
	return hc
}

// managedHeaders are set by the proxy itself; rules may not touch them.
var managedHeaders = map[string]bool{
	"Connection": true, "Content-Length": true, "Transfer-Encoding": true, "Upgrade": true,
	"Keep-Alive": true, "Te": true, "Trailer": true, "Host": true, "Proxy-Connection": true,
}

func (v *validator) headerRules(side string, r headerRulesSchema) HeaderRules {
	var out HeaderRules
	names := make([]string, 0, len(r.Set))
	for n := range r.Set {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		val := r.Set[n]
		if !v.headerName(at("headers", side, "set", n), n) {
			continue
		}
		if !httpguts.ValidHeaderFieldValue(val) {
			v.fail(at("headers", side, "set", n), "value of %s has characters not allowed in a header (control characters or line breaks)", n)
			continue
		}
		out.Set = append(out.Set, Header{Name: http.CanonicalHeaderKey(n), Value: val})
	}
	for i, n := range r.Remove {
		if v.headerName(at("headers", side, "remove", i), n) {
			out.Remove = append(out.Remove, http.CanonicalHeaderKey(n))
		}
	}
	return out
}

func (v *validator) headerName(path []any, n string) bool {
	if !httpguts.ValidHeaderFieldName(n) {
		v.fail(path, "%q is not a valid header name", n)
		return false
	}
	if managedHeaders[http.CanonicalHeaderKey(n)] {
		v.fail(path, "%s is managed by the proxy and cannot be set or removed", http.CanonicalHeaderKey(n))
		return false
	}
	return true
}
