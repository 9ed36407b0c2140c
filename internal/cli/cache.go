package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/cache"
)

// cmdCachePurge is `edge cache purge`.
func cmdCachePurge(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	prop := c.fs.String("property", "", "only this property's objects")
	var urls, prefixes, tags strList
	c.fs.Var(&urls, "url", "absolute URL to purge (repeatable)")
	c.fs.Var(&prefixes, "prefix", "absolute URL prefix to purge (repeatable)")
	c.fs.Var(&tags, "tag", "Surrogate-Key / Cache-Tag to purge (repeatable)")
	all := c.fs.Bool("all", false, "every object (of --property, when given)")
	soft := c.fs.Bool("soft", false, "mark stale (served stale while revalidated) instead of removing")
	return c.run(args, 0, "flags only", func(cl *apiClient) error {
		if !*all && *prop == "" && len(urls)+len(prefixes)+len(tags) == 0 {
			return usageError{"edge cache purge needs --url, --prefix, --tag, --property or --all"}
		}
		body := admin.PurgeRequest{Property: *prop, URLs: urls, Prefixes: prefixes, Tags: tags, All: *all, Soft: *soft}
		var res struct {
			cache.PurgeResult
			Note string `json:"note,omitempty"` // in a fleet: the property is not served here
		}
		if err := cl.do(ctx, "POST", "/api/v1/cache/purge", body, &res, nil); err != nil {
			return err
		}
		return c.print(res, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "purged %d objects\n", res.Purged)
			if res.Note != "" {
				fmt.Fprintln(w, res.Note)
			}
		})
	})
}

// cmdCacheStats is `edge cache stats`.
func cmdCacheStats(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	return c.run(args, 0, "no arguments", func(cl *apiClient) error {
		var s cache.Stats
		if err := cl.do(ctx, "GET", "/api/v1/cache", nil, &s, nil); err != nil {
			return err
		}
		return c.print(s, func(w *tabwriter.Writer) { cacheTable(w, s) })
	})
}

func cacheTable(w io.Writer, s cache.Stats) {
	fmt.Fprintf(w, "memory:\t%d objects\t%s of %s\t%d evictions\n", s.Memory.Objects, bytesOf(s.Memory.Bytes), bytesOf(s.MemorySize), s.Memory.Evictions)
	fmt.Fprintf(w, "disk:\t%d objects\t%s of %s\t%d evictions\n", s.Disk.Objects, bytesOf(s.Disk.Bytes), bytesOf(s.DiskSize), s.Disk.Evictions)
	fmt.Fprintln(w, "PROPERTY\tHITS\tMISSES\tSTALE\tREVALIDATED\tBYPASS\tHIT_RATIO\tOBJECTS\tBYTES")
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := s.Properties[n]
		ratio := "-"
		if total := p.Hits + p.Misses + p.Stale + p.Revalidated; total > 0 {
			ratio = fmt.Sprintf("%.1f%%", 100*float64(p.Hits+p.Stale)/float64(total))
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", n, p.Hits, p.Misses, p.Stale, p.Revalidated, p.Bypass, ratio,
			p.Memory.Objects+p.Disk.Objects, bytesOf(p.Memory.Bytes+p.Disk.Bytes))
	}
}

// bytesOf writes n in binary units.
func bytesOf(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
