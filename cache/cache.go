package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config is the node-wide cache configuration (SPEC §11 cache.*).
type Config struct {
	// MemorySize bounds the bytes of heads and bodies in memory: the
	// memory tier, less a 1/passShare share for hit-for-pass markers and a
	// 1/fillShare share for the bodies of fills in flight; an object is
	// stored only up to MemorySize/objectShare. 0: 256 MiB.
	MemorySize int64
	DiskSize   int64  // bytes on disk; 0: no disk tier
	Dir        string // the disk tier's directory, needed when DiskSize > 0
	Logger     *zap.Logger
	// Registerer, when set, gets the cache's metrics.
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// WaitTimeout bounds how long a request waits for the response head of
	// another request's fill before going to the origin itself; 0 is 15s.
	WaitTimeout time.Duration
	// PassTTL is how long a key whose response was not storable skips
	// collapsing (hit-for-pass); 0 is 2m.
	PassTTL time.Duration
}

// DefaultMemorySize is cache.memory_size when unset.
const DefaultMemorySize = 256 << 20

// The shares of cache.memory_size held for the bodies of fills in flight
// (fillShare: 8 MiB of 64 MiB) and the bound of one stored object
// (objectShare: 4 MiB of 64 MiB, 16 MiB of the default 256 MiB), so that
// at least two fills of the largest objects run at once and one object
// never pushes out more than a sixteenth of the tier. The memory tier gets
// what is left after the fills' and the pass markers' shares: memory_size
// bounds all the bytes the cache holds in memory.
const (
	fillShare   = 8
	objectShare = 16
)

// Cache is the shared cache of a node. It is safe for concurrent use.
type Cache struct {
	cfg  Config
	log  *zap.Logger
	now  func() time.Time
	mem  *memoryTier
	disk *diskTier // nil: memory only
	pass *passList

	// Fills being stored reserve their body's bytes here, up to fillBudget;
	// an object over objectMax is streamed through, never stored.
	fillBytes  atomic.Int64
	fillBudget int64
	objectMax  int64

	fillsMu sync.Mutex
	fills   map[string]*fill
	onStart func(*fill) // tests: told of each fill started

	stats   *statsSet
	metrics *metrics
	gen     atomic.Uint64
	logged  sync.Map // problem kinds already logged
	props   sync.Map // property name → *property.Property last served

	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New opens the cache: with a disk tier, it indexes the objects found under
// cfg.Dir (reading their heads, not their bodies) before it returns.
func New(cfg Config) (*Cache, error) {
	if cfg.MemorySize <= 0 {
		cfg.MemorySize = DefaultMemorySize
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 15 * time.Second
	}
	if cfg.PassTTL <= 0 {
		cfg.PassTTL = 2 * time.Minute
	}
	c := &Cache{cfg: cfg, log: cfg.Logger, now: cfg.Now, fills: map[string]*fill{}, stats: newStatsSet()}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.Named("cache")
	if c.now == nil {
		c.now = time.Now
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.gen.Store(uint64(time.Now().UnixNano()))
	var err error
	passBytes := cfg.MemorySize / passShare
	c.fillBudget, c.objectMax = max(cfg.MemorySize/fillShare, 1), max(cfg.MemorySize/objectShare, 1)
	c.mem, err = newMemoryTier(cfg.MemorySize-passBytes-c.fillBudget, c.goExec, func(o *object, evicted bool) { c.stats.removed(tierMemory, o, evicted) })
	if err != nil {
		return nil, fmt.Errorf("cache: memory tier: %w", err)
	}
	c.pass, err = newPassList(passBytes, cfg.PassTTL, c.goExec)
	if err != nil {
		return nil, fmt.Errorf("cache: pass list: %w", err)
	}
	if cfg.DiskSize > 0 {
		if cfg.Dir == "" {
			return nil, errors.New("cache: disk_size is set but dir is empty")
		}
		c.disk, err = openDisk(c, cfg.Dir, cfg.DiskSize)
		if err != nil {
			c.pass.stop()
			return nil, fmt.Errorf("cache: disk tier %s: %w", cfg.Dir, err)
		}
	}
	if cfg.Registerer != nil {
		c.metrics = newMetrics(c)
		if err := cfg.Registerer.Register(c.metrics); err != nil {
			c.Close()
			return nil, fmt.Errorf("cache: metrics: %w", err)
		}
	}
	return c, nil
}

// goExec runs otter's maintenance and deletion work on goroutines the
// Cache owns and waits for on Close.
func (c *Cache) goExec(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// Close cancels the fills and background refreshes in flight, stops the
// disk writer, and waits for every goroutine the cache started.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.stop()
	c.pass.stop()
	if c.disk != nil {
		c.disk.close()
	}
	c.wg.Wait()
	if c.metrics != nil && c.cfg.Registerer != nil {
		c.cfg.Registerer.Unregister(c.metrics)
	}
	return nil
}

// problem logs a kind of bad input once per process, then counts it quietly.
func (c *Cache) problem(kind string, fields ...zap.Field) {
	if _, seen := c.logged.LoadOrStore(kind, true); !seen {
		c.log.Warn("cache: "+kind+" (logged once)", fields...)
	}
}

// get finds key in memory, then on disk (promoting a disk hit to memory).
func (c *Cache) get(key string) *object {
	if o := c.mem.get(key); o != nil {
		return o
	}
	if c.disk == nil {
		return nil
	}
	o := c.disk.get(key)
	if o != nil {
		c.mem.put(o)
		c.stats.added(tierMemory, o)
	}
	return o
}

// put stores o in memory and, when there is one, on disk.
func (c *Cache) put(o *object) {
	o.seal()
	c.stats.added(tierMemory, o)
	c.mem.put(o)
	if c.disk != nil {
		c.disk.put(o)
	}
}

// remove deletes key from every tier.
func (c *Cache) remove(key string) {
	c.mem.remove(key)
	if c.disk != nil {
		c.disk.remove(key)
	}
}
