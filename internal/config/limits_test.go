package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestHeadLimitsChecked: a max_header_bytes too small to leave Go's server
// anything once its read buffer is taken off is refused, as is a URI limit
// outside 1 KiB..max_header_bytes; the defaults load.
func TestHeadLimitsChecked(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edge.yaml")
	writeConfig(t, file, baseConfig)
	cfg, errs := Load(file)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if cfg.Limits.MaxHeaderBytes != 64<<10 || cfg.Limits.MaxURIBytes != 8<<10 {
		t.Errorf("defaults: %+v", cfg.Limits)
	}
	for _, tc := range []struct{ limits, want string }{
		{"{max_header_bytes: 4096}", "edge.yaml:6: limits.max_header_bytes: 4096 must be between 8192 and 1048576"},
		{"{max_header_bytes: 8191}", "limits.max_header_bytes: 8191 must be between 8192"},
		{"{max_uri_bytes: 100}", "edge.yaml:6: limits.max_uri_bytes: 100 must be between 1024 and limits.max_header_bytes (65536)"},
		{"{max_header_bytes: 8192, max_uri_bytes: 16384}", "limits.max_uri_bytes: 16384 must be between 1024 and limits.max_header_bytes (8192)"},
	} {
		writeConfig(t, file, baseConfig+"limits: "+tc.limits+"\n")
		_, errs := Load(file)
		if got := fmt.Sprint(errs); !strings.Contains(got, tc.want) {
			t.Errorf("%s: errors %v, want %q", tc.limits, got, tc.want)
		}
	}
	writeConfig(t, file, baseConfig+"limits: {max_header_bytes: 8192, max_uri_bytes: 2048}\n")
	if _, errs := Load(file); len(errs) > 0 {
		t.Errorf("smallest limits refused: %v", errs)
	}
}

// TestMemoryLimit: auto is AutoMemoryLimit, off is 0,
// a size is read, and one that leaves the cache under 64 MiB of room is
// refused with the key's line; EDGE_LIMITS_MEMORY_LIMIT sets it too.
func TestMemoryLimit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edge.yaml")
	for _, tc := range []struct {
		extra string
		want  int64
	}{
		{"", AutoMemoryLimit},
		{"cache: {memory_size: 64MiB}\nlimits: {memory_limit: auto}\n", AutoMemoryLimit},
		{"limits: {memory_limit: off}\n", 0},
		{"limits: {memory_limit: 1GiB}\n", 1 << 30},
		{"cache: {memory_size: 16MiB}\nlimits: {memory_limit: 80MiB}\n", 80 << 20},
	} {
		writeConfig(t, file, baseConfig+tc.extra)
		cfg, errs := Load(file)
		if len(errs) > 0 {
			t.Errorf("%q: %v", tc.extra, errs)
			continue
		}
		if cfg.Limits.MemoryLimitBytes != tc.want {
			t.Errorf("%q: limit %d, want %d", tc.extra, cfg.Limits.MemoryLimitBytes, tc.want)
		}
	}
	for _, tc := range []struct{ extra, want string }{
		{"limits:\n  memory_limit: lots\n", "edge.yaml:7: limits.memory_limit: "},
		{"limits:\n  memory_limit: 300MiB\n", "edge.yaml:7: limits.memory_limit: 300MiB is less than cache.memory_size + 64MiB (320MiB)"},
	} {
		writeConfig(t, file, baseConfig+tc.extra)
		_, errs := Load(file)
		if got := fmt.Sprint(errs); !strings.Contains(got, tc.want) {
			t.Errorf("%q: errors %v, want %q", tc.extra, got, tc.want)
		}
	}
	writeConfig(t, file, baseConfig)
	t.Setenv("EDGE_LIMITS_MEMORY_LIMIT", "2GiB")
	if cfg, errs := Load(file); len(errs) > 0 || cfg.Limits.MemoryLimitBytes != 2<<30 {
		t.Errorf("from the environment: %v %v", cfg.Limits.MemoryLimitBytes, errs)
	}
}
