package proxy

import (
	"net"
	"testing"

	"github.com/edge-cdn/edge/cache"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestProxyErrorNamesCachingProperty: on a property with cache.enabled the
// origin request is a cache fill on a request state of its own, and its
// "proxy error" line had property "" (issue 18). It names the property.
func TestProxyErrorNamesCachingProperty(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens: every origin request fails
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	core, logs := observer.New(zapcore.WarnLevel)
	e := newEdge(t, Config{Logger: zap.New(core), Cache: c}, map[string]string{
		"cached.yaml": prop("c.example", "{url: http://"+dead+"}", "cache: {enabled: true}"),
		"plain.yaml":  prop("p.example", "{url: http://"+dead+"}"),
	})
	for host, name := range map[string]string{"c.example": "cached", "p.example": "plain"} {
		if r := e.do("GET", host, "/x", nil); r.StatusCode != 502 {
			t.Fatalf("%s: status %d, want 502", host, r.StatusCode)
		}
		found := false
		for _, ent := range logs.FilterMessage("proxy error").AllUntimed() {
			if ent.ContextMap()["property"] == name {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no proxy error line names property %q: %v", host, name, logs.FilterMessage("proxy error").AllUntimed())
		}
	}
}
