package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type etcdTx struct {
	e        *Etcd
	ctx      context.Context
	readOnly bool
	rev      int64              // the revision all reads see; 0 until the first read
	reads    map[string]int64   // key → mod revision read (0: absent)
	ranges   [][2]string        // ranges read: [from, end)
	writes   map[string]*[]byte // key → value, nil: delete
	order    []string           // write order
}

func (t *etcdTx) opts(o ...clientv3.OpOption) []clientv3.OpOption {
	if t.rev != 0 {
		o = append(o, clientv3.WithRev(t.rev))
	}
	return o
}

// get reads one key at the transaction's revision, in one bounded request.
func (t *etcdTx) get(key string, o ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := t.e.op(t.ctx)
	defer cancel()
	resp, err := t.e.cli.Get(ctx, key, t.opts(o...)...)
	if err != nil {
		return nil, fmt.Errorf("store etcd: %w", err)
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	return resp, nil
}

// getRev returns the value and mod revision of k (0: absent), this
// transaction's own writes applied (-1: written here).
func (t *etcdTx) getRev(bucket, key string) ([]byte, int64, error) {
	if err := validBucket(bucket); err != nil {
		return nil, 0, err
	}
	k := t.e.key(bucket, key)
	if w, ok := t.writes[k]; ok {
		if w == nil {
			return nil, -1, ErrNotFound
		}
		return append([]byte(nil), (*w)...), -1, nil
	}
	resp, err := t.get(k)
	if err != nil {
		return nil, 0, err
	}
	var rev int64
	var v []byte
	if len(resp.Kvs) > 0 {
		rev, v = resp.Kvs[0].ModRevision, resp.Kvs[0].Value
	}
	if t.reads != nil {
		t.reads[k] = rev
	}
	if rev == 0 {
		return nil, 0, ErrNotFound
	}
	return v, rev, nil
}

func (t *etcdTx) Get(bucket, key string) ([]byte, error) {
	v, _, err := t.getRev(bucket, key)
	return v, err
}

// Revision is the key's mod revision.
func (t *etcdTx) Revision(bucket, key string) (Rev, error) {
	_, rev, err := t.getRev(bucket, key)
	if err != nil {
		return "", err
	}
	if rev < 0 {
		return "", fmt.Errorf("store: %s/%s: no revision for a key written in this transaction", bucket, key)
	}
	return Rev(strconv.FormatInt(rev, 10)), nil
}

// Require reads the key (so that the commit is conditional on it) and
// compares its mod revision.
func (t *etcdTx) Require(bucket, key string, rev Rev) error {
	cur, err := t.Revision(bucket, key)
	if errors.Is(err, ErrNotFound) && rev == "" {
		return nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if cur != rev {
		return fmt.Errorf("%s/%s: %w", bucket, key, ErrConflict)
	}
	return nil
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

func (t *etcdTx) ForEach(bucket, prefix string, fn func(string, []byte) error) error {
	return t.ForEachFrom(bucket, prefix, "", fn)
}

// ForEachFrom reads the range [from, end of prefix) page by page at the
// transaction's revision, with this transaction's own writes applied.
func (t *etcdTx) ForEachFrom(bucket, prefix, from string, fn func(string, []byte) error) error {
	if err := validBucket(bucket); err != nil {
		return err
	}
	base := t.e.prefix + bucket + "/"
	start, end := base+prefix, clientv3.GetPrefixRangeEnd(base+prefix)
	if from > prefix {
		start = base + from
	}
	if start >= end {
		return nil
	}
	t.ranges = append(t.ranges, [2]string{start, end})
	// Keys written in this transaction in the range, merged in order.
	var own []string
	for _, k := range t.order {
		if k >= start && k < end {
			own = append(own, k)
		}
	}
	sort.Strings(own)
	emit := func(k string, v []byte) error { return fn(strings.TrimPrefix(k, base), v) }
	// flushOwn emits this transaction's puts before key k ("": all).
	flushOwn := func(k string) error {
		for len(own) > 0 && (k == "" || own[0] < k) {
			if w := t.writes[own[0]]; w != nil {
				if err := emit(own[0], *w); err != nil {
					return err
				}
			}
			own = own[1:]
		}
		return nil
	}
	for next := start; ; {
		resp, err := t.get(next, clientv3.WithRange(end), clientv3.WithLimit(500))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			k := string(kv.Key)
			if err := flushOwn(k); err != nil {
				return err
			}
			v := kv.Value
			if len(own) > 0 && own[0] == k {
				w := t.writes[k]
				own = own[1:]
				if w == nil {
					continue
				}
				v = *w
			}
			if err := emit(k, v); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		next = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return flushOwn("")
}

// commit writes in one etcd transaction guarded by what was read; false
// when a read changed meanwhile. It never splits: a transaction beyond
// etcd's limit fails whole with ErrTxnTooLarge.
func (t *etcdTx) commit() (bool, error) {
	if len(t.order) == 0 {
		return true, nil
	}
	var cmps []clientv3.Cmp
	for k, rev := range t.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
	}
	if t.rev != 0 {
		for _, r := range t.ranges {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r[0]), "<", t.rev+1).WithRange(r[1]))
		}
	}
	if len(t.order) > t.e.maxOps || len(cmps) > t.e.maxOps {
		return false, fmt.Errorf("%w: %d writes and %d reads to check, etcd takes at most %d of each (store.etcd max_txn_ops); write in smaller transactions",
			ErrTxnTooLarge, len(t.order), len(cmps), t.e.maxOps)
	}
	ops := make([]clientv3.Op, 0, len(t.order))
	for _, k := range t.order {
		if w := t.writes[k]; w == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(*w)))
		}
	}
	ctx, cancel := t.e.op(t.ctx)
	defer cancel()
	resp, err := t.e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("store etcd: %w", err)
	}
	return resp.Succeeded, nil
}
