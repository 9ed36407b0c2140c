// Package deploy holds the systemd unit, the container image's config and
// the checks of both. No Docker engine runs on CI's machine kind, and
// hadolint is not packaged in Debian, so the Dockerfile is linted here for
// the rules that matter to Edge (CI builds the image as well when an
// engine answers).
package deploy

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/edge-cdn/edge/internal/config"
)

// instructions returns the Dockerfile's instructions of its last stage, as
// lines with continuations joined.
func instructions(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cur += strings.TrimSuffix(line, "\\") + " "
		if strings.HasSuffix(line, "\\") {
			continue
		}
		if strings.HasPrefix(cur, "FROM ") {
			out = nil // only the final stage ships
		}
		out = append(out, strings.TrimSpace(cur))
		cur = ""
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := instructions(t)
	var user, volume, chowned string
	for _, in := range ins {
		switch {
		case strings.HasPrefix(in, "USER "):
			user = strings.Fields(in)[1]
		case strings.HasPrefix(in, "VOLUME "):
			volume = in
		case strings.HasPrefix(in, "COPY ") && strings.Contains(in, "--chown="):
			chowned += in + "\n"
		}
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("the image must run as a non-root USER, got %q", user)
	}
	if !strings.Contains(volume, "/var/lib/edge") {
		t.Errorf("the store must be a VOLUME at /var/lib/edge: %q", volume)
	}
	// Docker creates a new volume from the image's directory: it must
	// already belong to the user, or the node cannot write its store.
	if !regexp.MustCompile(`--chown=(65532|nonroot)\S* .*/var/lib/edge`).MatchString(chowned) {
		t.Errorf("/var/lib/edge is not created owned by the non-root user:\n%s", chowned)
	}
	if !strings.HasPrefix(ins[0], "FROM ") || !strings.Contains(ins[0], "nonroot") {
		t.Errorf("the final stage should be a nonroot base: %s", ins[0])
	}
	df, _ := os.ReadFile("../Dockerfile")
	if !strings.Contains(string(df), "CGO_ENABLED=0") || !strings.Contains(string(df), "-X main.version=") {
		t.Error("the binary must be static (CGO_ENABLED=0) and stamped with -X main.version")
	}
	if main, _ := os.ReadFile("../main.go"); !strings.Contains(string(main), "var version = ") {
		t.Error("-X main.version needs main.version to exist")
	}
}

func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"data", "**/*.db", "**/admin.token", "**/*.pem", "**/*.key", ".git"} {
		if !strings.Contains("\n"+string(b)+"\n", "\n"+want+"\n") {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

func TestImageConfigIsValid(t *testing.T) {
	if _, errs := config.Load("edge.docker.yaml"); len(errs) > 0 {
		t.Fatalf("deploy/edge.docker.yaml: %v", errs)
	}
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("edge.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	// NotifyAccess=all: after a binary upgrade (SIGUSR2) the new process,
	// not the main one, sends MAINPID= and READY=1.
	for _, want := range []string{"Type=notify", "NotifyAccess=all", "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=edge",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict"} {
		if !strings.Contains(unit, want+"\n") {
			t.Errorf("edge.service lacks %s", want)
		}
	}
	// systemd must wait longer than the node's own shutdown grace.
	m := regexp.MustCompile(`TimeoutStopSec=(\d+)s`).FindStringSubmatch(unit)
	if m == nil || len(m[1]) < 2 || m[1] <= "30" {
		t.Errorf("TimeoutStopSec must exceed limits.shutdown_timeout (30s): %v", m)
	}
}
