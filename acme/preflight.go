package acme

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Preflight checks, before an order is placed, that every name reaches this
// edge: the name resolves, and an HTTP request through it on the challenge
// port gets back a random probe token that only this edge (or a node
// sharing its store) can answer. A Failure costs no CA order.
type Preflight struct {
	Resolver     string // DNS server host:port; "" uses the system's
	Port         int    // the port the CA connects to (acme.challenge_port)
	EdgeHostname string
	Timeout      time.Duration // per name; 0: 10s
}

// PreflightError lists the names that do not reach this edge, and why.
type PreflightError struct {
	Failures     map[string]string
	EdgeHostname string
	Port         int
}

func (e *PreflightError) Error() string {
	names := make([]string, 0, len(e.Failures))
	for n := range e.Failures {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " (" + e.Failures[n] + ")"
	}
	target := "this edge"
	if e.EdgeHostname != "" {
		target = e.EdgeHostname
	}
	return fmt.Sprintf("verify that these hostnames point to %s and that port %d reaches it: %s; no certificate was ordered",
		target, e.Port, strings.Join(parts, ", "))
}

func (p *Preflight) resolver() *net.Resolver {
	if p.Resolver == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, p.Resolver)
	}}
}

// Check probes every name through a, concurrently.
func (p *Preflight) Check(ctx context.Context, a *Client, names []string) error {
	token, answer, err := a.newProbe(ctx)
	if err != nil {
		return fmt.Errorf("preflight: storing the probe token: %w", err)
	}
	defer a.dropProbe(ctx, token)
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var mu sync.Mutex
	failures := map[string]string{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if why := p.probe(cctx, name, token, answer); why != "" {
				mu.Lock()
				failures[name] = why
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		return &PreflightError{Failures: failures, EdgeHostname: p.EdgeHostname, Port: p.Port}
	}
	return nil
}

// probe returns "" when name reaches this edge, else why not.
func (p *Preflight) probe(ctx context.Context, name, token, answer string) string {
	addrs, err := p.resolver().LookupHost(ctx, name)
	if err != nil || len(addrs) == 0 {
		return "no DNS record"
	}
	port := strconv.Itoa(p.Port)
	client := &http.Client{
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				var last error
				for _, a := range addrs {
					c, err := d.DialContext(ctx, network, net.JoinHostPort(a, port))
					if err == nil {
						return c, nil
					}
					last = err
				}
				return nil, last
			},
			DisableKeepAlives: true,
		},
		// The CA follows redirects; the probe does not need to: the edge
		// answers challenge paths on plain HTTP itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	url := "http://" + net.JoinHostPort(name, port) + "/.well-known/acme-challenge/" + token
	if p.Port == 80 {
		url = "http://" + name + "/.well-known/acme-challenge/" + token
	}
	// Another node of a fleet learns of the probe token through its etcd
	// watch, a moment after it was stored: a 404 is retried a few times.
	for try := 1; ; try++ {
		code, body, err := fetchProbe(ctx, client, url)
		if err != nil {
			var ne net.Error
			if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
				return fmt.Sprintf("no answer on port %s of %s", port, strings.Join(addrs, ", "))
			}
			return fmt.Sprintf("cannot connect to port %s of %s", port, strings.Join(addrs, ", "))
		}
		if code == http.StatusOK && body == answer {
			return ""
		}
		if code != http.StatusNotFound || try == probeTries {
			return fmt.Sprintf("answered by another server at %s (HTTP %d)", strings.Join(addrs, ", "), code)
		}
		select {
		case <-ctx.Done():
			return fmt.Sprintf("no answer on port %s of %s", port, strings.Join(addrs, ", "))
		case <-time.After(probeRetryWait):
		}
	}
}

// A probe answered 404 is tried probeTries times in all, probeRetryWait
// apart: about 2 s for the fleet's watches to carry the token.
const (
	probeTries     = 8
	probeRetryWait = 300 * time.Millisecond
)

func fetchProbe(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("User-Agent", "edge-preflight")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}
