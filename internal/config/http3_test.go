package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenHTTP3: listen.http3 defaults to auto (the HTTPS address over
// UDP), "" turns it off, an address is kept, and anything else is refused
// with the key's line.
func TestListenHTTP3(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edge.yaml")
	for _, tc := range []struct{ extra, want, err string }{
		{"", HTTP3Auto, ""},
		{`, http3: ""`, "", ""},
		{`, http3: "127.0.0.1:4433"`, "127.0.0.1:4433", ""},
		{`, http3: "on"`, "", `edge.yaml:2: listen.http3: "on" is not host:port`},
		{`, http3: ":99999"`, "", `listen.http3: ":99999": port must be a number`},
	} {
		writeConfig(t, file, strings.Replace(baseConfig, `admin: "127.0.0.1:0"}`, `admin: "127.0.0.1:0"`+tc.extra+"}", 1))
		cfg, errs := Load(file)
		if tc.err != "" {
			if got := fmt.Sprint(errs); !strings.Contains(got, tc.err) {
				t.Errorf("%q: errors %v, want %q", tc.extra, got, tc.err)
			}
			continue
		}
		if len(errs) > 0 {
			t.Errorf("%q: %v", tc.extra, errs)
			continue
		}
		if cfg.Listen.HTTP3 != tc.want {
			t.Errorf("%q: listen.http3 = %q, want %q", tc.extra, cfg.Listen.HTTP3, tc.want)
		}
	}
}

// TestListenHTTP1Server: listen.http1_server defaults to edge, takes go,
// and refuses anything else with the key's line.
func TestListenHTTP1Server(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edge.yaml")
	for _, tc := range []struct{ extra, want, err string }{
		{"", HTTP1ServerEdge, ""},
		{`, http1_server: go`, HTTP1ServerGo, ""},
		{`, http1_server: edge`, HTTP1ServerEdge, ""},
		{`, http1_server: nginx`, "", `edge.yaml:2: listen.http1_server: "nginx" is not "edge"`},
	} {
		writeConfig(t, file, strings.Replace(baseConfig, `admin: "127.0.0.1:0"}`, `admin: "127.0.0.1:0"`+tc.extra+"}", 1))
		cfg, errs := Load(file)
		if tc.err != "" {
			if got := fmt.Sprint(errs); !strings.Contains(got, tc.err) {
				t.Errorf("%q: errors %v, want %q", tc.extra, got, tc.err)
			}
			continue
		}
		if len(errs) > 0 {
			t.Errorf("%q: %v", tc.extra, errs)
			continue
		}
		if cfg.Listen.HTTP1Server != tc.want {
			t.Errorf("%q: listen.http1_server = %q, want %q", tc.extra, cfg.Listen.HTTP1Server, tc.want)
		}
	}
}
