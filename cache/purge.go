package cache

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// Purge is one purge request (SPEC §11, POST /api/v1/cache/purge). It is
// JSON as the API takes it, so a fleet can pass it between nodes as is.
// Applying one twice does no more than applying it once: it affects only
// objects whose request to the origin was sent before Time, so a purge
// replayed by a node that was down spares what was fetched after it.
type Purge struct {
	// ID names the purge for a fleet's bookkeeping; the cache ignores it.
	ID       string   `json:"id,omitempty"`
	Property string   `json:"property,omitempty"` // "" with URLs, prefixes or tags: every property
	URLs     []string `json:"urls,omitempty"`     // absolute: https://host/path?query
	Prefixes []string `json:"prefixes,omitempty"` // absolute URL prefixes
	Tags     []string `json:"tags,omitempty"`     // Surrogate-Key / Cache-Tag values
	All      bool     `json:"all,omitempty"`      // everything (of Property, when set)
	// Soft marks objects stale (served stale while revalidated) instead of
	// removing them. On the disk tier a soft purge removes.
	Soft bool `json:"soft,omitempty"`
	// Time is when the purge was made; zero means now.
	Time time.Time `json:"time,omitzero"`
}

// PurgeResult says how many objects a purge affected.
type PurgeResult struct {
	Purged int `json:"purged"`
}

const (
	purgeURL = iota
	purgePrefix
	purgeTag
	purgeProperty
	purgeAll
	numPurgeKinds
)

var purgeKindNames = [numPurgeKinds]string{"url", "prefix", "tag", "property", "all"}

// ErrBadPurge wraps every problem of a purge request.
var ErrBadPurge = errors.New("bad purge request")

// Validate checks a purge request before it is applied or sent to a fleet.
func (p *Purge) Validate() error {
	if !p.All && len(p.URLs) == 0 && len(p.Prefixes) == 0 && len(p.Tags) == 0 && p.Property == "" {
		return fmt.Errorf("%w: give urls, prefixes, tags, a property or all", ErrBadPurge)
	}
	if p.Property != "" && !property.NamePattern.MatchString(p.Property) {
		return fmt.Errorf("%w: property %q is not a property name", ErrBadPurge, p.Property)
	}
	for _, list := range [][]string{p.URLs, p.Prefixes} {
		for _, s := range list {
			if _, err := parsePurgeURL(s); err != nil {
				return err
			}
		}
	}
	for _, t := range p.Tags {
		if t == "" || strings.ContainsAny(t, " ,\t") {
			return fmt.Errorf("%w: tag %q must be one word", ErrBadPurge, t)
		}
	}
	return nil
}

func parsePurgeURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an absolute http(s) URL", ErrBadPurge, s)
	}
	return u, nil
}

// Purge applies p to every tier and reports how many objects it affected.
func (c *Cache) Purge(p Purge) (PurgeResult, error) {
	if err := p.Validate(); err != nil {
		return PurgeResult{}, err
	}
	// A purge spares what was fetched after it was made; a time in the
	// future (a node's fast clock, an API client's) counts as now, or it
	// would refuse every matching fill until then.
	before := c.now()
	if !p.Time.IsZero() && p.Time.Before(before) {
		before = p.Time
	}
	bn := before.UnixNano()
	var match func(key string, tags []string) bool
	kind := purgeAll
	switch {
	case len(p.URLs) > 0 || len(p.Prefixes) > 0 || len(p.Tags) > 0:
		match = c.selector(p)
		kind = purgeTag
		if len(p.URLs) > 0 {
			kind = purgeURL
		} else if len(p.Prefixes) > 0 {
			kind = purgePrefix
		}
	case p.Property != "":
		prefix := p.Property + sepField
		match = func(key string, _ []string) bool { return strings.HasPrefix(key, prefix) }
		kind = purgeProperty
	default:
		match = func(string, []string) bool { return true }
	}
	seq := c.fence.begin(bn, match)
	defer c.fence.end(seq)
	c.detachFills(match)
	var n int
	if kind == purgeURL && len(p.Prefixes) == 0 && len(p.Tags) == 0 && !p.Soft && c.knows(p.Property) {
		n = c.purgeURLs(p, bn)
	} else {
		n = c.purgeMatching(match, bn, p.Soft)
	}
	c.stats.purges[kind].Add(1)
	if err := c.journalPurged(); err != nil {
		return PurgeResult{Purged: n}, fmt.Errorf("cache: purged %d objects, but the disk tier could not record it (a crash before its files are unlinked would bring them back): %w", n, err)
	}
	return PurgeResult{Purged: n}, nil
}

// detachFills makes the fills in flight whose key match selects take no
// new readers: a request that starts after the purge goes to the origin
// rather than follow a response asked for before it (which the fence keeps
// from being stored). A fill's tags are not known before its head, so a tag
// purge detaches none.
func (c *Cache) detachFills(match func(key string, tags []string) bool) {
	c.fillsMu.Lock()
	defer c.fillsMu.Unlock()
	for k := range c.fills {
		if match(k, nil) {
			delete(c.fills, k)
		}
	}
}

// journalPurged makes the disk tier's removals of the purge in progress
// durable (fence.serial is held).
func (c *Cache) journalPurged() error {
	names := c.fence.removed
	c.fence.removed = nil
	if c.disk == nil || len(names) == 0 {
		return nil
	}
	return c.disk.journal.add(names)
}

// purgeKey removes key from the tiers, the disk first, when it was stored
// before bn; it reports whether it was found (fence.serial is held).
func (c *Cache) purgeKey(key string, bn int64) bool {
	found := false
	if c.disk != nil {
		if name := c.disk.removeOlder(key, bn); name != "" {
			c.fence.removed = append(c.fence.removed, name)
			found = true
		}
	}
	if o := c.mem.peek(key); o != nil && contentTime(o) < bn {
		c.mem.remove(key)
		found = true
	}
	return found
}

// selector matches keys by URL, prefix or tag, within p.Property if set.
// URLs and prefixes match every scheme's copy, and the copies keyed by
// override headers, whatever the scheme of the purge URL.
func (c *Cache) selector(p Purge) func(key string, tags []string) bool {
	var exact, prefixes []string // host \x00 path?query, as hostPathOf gives
	for _, s := range p.URLs {
		u, _ := parsePurgeURL(s)
		exact = append(exact, c.hostPath(p.Property, u)...)
	}
	for _, s := range p.Prefixes {
		u, _ := parsePurgeURL(s)
		prefixes = append(prefixes, string(appendHost(nil, u.Host))+sepField+u.EscapedPath())
	}
	return func(key string, tags []string) bool {
		if p.Property != "" && propertyOf(key) != p.Property {
			return false
		}
		hp := hostPathOf(key)
		if slices.Contains(exact, hp) {
			return true
		}
		for _, pre := range prefixes {
			if strings.HasPrefix(hp, pre) {
				return true
			}
		}
		for _, t := range p.Tags {
			if slices.Contains(tags, t) {
				return true
			}
		}
		return false
	}
}

// hostPath gives the host \x00 path?query part of the key of URL u, under
// each query mode in use by the named property (or by any property).
func (c *Cache) hostPath(name string, u *url.URL) []string {
	var out []string
	add := func(p *property.Property) {
		k := hostPathOf(string(appendURLKey(nil, p, schemeShared, u.Host, u)))
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	found := false
	c.props.Range(func(k, v any) bool {
		if name == "" || k.(string) == name {
			add(v.(*property.Property))
			found = true
		}
		return true
	})
	if !found {
		add(&property.Property{Name: name})
	}
	return out
}

// purgeMatching removes (or, soft, marks stale) every object fetched before
// bn whose key and tags match; it returns how many it found.
func (c *Cache) purgeMatching(match func(key string, tags []string) bool, bn int64, soft bool) int {
	seen := map[string]bool{}
	for _, t := range c.tiers() {
		var keys []string
		t.each(func(key string, tags []string, stored int64) bool {
			if stored < bn && match(key, tags) {
				keys = append(keys, key)
			}
			return true
		})
		for _, k := range keys {
			seen[k] = true
			switch {
			case t == tier(c.disk):
				// A soft purge removes from disk too: its copy has no
				// stale mark.
				if name := c.disk.removeOlder(k, bn); name != "" {
					c.fence.removed = append(c.fence.removed, name)
				}
			case soft:
				if o := c.mem.peek(k); o != nil {
					o.softPurged.Store(true)
				}
			default:
				t.remove(k)
			}
		}
	}
	return len(seen)
}

// tiers lists the disk tier first: a purge that cleared memory first would
// leave a window where a read finds the object on disk.
func (c *Cache) tiers() []tier {
	if c.disk != nil {
		return []tier{c.disk, c.mem}
	}
	return []tier{c.mem}
}

// DropProperty removes every object of the named property (a property was
// removed from the node) and forgets its figures and metric labels.
func (c *Cache) DropProperty(name string) int {
	prefix := name + sepField
	match := func(key string, _ []string) bool { return strings.HasPrefix(key, prefix) }
	seq := c.fence.begin(c.now().UnixNano(), match) // fills in flight are not stored
	defer c.fence.end(seq)
	c.detachFills(match)
	n := c.purgeMatching(match, int64(1)<<62, false)
	if err := c.journalPurged(); err != nil {
		c.problem("disk tier: cannot record a dropped property's removals", zap.Error(err))
	}
	c.props.Delete(name)
	c.stats.forget(name)
	return n
}

// purgeURLs removes the objects (or variant markers, which makes their
// variants unreachable) at the URLs' keys, under every scheme, without a
// scan.
func (c *Cache) purgeURLs(p Purge, bn int64) int {
	n := 0
	for _, s := range p.URLs {
		u, _ := parsePurgeURL(s)
		c.props.Range(func(k, v any) bool {
			if p.Property != "" && k.(string) != p.Property {
				return true
			}
			for _, key := range urlKeys(v.(*property.Property), u.Host, u) {
				if c.purgeKey(key, bn) {
					n++
				}
			}
			return true
		})
	}
	return n
}

// knows tells whether the settings of the named property (or of any, for
// "") are known, so that a URL's keys can be built without a scan: its
// query settings are known, and it keys no override headers (whose copies
// only a scan finds).
func (c *Cache) knows(name string) bool {
	known := false
	c.props.Range(func(k, v any) bool {
		if name != "" && k.(string) != name {
			return true
		}
		if len(v.(*property.Property).Headers.AllowOverrides) > 0 {
			known = false
			return false
		}
		known = true
		return true
	})
	return known
}

// SetProperties tells the cache the properties of the node, so that purges
// applied before they serve (a fleet replay at start) build their keys with
// the right query settings. Call it at start and on every reload; removed
// properties are dropped with DropProperty.
func (c *Cache) SetProperties(props []*property.Property) {
	for _, p := range props {
		if p != nil && p.Cache.Enabled {
			c.props.Store(p.Name, p)
		}
	}
}
