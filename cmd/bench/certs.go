package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/store"
)

// runCerts measures the edge with n certificates in its store against one:
// time to ready, memory per certificate beyond its encoded size, and the
// CPU of a full TLS handshake.
func runCerts(n int, d time.Duration, conns int, serverCPU func(...string) []string, edgeBin string) error {
	base, err := measureCerts(1, d, conns, serverCPU, edgeBin)
	if err != nil {
		return err
	}
	big, err := measureCerts(n, d, conns, serverCPU, edgeBin)
	if err != nil {
		return err
	}
	perCert := float64(big.rssKB-base.rssKB) * 1024 / float64(n-1)
	encoded := float64(big.dbBytes-base.dbBytes) / float64(n-1)
	fmt.Printf("\nEdge with many certificates (ECDSA P-256), handshakes by %d connections for %s\n\n", conns, d)
	fmt.Printf("%-22s %12s %12s\n", "", "1 cert", fmt.Sprintf("%d certs", n))
	fmt.Printf("%-22s %12s %12s\n", "ready after", base.ready.Round(time.Millisecond), big.ready.Round(time.Millisecond))
	fmt.Printf("%-22s %12s %12s\n", "settled after", base.settled.Round(time.Millisecond), big.settled.Round(time.Millisecond))
	fmt.Printf("%-22s %11.1fM %11.1fM\n", "RSS when settled", float64(base.rssKB)/1024, float64(big.rssKB)/1024)
	fmt.Printf("%-22s %12s %12s\n", "CPU per handshake", base.cpuPerHS.Round(time.Microsecond), big.cpuPerHS.Round(time.Microsecond))
	fmt.Printf("\nmemory per certificate: %.0f B; encoded in the store: %.0f B; beyond it: %.0f B\n", perCert, encoded, perCert-encoded)
	return nil
}

// certsMeasure is one run of runCerts: an edge with count certificates.
type certsMeasure struct {
	ready    time.Duration
	settled  time.Duration
	rssKB    int
	dbBytes  int64
	cpuPerHS time.Duration
	hs       int
}

// measureCerts starts an edge whose store holds count certificates and
// measures its start, its settled memory and its handshakes.
func measureCerts(count int, d time.Duration, conns int, serverCPU func(...string) []string, edgeBin string) (certsMeasure, error) {
	var m certsMeasure
	dir, err := os.MkdirTemp("", "edge-certs-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("writing %d certificates …\n", count)
	if err := writeCertificates(filepath.Join(dir, "data", "edge.db"), count); err != nil {
		return m, err
	}
	st, _ := os.Stat(filepath.Join(dir, "data", "edge.db"))
	m.dbBytes = st.Size()
	os.MkdirAll(filepath.Join(dir, "props"), 0o755)
	os.WriteFile(filepath.Join(dir, "props", "p.yaml"), []byte("hostnames: [localhost]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: c0}\n"), 0o644)
	eHTTPS, eAdmin := freePort(), freePort()
	os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(fmt.Sprintf(`node: {name: bench}
listen: {http: "127.0.0.1:%d", https: ":%d", admin: "127.0.0.1:%d"}
data_dir: ./data
properties_dir: ./props
log: {level: warn, format: json, access: false}
renewal: {check_interval: 1h}
`, freePort(), eHTTPS, eAdmin)), 0o644)
	args := serverCPU(edgeBin, "serve", "--config", filepath.Join(dir, "edge.yaml"))
	cmd := exec.Command(args[0], args[1:]...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return m, err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if err := waitReady(eAdmin, 2*time.Minute); err != nil {
		return m, err
	}
	m.ready = time.Since(start)
	// Let the background work of a start (warming certificates up, the
	// renewal loop's first scan) finish: measure a settled node.
	waitSettled(cmd.Process.Pid, time.Minute)
	m.settled = time.Since(start)
	m.rssKB = rssKB(cmd.Process.Pid)
	wrk, err := exec.LookPath("wrk")
	url := fmt.Sprintf("https://localhost:%d/", eHTTPS)
	before := procCPU(cmd.Process.Pid)
	var r result
	if err == nil {
		r, err = runWrk(wrk, url, "", d, conns, true)
	}
	if err != nil {
		r = generate(url, "", "handshake", d, conns)
	}
	m.hs = r.requests + r.errors // the origin is down: every answer is a 502, after a full handshake
	if m.hs > 0 {
		m.cpuPerHS = (procCPU(cmd.Process.Pid) - before) / time.Duration(m.hs)
	}
	return m, nil
}

// waitReady polls the edge's /readyz until it answers 200, for at most limit.
func waitReady(adminPort int, limit time.Duration) error {
	start := time.Now()
	c := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", adminPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Since(start) > limit {
			return fmt.Errorf("not ready after %s", limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSettled waits, for at most limit, until the process uses at most
// 10 ms of CPU in 250 ms.
func waitSettled(pid int, limit time.Duration) {
	settle := time.Now()
	for prev := procCPU(pid); time.Since(settle) < limit; {
		time.Sleep(250 * time.Millisecond)
		cur := procCPU(pid)
		if cur-prev <= 10*time.Millisecond {
			return
		}
		prev = cur
	}
}

func rssKB(pid int) int { return rssKBKey(pid, "VmRSS") }

// rssKBKey reads a kB field of /proc/<pid>/status (VmRSS, VmHWM).
func rssKBKey(pid int, key string) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return kb
		}
	}
	return 0
}

// writeCertificates stores n distinct self-signed ECDSA P-256 certificates
// as the node stores them, in batches.
func writeCertificates(path string, n int) error {
	st, err := store.OpenBolt(path)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	for i := 0; i < n; i += 1000 {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			for j := i; j < min(i+1000, n); j++ {
				host := fmt.Sprintf("h%d.example", j)
				if j == 0 {
					host = "localhost"
				}
				v, err := cert.SelfSigned([]string{host}, 90*24*time.Hour, now)
				if err != nil {
					return err
				}
				v.Version = 1
				rec := cert.Certificate{ID: fmt.Sprintf("crt_%08d", j), Name: fmt.Sprintf("c%d", j), Type: cert.TypeServer,
					AutoRenew: cert.AutoRenewNone, Status: cert.StatusActive, Version: 1, SubjectNames: v.SubjectNames,
					Issuer: v.Issuer, NotBefore: v.NotBefore, NotAfter: v.NotAfter, Source: v.Source, CreatedAt: now, UpdatedAt: now}
				if err := cert.Put(tx, &rec, &v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
