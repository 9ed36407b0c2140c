package property

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edge-cdn/edge/internal/yamlfield"
	"golang.org/x/net/http/httpguts"
)

// Cache is a property's cache settings (SPEC §11).
type Cache struct {
	Enabled    bool
	DefaultTTL time.Duration // 0: RFC 9111 §4.2.2 heuristics
	// NoDeceptionArmor (cache.deception_armor: false) stores responses whose
	// Content-Type contradicts the URL's extension; by default they are not.
	NoDeceptionArmor bool
	// MaxObjectSize bounds a stored response body; larger ones stream
	// through uncached.
	MaxObjectSize int64
	Query         QueryMode
	QueryParams   []string // the parameters kept when Query is QueryList
	// StaleWhileRevalidate and StaleIfError apply when the origin states none.
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	// SharedSchemes keys HTTP and HTTPS requests alike (cache.schemes:
	// shared); by default they are different keys.
	SharedSchemes bool
	// HonourClientDirectives lets a client's Cache-Control (no-cache,
	// max-age, min-fresh) and Pragma: no-cache make the cache revalidate,
	// and sends them to the origin (cache.client_directives: honour); by
	// default they are ignored, as Varnish, Fastly and Cloudflare do.
	HonourClientDirectives bool
}

// QueryMode says what of the query string goes into the cache key.
type QueryMode string

// The query modes of cache.query.
const (
	QueryAll    QueryMode = "all"    // as sent
	QueryNone   QueryMode = "none"   // dropped
	QuerySorted QueryMode = "sorted" // parameters sorted
	QueryList   QueryMode = "list"   // only the listed parameters, sorted
)

// DefaultMaxObjectSize is cache.max_object_size when unset.
const DefaultMaxObjectSize = 100 << 20

// cacheSchema is the YAML layout of the cache block.
type cacheSchema struct {
	Enabled              bool               `yaml:"enabled"`
	DefaultTTL           yamlfield.Duration `yaml:"default_ttl"`
	DeceptionArmor       *bool              `yaml:"deception_armor"` // default true
	MaxObjectSize        string             `yaml:"max_object_size"`
	Query                any                `yaml:"query"` // a word or a list of parameter names
	StaleWhileRevalidate yamlfield.Duration `yaml:"stale_while_revalidate"`
	StaleIfError         yamlfield.Duration `yaml:"stale_if_error"`
	Schemes              string             `yaml:"schemes"`           // separate (default) or shared
	ClientDirectives     string             `yaml:"client_directives"` // ignore (default) or honour
}

// ParseSize reads a byte size: a whole number with an optional unit B, KiB,
// MiB, GiB or TiB (KB, MB, GB, TB are read as the binary units too).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: use a whole number with a unit, as in 512KiB, 100MiB or 2GiB", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	shift := map[string]uint{"": 0, "B": 0, "KIB": 10, "KB": 10, "K": 10, "MIB": 20, "MB": 20, "M": 20,
		"GIB": 30, "GB": 30, "G": 30, "TIB": 40, "TB": 40, "T": 40}
	sh, ok := shift[strings.ToUpper(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KiB, MiB, GiB or TiB)", s, strings.TrimSpace(s[i:]))
	}
	if n > (1<<62)>>sh {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n << sh, nil
}

func (v *validator) cache(s *cacheSchema) Cache {
	c := Cache{Enabled: s.Enabled, DefaultTTL: s.DefaultTTL.Std(), MaxObjectSize: DefaultMaxObjectSize,
		StaleWhileRevalidate: s.StaleWhileRevalidate.Std(), StaleIfError: s.StaleIfError.Std(), Query: QueryAll}
	c.NoDeceptionArmor = s.DeceptionArmor != nil && !*s.DeceptionArmor
	if s.MaxObjectSize != "" {
		n, err := ParseSize(s.MaxObjectSize)
		switch {
		case err != nil:
			v.fail(at("cache", "max_object_size"), "%v", err)
		case n < 1:
			v.fail(at("cache", "max_object_size"), "must be at least 1 byte")
		default:
			c.MaxObjectSize = n
		}
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{{"default_ttl", c.DefaultTTL}, {"stale_while_revalidate", c.StaleWhileRevalidate}, {"stale_if_error", c.StaleIfError}} {
		if d.val > 365*24*time.Hour {
			v.fail(at("cache", d.key), "%s is more than a year", d.val)
		}
	}
	c.Query, c.QueryParams = v.cacheQuery(s.Query)
	switch s.Schemes {
	case "", "separate":
	case "shared":
		c.SharedSchemes = true
	default:
		v.fail(at("cache", "schemes"), "%q: use separate (http and https are cached apart, the default) or shared (one copy for both)", s.Schemes)
	}
	switch s.ClientDirectives {
	case "", "ignore":
	case "honour", "honor":
		c.HonourClientDirectives = true
	default:
		v.fail(at("cache", "client_directives"), "%q: use ignore (the default) or honour", s.ClientDirectives)
	}
	return c
}

func (v *validator) cacheQuery(q any) (QueryMode, []string) {
	switch q := q.(type) {
	case nil:
		return QueryAll, nil
	case string:
		switch m := QueryMode(q); m {
		case QueryAll, QueryNone, QuerySorted:
			return m, nil
		}
		v.fail(at("cache", "query"), "%q is not a query mode: use all, none, sorted or a list of parameter names such as [id, page]", q)
	case []any:
		var out []string
		for i, e := range q {
			name, ok := e.(string)
			if !ok || name == "" || !httpguts.ValidHeaderFieldValue(name) || strings.ContainsAny(name, "&=") {
				v.fail(at("cache", "query", i), "%v is not a query parameter name", e)
				continue
			}
			out = append(out, name)
		}
		return QueryList, out
	default:
		v.fail(at("cache", "query"), "must be all, none, sorted or a list of parameter names")
	}
	return QueryAll, nil
}
