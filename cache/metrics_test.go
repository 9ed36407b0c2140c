package cache

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Config{Registerer: reg}, fixed("x", "Cache-Control", "max-age=60"))
	e.get("/m")
	e.settle()
	e.get("/m")
	e.c.Purge(Purge{All: true})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if m.Counter != nil {
				got[key] = m.Counter.GetValue()
			} else if m.Gauge != nil {
				got[key] = m.Gauge.GetValue()
			}
		}
	}
	for k, want := range map[string]float64{
		"edge_cache_requests_total,property=site,result=hit":  1,
		"edge_cache_requests_total,property=site,result=miss": 1,
		"edge_cache_served_bytes_total,property=site":         1,
		"edge_cache_purges_total,kind=all":                    1,
		"edge_cache_capacity_bytes,tier=memory":               DefaultMemorySize,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if _, ok := got["edge_cache_objects,property=site,tier=memory"]; !ok {
		t.Error("no edge_cache_objects")
	}
}
