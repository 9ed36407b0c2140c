package node

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Addrs are the addresses the node's listeners are bound to (HTTP3, UDP:
// "" when HTTP/3 is off).
type Addrs struct{ HTTP, HTTPS, Admin, HTTP3 string }

type readyKey struct{}

// WithReady returns a context that, given to Run, has fn told the bound
// addresses once the node serves (tests use it to learn the ports the OS
// picked).
func WithReady(ctx context.Context, fn func(Addrs)) context.Context {
	return context.WithValue(ctx, readyKey{}, fn)
}

// startClock times the stages of a start: each is logged as it ends, with
// its own duration and the time since the start, so that a slow start says
// where it is slow; edge_start_seconds{stage} keeps them (and "total").
type startClock struct {
	log    *zap.Logger
	begin  time.Time
	mu     sync.Mutex // the start probe reads while Run writes
	last   time.Time
	stages []startStage
	// onStage, if set (tests, through the context), is called as each
	// stage ends.
	onStage func(stage string)
}

type stageHookKey struct{}

type startStage struct {
	name string
	took time.Duration
}

func newStartClock(log *zap.Logger) *startClock {
	now := time.Now()
	return &startClock{log: log.Named("start"), begin: now, last: now}
}

// stage ends the stage name (begun when the previous one ended).
func (c *startClock) stage(name string, fields ...zap.Field) {
	if c == nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	took := now.Sub(c.last)
	c.last = now
	c.stages = append(c.stages, startStage{name, took})
	c.mu.Unlock()
	if c.onStage != nil {
		c.onStage(name)
	}
	c.log.Info("start: "+name, append(fields, zap.Duration("took", took), zap.Duration("since_start", now.Sub(c.begin)))...)
}

// register exposes the stages as edge_start_seconds{stage}, with "total"
// the time from the start of Run to readiness.
func (c *startClock) register(reg prometheus.Registerer) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "edge_start_seconds",
		Help: "Seconds each stage of this process's start took (stage=total: from start to ready).",
	}, []string{"stage"})
	for _, s := range c.stages {
		g.WithLabelValues(s.name).Set(s.took.Seconds())
	}
	g.WithLabelValues("total").Set(c.last.Sub(c.begin).Seconds())
	_ = reg.Register(g) // registered once per node
}

// progress returns the stages done and the time since the start.
func (c *startClock) progress() (done []string, since time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.stages {
		done = append(done, s.name)
	}
	return done, time.Since(c.begin)
}
