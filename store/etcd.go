package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
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
	Logger  *zap.Logger
}

// Etcd is the fleet backend: the same buckets and keys as Bolt, under a
// prefix in etcd (<prefix><bucket>/<key>). Reads in one View see one
// revision; Update is an optimistic transaction, retried when a key it
// read changed meanwhile. Locks are etcd mutexes bound to this node's
// lease.
type Etcd struct {
	cli    *clientv3.Client
	prefix string
	ttl    int
	log    *zap.Logger
	local  *localLocks // one lock per name within this process too

	mu      sync.Mutex
	session *concurrency.Session
	held    map[string]*concurrency.Mutex
}

var (
	_ Store  = (*Etcd)(nil)
	_ Locker = (*Etcd)(nil)
)

// maxTxnOps stays under etcd's default limit of 128 operations in one
// transaction.
const maxTxnOps = 120

// OpenEtcd connects to etcd and checks that it answers.
func OpenEtcd(ctx context.Context, c EtcdConfig) (*Etcd, error) {
	if len(c.Endpoints) == 0 {
		return nil, errors.New("store.etcd.endpoints: at least one endpoint is required")
	}
	if c.Prefix == "" {
		c.Prefix = "/edge/"
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.LockTTL == 0 {
		c.LockTTL = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: c.Endpoints, Username: c.Username, Password: c.Password, TLS: c.TLS,
		DialTimeout: c.DialTimeout, Logger: c.Logger.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	})
	if err != nil {
		return nil, fmt.Errorf("store etcd %v: %w", c.Endpoints, err)
	}
	e := &Etcd{cli: cli, prefix: c.Prefix, ttl: max(1, int(c.LockTTL/time.Second)), log: c.Logger,
		local: newLocalLocks(), held: map[string]*concurrency.Mutex{}}
	pctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	if err := e.Ping(pctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("store etcd %v does not answer: %w", c.Endpoints, err)
	}
	if err := e.init(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	return e, nil
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

// Ping checks that etcd answers a linearizable read.
func (e *Etcd) Ping(ctx context.Context) error {
	_, err := e.cli.Get(ctx, e.prefix+Meta+"/schema_version")
	return err
}

// Client returns the etcd client, for tests that simulate a crash.
func (e *Etcd) Client() *clientv3.Client { return e.cli }

// Close revokes this node's lease (releasing its locks) and disconnects.
func (e *Etcd) Close() error {
	e.mu.Lock()
	if e.session != nil {
		_ = e.session.Close() // revokes the lease
	}
	e.mu.Unlock()
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

type etcdTx struct {
	e        *Etcd
	ctx      context.Context
	readOnly bool
	rev      int64              // the revision all reads see; 0 until the first read
	reads    map[string]int64   // key → mod revision read (0: absent)
	prefixes []string           // ranges read
	writes   map[string]*[]byte // key → value, nil: delete
	order    []string           // write order
}

func (t *etcdTx) opts(o ...clientv3.OpOption) []clientv3.OpOption {
	if t.rev != 0 {
		o = append(o, clientv3.WithRev(t.rev))
	}
	return o
}

func (t *etcdTx) Get(bucket, key string) ([]byte, error) {
	if err := validBucket(bucket); err != nil {
		return nil, err
	}
	k := t.e.key(bucket, key)
	if w, ok := t.writes[k]; ok {
		if w == nil {
			return nil, ErrNotFound
		}
		return append([]byte(nil), (*w)...), nil
	}
	resp, err := t.e.cli.Get(t.ctx, k, t.opts()...)
	if err != nil {
		return nil, fmt.Errorf("store etcd: %w", err)
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	if len(resp.Kvs) == 0 {
		if t.reads != nil {
			t.reads[k] = 0
		}
		return nil, ErrNotFound
	}
	if t.reads != nil {
		t.reads[k] = resp.Kvs[0].ModRevision
	}
	return resp.Kvs[0].Value, nil
}

func (t *etcdTx) write(bucket, key string, v *[]byte) error {
	if t.readOnly {
		return errors.New("store: write in a read-only transaction")
	}
	if err := validBucket(bucket); err != nil {
		return err
	}
	if key == "" {
		return errors.New("store: empty key")
	}
	k := t.e.key(bucket, key)
	if _, seen := t.writes[k]; !seen {
		t.order = append(t.order, k)
	}
	t.writes[k] = v
	return nil
}

func (t *etcdTx) Put(bucket, key string, value []byte) error {
	v := append([]byte(nil), value...)
	return t.write(bucket, key, &v)
}

func (t *etcdTx) Delete(bucket, key string) error { return t.write(bucket, key, nil) }

// ForEach reads the range page by page at the transaction's revision, with
// this transaction's own writes applied.
func (t *etcdTx) ForEach(bucket, prefix string, fn func(string, []byte) error) error {
	if err := validBucket(bucket); err != nil {
		return err
	}
	base := t.e.prefix + bucket + "/"
	from, end := base+prefix, clientv3.GetPrefixRangeEnd(base+prefix)
	t.prefixes = append(t.prefixes, base+prefix)
	// Keys written in this transaction under the prefix, merged in order.
	var own []string
	for _, k := range t.order {
		if strings.HasPrefix(k, base+prefix) {
			own = append(own, k)
		}
	}
	sort.Strings(own)
	emit := func(k string, v []byte) error { return fn(strings.TrimPrefix(k, base), v) }
	next := from
	for {
		resp, err := t.e.cli.Get(t.ctx, next, t.opts(clientv3.WithRange(end), clientv3.WithLimit(500))...)
		if err != nil {
			return fmt.Errorf("store etcd: %w", err)
		}
		if t.rev == 0 {
			t.rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			k := string(kv.Key)
			for len(own) > 0 && own[0] < k {
				if w := t.writes[own[0]]; w != nil {
					if err := emit(own[0], *w); err != nil {
						return err
					}
				}
				own = own[1:]
			}
			if len(own) > 0 && own[0] == k {
				w := t.writes[k]
				own = own[1:]
				if w == nil {
					continue
				}
				if err := emit(k, *w); err != nil {
					return err
				}
				continue
			}
			if err := emit(k, kv.Value); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		next = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	for _, k := range own {
		if w := t.writes[k]; w != nil {
			if err := emit(k, *w); err != nil {
				return err
			}
		}
	}
	return nil
}

// commit writes in one etcd transaction guarded by what was read; false
// when a read changed meanwhile. Writes beyond one transaction's limit go
// in further transactions (only migrations and large deletes get there).
func (t *etcdTx) commit() (bool, error) {
	if len(t.order) == 0 {
		return true, nil
	}
	var cmps []clientv3.Cmp
	for k, rev := range t.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
	}
	if t.rev != 0 {
		for _, p := range t.prefixes {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p), "<", t.rev+1).WithPrefix())
		}
	}
	ops := make([]clientv3.Op, 0, len(t.order))
	for _, k := range t.order {
		if w := t.writes[k]; w == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(*w)))
		}
	}
	first := ops
	if len(first) > maxTxnOps {
		first = ops[:maxTxnOps]
	}
	resp, err := t.e.cli.Txn(t.ctx).If(cmps...).Then(first...).Commit()
	if err != nil {
		return false, fmt.Errorf("store etcd: %w", err)
	}
	if !resp.Succeeded {
		return false, nil
	}
	for rest := ops[len(first):]; len(rest) > 0; {
		n := min(len(rest), maxTxnOps)
		if _, err := t.e.cli.Txn(t.ctx).Then(rest[:n]...).Commit(); err != nil {
			return true, fmt.Errorf("store etcd: %w", err)
		}
		rest = rest[n:]
	}
	return true, nil
}

// sessionFor returns this node's lease session, making a new one when the
// last expired (etcd was unreachable longer than the lease).
func (e *Etcd) sessionFor(ctx context.Context) (*concurrency.Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.session != nil {
		select {
		case <-e.session.Done():
			e.session = nil
			e.held = map[string]*concurrency.Mutex{}
		default:
			return e.session, nil
		}
	}
	s, err := concurrency.NewSession(e.cli, concurrency.WithTTL(e.ttl), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("store etcd: lease: %w", err)
	}
	e.session = s
	return s, nil
}

func (e *Etcd) lockKey(name string) string { return e.prefix + "locks/" + name }

// Lock waits for the named lock, fleet-wide.
func (e *Etcd) Lock(ctx context.Context, name string) error {
	if err := e.local.Lock(ctx, name); err != nil {
		return err
	}
	return e.acquire(ctx, name, (*concurrency.Mutex).Lock)
}

// TryLock takes the named lock if no node holds it.
func (e *Etcd) TryLock(ctx context.Context, name string) (bool, error) {
	if ok, _ := e.local.TryLock(ctx, name); !ok {
		return false, nil
	}
	err := e.acquire(ctx, name, (*concurrency.Mutex).TryLock)
	if errors.Is(err, concurrency.ErrLocked) {
		return false, nil
	}
	return err == nil, err
}

// acquire takes the etcd side of a lock whose in-process side is held,
// releasing that side again if it fails.
func (e *Etcd) acquire(ctx context.Context, name string, take func(*concurrency.Mutex, context.Context) error) error {
	s, err := e.sessionFor(ctx)
	if err == nil {
		m := concurrency.NewMutex(s, e.lockKey(name))
		if err = take(m, ctx); err == nil {
			e.mu.Lock()
			e.held[name] = m
			e.mu.Unlock()
			return nil
		}
	}
	_ = e.local.Unlock(ctx, name)
	return err
}

// Unlock releases the named lock.
func (e *Etcd) Unlock(ctx context.Context, name string) error {
	e.mu.Lock()
	m := e.held[name]
	delete(e.held, name)
	e.mu.Unlock()
	var err error
	if m != nil {
		err = m.Unlock(ctx)
	}
	_ = e.local.Unlock(ctx, name)
	return err
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
