package node

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// What the dashboard needs besides the API (issue 21): the node-wide
// per-minute cache history, and in an etcd fleet each node's record under
// fleetPrefix in the meta bucket, written every fleetBeat.
const (
	fleetPrefix = "nodes/"
	fleetBeat   = 15 * time.Second
	// A node is alive while its record is younger than fleetAlive, and
	// forgotten (its record deleted by the next node that writes) after
	// fleetForget.
	fleetAlive  = 3 * fleetBeat
	fleetForget = 24 * time.Hour
)

// dashboard holds the node's history ring and fleet record.
type dashboard struct {
	history *admin.History
	// fleet is set in etcd mode only.
	fleet *fleetRecord
}

// fleetRecord is this node's record, as stored. Only its run goroutine
// (or a test, in turn) calls beat; list reads the store only.
type fleetRecord struct {
	rec    admin.FleetNode
	seq    uint64 // the last event read for LastRenewal
	st     *store.Etcd
	events *events.Log
	log    *zap.Logger
	now    func() time.Time
}

// startDashboard makes the history ring and, in etcd mode, this node's
// fleet record, and runs them until the returned function is called.
func (n *node) startDashboard(ctx context.Context) (stop func()) {
	n.dash.history = admin.NewHistory(n.cache.Stats, n.proxy.OriginBytes, time.Now())
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { n.dash.history.Run(ctx, time.Minute) })
	if e, ok := n.store.(*store.Etcd); ok {
		now := time.Now()
		n.dash.fleet = &fleetRecord{st: e, events: n.events, log: n.log.Named("fleet"), now: time.Now,
			rec: admin.FleetNode{Name: n.cfg.Node.Name, Version: n.opts.Version, StartedAt: now}}
		wg.Go(func() { n.dash.fleet.run(ctx) })
	}
	return func() { cancel(); wg.Wait() }
}

// fleetNodes is admin.Config.Fleet: nil when the node is alone.
func (d *dashboard) fleetNodes() func(ctx context.Context) ([]admin.FleetNode, error) {
	if d.fleet == nil {
		return nil
	}
	return d.fleet.list
}

func (f *fleetRecord) run(ctx context.Context) {
	t := time.NewTicker(fleetBeat)
	defer t.Stop()
	for {
		f.beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat writes this node's record, with its latest renewal read from the
// events since the last beat, and deletes records of nodes gone for a day.
func (f *fleetRecord) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if evs, err := f.events.After(ctx, f.seq, 0); err == nil {
		for _, ev := range evs {
			f.seq = max(f.seq, ev.Seq)
			if ev.Node == f.rec.Name && (ev.Type == events.CertificateRenewed || ev.Type == events.CertificateIssued) {
				t := ev.Time
				f.rec.LastRenewal = &t
			}
		}
	}
	f.rec.SeenAt = f.now()
	b, err := json.Marshal(f.rec)
	if err != nil {
		return
	}
	cutoff := f.rec.SeenAt.Add(-fleetForget)
	err = f.st.Update(ctx, func(tx store.Tx) error {
		var gone []string
		if err := tx.ForEach(store.Meta, fleetPrefix, func(k string, v []byte) error {
			var r admin.FleetNode
			if json.Unmarshal(v, &r) == nil && r.SeenAt.Before(cutoff) {
				gone = append(gone, k)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range gone {
			if err := tx.Delete(store.Meta, k); err != nil {
				return err
			}
		}
		return tx.Put(store.Meta, fleetPrefix+f.rec.Name, b)
	})
	if err != nil {
		f.log.Debug("cannot write this node's fleet record", zap.Error(err))
	}
}

// list reads every node's record, with when a purge sent to each last
// reached the fleet (from the purge records' keys).
func (f *fleetRecord) list(ctx context.Context) ([]admin.FleetNode, error) {
	var out []admin.FleetNode
	purged := map[string]time.Time{}
	now := f.now()
	err := f.st.View(ctx, func(tx store.Tx) error {
		if err := tx.ForEach(store.Meta, fleetPrefix, func(_ string, v []byte) error {
			var r admin.FleetNode
			if json.Unmarshal(v, &r) == nil {
				out = append(out, r)
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEach(store.Meta, purgePrefix, func(k string, _ []byte) error {
			// purge/<20-digit unix nanoseconds>-<node>
			ts, node, ok := strings.Cut(strings.TrimPrefix(k, purgePrefix), "-")
			if !ok {
				return nil
			}
			ns, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				return nil
			}
			if t := time.Unix(0, ns); t.After(purged[node]) {
				purged[node] = t
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Alive = now.Sub(out[i].SeenAt) < fleetAlive
		if t, ok := purged[out[i].Name]; ok {
			out[i].LastPurge = &t
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
