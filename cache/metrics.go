package cache

import "github.com/prometheus/client_golang/prometheus"

// metrics exports the cache's counters (SPEC §11) at scrape time, from the
// same atomics Stats reads: the request path pays no label lookups.
type metrics struct {
	c                                *Cache
	requests, served, objects, bytes *prometheus.Desc
	evictions, purges, capacity      *prometheus.Desc
}

var _ prometheus.Collector = (*metrics)(nil)

func newMetrics(c *Cache) *metrics {
	return &metrics{c: c,
		requests:  prometheus.NewDesc("edge_cache_requests_total", "Requests through a caching property by result (hit, miss, stale, revalidated, bypass).", []string{"property", "result"}, nil),
		served:    prometheus.NewDesc("edge_cache_served_bytes_total", "Body bytes served from the cache.", []string{"property"}, nil),
		objects:   prometheus.NewDesc("edge_cache_objects", "Objects stored, by tier.", []string{"property", "tier"}, nil),
		bytes:     prometheus.NewDesc("edge_cache_bytes", "Bytes stored (heads and bodies), by tier.", []string{"property", "tier"}, nil),
		evictions: prometheus.NewDesc("edge_cache_evictions_total", "Objects evicted to stay within the tier's size.", []string{"property", "tier"}, nil),
		purges:    prometheus.NewDesc("edge_cache_purges_total", "Purges applied, by kind.", []string{"kind"}, nil),
		capacity:  prometheus.NewDesc("edge_cache_capacity_bytes", "Configured size of each tier.", []string{"tier"}, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.requests, m.served, m.objects, m.bytes, m.evictions, m.purges, m.capacity} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	m.c.stats.m.Range(func(k, v any) bool {
		name, ps := k.(string), v.(*propStats)
		counter(m.requests, ps.hits.Load(), name, "hit")
		counter(m.requests, ps.misses.Load(), name, "miss")
		counter(m.requests, ps.stale.Load(), name, "stale")
		counter(m.requests, ps.revalidated.Load(), name, "revalidated")
		counter(m.requests, ps.bypass.Load(), name, "bypass")
		counter(m.served, ps.servedBytes.Load(), name)
		for t := range numTiers {
			gauge(m.objects, ps.objects[t].Load(), name, tierNames[t])
			gauge(m.bytes, ps.bytes[t].Load(), name, tierNames[t])
			counter(m.evictions, ps.evictions[t].Load(), name, tierNames[t])
		}
		return true
	})
	for i, n := range purgeKindNames {
		counter(m.purges, m.c.stats.purges[i].Load(), n)
	}
	gauge(m.capacity, m.c.cfg.MemorySize, "memory")
	gauge(m.capacity, m.c.cfg.DiskSize, "disk")
}
