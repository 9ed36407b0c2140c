package cli

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// TestUpgradeHandsOverHTTP3: an upgrade hands the HTTP/3 UDP socket to the
// new process, which answers over QUIC on the same port, and the old one
// stops reading it and exits (two readers of one UDP socket would take
// each other's packets).
func TestUpgradeHandsOverHTTP3(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	u := startUpgradable(t, o.URL, "limits: {shutdown_timeout: 5s}\n")
	get := func(what string) {
		t.Helper()
		tr := &http3.Transport{TLSClientConfig: &tls.Config{ServerName: "a.example", InsecureSkipVerify: true},
			QUICConfig: &quic.Config{HandshakeIdleTimeout: 5 * time.Second}}
		defer tr.Close()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		req, _ := http.NewRequest("GET", "https://"+u.addrs.HTTPS+"/", nil) // auto: the HTTPS port, over UDP
		req.Host = "a.example"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: HTTP/3: %v\n%s", what, err, u.log())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/3.0" {
			t.Fatalf("%s: %d %s %q", what, resp.StatusCode, resp.Proto, body)
		}
	}
	get("before the upgrade")
	old := u.pid
	installBinary(t, u.bin, 2)
	if out, err := u.upgrade(); err != nil {
		t.Fatalf("upgrade: %v\n%s\n%s", err, out, u.log())
	}
	pid := u.notify.waitMainPID(t, 20*time.Second, u.log)
	if pid == 0 || pid == old {
		t.Fatalf("MAINPID=%d (old %d)", pid, old)
	}
	u.pid = pid
	testutil.WaitFor(t, "the old process to exit", func() bool { return processGone(old) }, u.log)
	get(fmt.Sprintf("after the upgrade (pid %d)", pid))
}
