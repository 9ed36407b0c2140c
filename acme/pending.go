package acme

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edge-cdn/edge/store"
	"golang.org/x/time/rate"
)

// pending is what the node knows, in memory, of the challenges it may have
// to answer: the hostnames with an HTTP-01 challenge stored (by any node)
// with its token, and the preflight probe tokens with their answers. A
// request for any other host or token may be one another node stored a
// moment ago, so it reads the store; those reads are bounded by two token
// buckets, one for the hosts properties serve (and pending hosts), one for
// every other name, so random hosts and tokens from the internet cost a
// bounded number of reads and cannot use up the budget of real
// challenges.
//
// It follows the store: writes through acmeStorage update it at once, and
// on etcd the node feeds it the ACME bucket's watch (Refresh, Rescan) so
// orders placed by other nodes of the fleet are known too.
type pending struct {
	mu     sync.RWMutex
	names  map[string]string // certmagic.StorageKeys.Safe(host) → token
	probes map[string]string // probe token → answer
	// Store lookups by ServeChallenge on a miss: for property (and
	// pending) hosts, and for every other name.
	limit, unknownLimit *rate.Limiter
	overRate            rate.Sometimes // the log line of refusals
}

// Challenge store lookups: enough for a CA validating from several vantage
// points at once, little for a flood. Names no property serves (a
// certificate requested through the API) have a smaller budget of their
// own; each lookup has a deadline.
const (
	lookupRate         = 20
	lookupBurst        = 50
	unknownLookupRate  = 10
	unknownLookupBurst = 20
	lookupTimeout      = 5 * time.Second
)

func newPending() *pending {
	return &pending{names: map[string]string{}, probes: map[string]string{},
		limit: rate.NewLimiter(lookupRate, lookupBurst), unknownLimit: rate.NewLimiter(unknownLookupRate, unknownLookupBurst),
		overRate: rate.Sometimes{First: 1, Interval: time.Minute}}
}

const challengeDir = "/challenge_tokens/"

// observe records that key now holds value (present) or is gone. Only
// challenge tokens and probes are kept; other keys are ignored.
func (p *pending) observe(key string, value []byte, present bool) {
	if tok, ok := strings.CutPrefix(key, probeKey("")); ok {
		p.mu.Lock()
		if present {
			p.probes[tok] = string(value)
		} else {
			delete(p.probes, tok)
		}
		p.mu.Unlock()
		return
	}
	i := strings.LastIndex(key, challengeDir)
	if i < 0 || !strings.HasSuffix(key, ".json") {
		return
	}
	name := strings.TrimSuffix(key[i+len(challengeDir):], ".json")
	var chal struct {
		Token string `json:"token"` // certmagic stores an acme.Challenge
	}
	if present && json.Unmarshal(value, &chal) != nil {
		chal.Token = "" // unreadable: the host is pending, no token matches
	}
	p.mu.Lock()
	if present {
		p.names[name] = chal.Token
	} else {
		delete(p.names, name)
	}
	p.mu.Unlock()
}

func (p *pending) probe(token string) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	a, ok := p.probes[token]
	return a, ok
}

// token returns the token of host's pending challenge, if it has one.
func (p *pending) token(host string) (string, bool) {
	safe := certmagic.StorageKeys.Safe(host)
	p.mu.RLock()
	defer p.mu.RUnlock()
	tok, ok := p.names[safe]
	return tok, ok
}

func (p *pending) hasName(host string) bool {
	_, ok := p.token(host)
	return ok
}

// Refresh re-reads one key of the ACME bucket that another node changed
// (from the store's watch).
func (a *Client) Refresh(ctx context.Context, key string) error {
	if !strings.HasPrefix(key, probeKey("")) && !strings.Contains(key, challengeDir) {
		return nil
	}
	v, err := a.storage.Load(ctx, key)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	a.pending.observe(key, v, err == nil)
	return nil
}

// Rescan reloads the pending challenges from the store: at start, and
// after a gap in the store's watch.
func (a *Client) Rescan(ctx context.Context) error {
	fresh := newPending()
	err := a.storage.st.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.ACME, "", func(k string, v []byte) error {
			if len(v) >= 8 && ( // 8 bytes of modification time, then the value
			strings.HasPrefix(k, probeKey("")) || strings.Contains(k, challengeDir)) {
				fresh.observe(k, v[8:], true)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	a.pending.mu.Lock()
	a.pending.names, a.pending.probes = fresh.names, fresh.probes
	a.pending.mu.Unlock()
	return nil
}
