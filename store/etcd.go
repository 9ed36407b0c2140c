package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// EtcdConfig is how to reach the fleet's etcd.
type EtcdConfig struct {
	Endpoints   []string
	Prefix      string // every key lives under it; "/edge/" by default
	Username    string
	Password    string
	TLS         *tls.Config // nil: plain connections
	DialTimeout time.Duration
	// LockTTL is the lease of this node's locks: a node that dies releases
	// them this long after its last keep-alive. 0: 10s.
	LockTTL time.Duration
	// OpTimeout bounds every single etcd request (a read page, a commit, a
	// lease grant, a lock step), whatever the caller's context says; a
	// shorter caller deadline still wins. 0: 5s.
	OpTimeout time.Duration
	// LockTimeout bounds the wait of Lock for a lock another node holds
	// when the caller's context has no deadline. 0: 1 min.
	LockTimeout time.Duration
	// MaxTxnOps is the server's --max-txn-ops: the most writes (and the
	// most read checks) one Update may hold. Larger Updates fail with
	// ErrTxnTooLarge. 0: 128, etcd's default.
	MaxTxnOps int
	Logger    *zap.Logger
}

// Etcd is the fleet backend: the same buckets and keys as Bolt, under a
// prefix in etcd (<prefix><bucket>/<key>). Reads in one View see one
// revision; Update is an optimistic transaction, retried when a key it
// read changed meanwhile, and always one etcd commit. Locks are etcd
// mutexes bound to this node's lease. Every request has a deadline
// (EtcdConfig.OpTimeout) and no mutex is held across a request.
type Etcd struct {
	cli         *clientv3.Client
	prefix      string
	ttl         int
	opTimeout   time.Duration
	lockTimeout time.Duration
	maxOps      int
	log         *zap.Logger
	local       *localLocks // one lock per name within this process too

	// bg is the life of this Etcd: the lease keep-alive runs under it.
	bg     context.Context
	cancel context.CancelFunc
	grants singleflight.Group // one lease grant at a time

	mu      sync.Mutex // guards session and held; never held across a request
	session *lease
	closed  bool
	held    map[string]heldLock
	keepers sync.WaitGroup // the lease refresh goroutines
}

var (
	_ Store  = (*Etcd)(nil)
	_ Locker = (*Etcd)(nil)
)

// OpenEtcd connects to etcd and checks that it answers.
func OpenEtcd(ctx context.Context, c EtcdConfig) (*Etcd, error) {
	if len(c.Endpoints) == 0 {
		return nil, errors.New("store.etcd.endpoints: at least one endpoint is required")
	}
	c = c.withDefaults()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: c.Endpoints, Username: c.Username, Password: c.Password, TLS: c.TLS,
		DialTimeout: c.DialTimeout, Logger: c.Logger.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	})
	if err != nil {
		return nil, fmt.Errorf("store etcd %v: %w", c.Endpoints, err)
	}
	bg, cancel := context.WithCancel(context.Background())
	e := &Etcd{cli: cli, prefix: c.Prefix, ttl: max(1, int(c.LockTTL/time.Second)), opTimeout: c.OpTimeout,
		lockTimeout: c.LockTimeout, maxOps: c.MaxTxnOps, log: c.Logger, local: newLocalLocks(),
		bg: bg, cancel: cancel, held: map[string]heldLock{}}
	pctx, pcancel := context.WithTimeout(ctx, c.DialTimeout)
	defer pcancel()
	if err := e.Ping(pctx); err != nil {
		e.Close()
		return nil, fmt.Errorf("store etcd %v does not answer: %w", c.Endpoints, err)
	}
	if err := e.init(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (c EtcdConfig) withDefaults() EtcdConfig {
	if c.Prefix == "" {
		c.Prefix = "/edge/"
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 10 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = time.Minute
	}
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = 128
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (e *Etcd) init(ctx context.Context) error {
	return e.Update(ctx, func(tx Tx) error {
		v, err := tx.Get(Meta, "schema_version")
		switch {
		case errors.Is(err, ErrNotFound):
			return tx.Put(Meta, "schema_version", []byte(SchemaVersion))
		case err != nil:
			return err
		case string(v) != SchemaVersion:
			return fmt.Errorf("store etcd %s has schema version %s; this edge binary reads version %s", e.prefix, v, SchemaVersion)
		}
		return nil
	})
}

// op bounds one etcd request by OpTimeout (or the caller's deadline, if
// sooner).
func (e *Etcd) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.opTimeout)
}

// Ping checks that etcd answers a linearizable read.
func (e *Etcd) Ping(ctx context.Context) error {
	ctx, cancel := e.op(ctx)
	defer cancel()
	_, err := e.cli.Get(ctx, e.prefix+Meta+"/schema_version")
	return err
}

// Client returns the etcd client, for tests that simulate a crash.
func (e *Etcd) Client() *clientv3.Client { return e.cli }

// MaxTxnWrites is the most writes one Update may hold.
func (e *Etcd) MaxTxnWrites() int { return e.maxOps }

// Close revokes this node's lease (releasing its locks), within
// OpTimeout, and disconnects.
func (e *Etcd) Close() error {
	e.mu.Lock()
	l := e.session
	e.session, e.closed = nil, true
	e.mu.Unlock()
	if l != nil {
		l.s.Orphan()
		ctx, cancel := e.op(context.Background())
		_, _ = e.cli.Revoke(ctx, l.s.Lease()) // if etcd is down, the lease expires on its own
		cancel()
	}
	e.cancel()
	e.keepers.Wait()
	return e.cli.Close()
}

func (e *Etcd) key(bucket, key string) string { return e.prefix + bucket + "/" + key }

func validBucket(b string) error {
	for _, n := range buckets {
		if n == b {
			return nil
		}
	}
	return fmt.Errorf("store: no bucket %q", b)
}

// View runs fn against one consistent revision.
func (e *Etcd) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn(&etcdTx{e: e, ctx: ctx, readOnly: true})
}

// Update runs fn in an optimistic transaction: its writes commit only if
// nothing it read changed since; otherwise fn runs again (a few times).
// The writes go in one etcd commit: more than MaxTxnOps writes, or reads
// to check, fail with ErrTxnTooLarge and write nothing.
func (e *Etcd) Update(ctx context.Context, fn func(Tx) error) error {
	for attempt := 0; attempt < 20; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		tx := &etcdTx{e: e, ctx: ctx, reads: map[string]int64{}, writes: map[string]*[]byte{}}
		if err := fn(tx); err != nil {
			return err
		}
		ok, err := tx.commit()
		if err != nil || ok {
			return err
		}
	}
	return errors.New("store etcd: too much contention on the same keys; try again")
}

// Watch calls onKey with the key of every change in bucket, made by any
// node, until ctx ends. After a gap (etcd unreachable, history compacted)
// it calls onResync, for the caller to reload the whole bucket.
func (e *Etcd) Watch(ctx context.Context, bucket string, onKey func(key string), onResync func()) {
	base := e.prefix + bucket + "/"
	for ctx.Err() == nil {
		wch := e.cli.Watch(clientv3.WithRequireLeader(ctx), base, clientv3.WithPrefix())
		for resp := range wch {
			if err := resp.Err(); err != nil {
				e.log.Warn("store watch interrupted; reloading", zap.String("bucket", bucket), zap.Error(err))
				break
			}
			for _, ev := range resp.Events {
				onKey(strings.TrimPrefix(string(ev.Kv.Key), base))
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		onResync()
	}
}
