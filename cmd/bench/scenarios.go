package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// cacheHost is the hostname of the bench's cached property.
const cacheHost = "cache.bench"

// scenario is one measurement: the same path direct and through the edge.
type scenario struct {
	name string
	path string
	mode string // h1, h1tls, h2, h3, handshake
	host string // Host (and :authority) sent to the edge; "" is localhost
}

var scenarioTable = []scenario{
	{"h1-small", "/small", "h1", ""},
	{"h1-100k", "/large", "h1", ""},
	{"https-small", "/small", "h1tls", ""},
	{"https-100k", "/large", "h1tls", ""},
	{"h2-small", "/small", "h2", ""},
	{"h2-100k", "/large", "h2", ""},
	// HTTP/3 (issue 19): one QUIC connection carrying -conns streams, as
	// h2 does over one TCP connection; the origin answers HTTP/3 too for
	// the direct run.
	{"h3-small", "/small", "h3", ""},
	{"h3-100k", "/large", "h3", ""},
	{"tls-handshake", "/small", "handshake", ""},
	// Cache hits (issue 9): the origin sends Cache-Control: max-age, the
	// edge's property has cache.enabled, and one request fills the cache
	// before the measured run.
	{"cache-h1-small", "/c/small", "h1", cacheHost},
	{"cache-h1-100k", "/c/large", "h1", cacheHost},
	{"cache-https-small", "/c/small", "h1tls", cacheHost},
	{"cache-https-100k", "/c/large", "h1tls", cacheHost},
	{"cache-h2-small", "/c/small", "h2", cacheHost},
	{"cache-h2-100k", "/c/large", "h2", cacheHost},
}

const defaultScenarios = "h1-small,h1-100k,https-small,https-100k,h2-small,h2-100k,h3-small,h3-100k,tls-handshake," +
	"cache-h1-small,cache-h1-100k,cache-https-small,cache-https-100k,cache-h2-small,cache-h2-100k"

func scenarioByName(name string) (scenario, bool) {
	for _, s := range scenarioTable {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

func allScenarios() string {
	names := make([]string, 0, len(scenarioTable)+1)
	for _, s := range scenarioTable {
		names = append(names, s.name)
	}
	return strings.Join(append(names, "cache-scan", "cache-memory"), ",")
}

// edgeConfigExtra is the part of the edge's configuration the flags set.
func edgeConfigExtra() string {
	var b strings.Builder
	if cacheMemory != "" {
		fmt.Fprintf(&b, "cache: {memory_size: %s}\n", cacheMemory)
	}
	if memoryLimit != "" {
		fmt.Fprintf(&b, "limits: {memory_limit: %s}\n", memoryLimit)
	}
	return b.String()
}

// warm fetches url twice with Host host (TLS unverified), so that a cache
// scenario measures hits; it fails unless both answers are 200 and the
// second is a hit (Cache-Status).
func warm(url, host string) error { return warmCheck(url, host, edgeHit) }

// hitCheck says whether a response's header shows a cache hit, and what
// it showed.
type hitCheck func(http.Header) (bool, string)

// edgeHit reads the edge's Cache-Status.
func edgeHit(h http.Header) (bool, string) {
	v := h.Get("Cache-Status")
	return strings.Contains(v, "hit"), fmt.Sprintf("Cache-Status %q", v)
}

// nginxHit reads $upstream_cache_status, which the bench's nginx.conf
// sends as X-Cache-Status.
func nginxHit(h http.Header) (bool, string) {
	v := h.Get("X-Cache-Status")
	return v == "HIT", fmt.Sprintf("X-Cache-Status %q", v)
}

// warmCheck is warm with the hit read by hit.
func warmCheck(url, host string, hit hitCheck) error {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	var last http.Header
	for range 2 {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("warm-up: status %d", resp.StatusCode)
		}
		last = resp.Header
	}
	if ok, saw := hit(last); !ok {
		return fmt.Errorf("warm-up: the second request was no hit (%s)", saw)
	}
	return nil
}

// loadAvg is the 1-minute load average, as uptime shows it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// resetPeak resets the process's VmHWM to its current RSS (Linux 4.0+),
// so that the next VmHWM read is the peak of one scenario.
func resetPeak(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
