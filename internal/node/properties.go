package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// loadProperties loads the properties at start; an unreadable directory is
// fatal here, while a bad file only is rejected. A rejected file serves its
// last good version, kept in the store, as it would have before the restart
// (issue 11).
func (n *node) loadProperties(ctx context.Context) error {
	n.noteStrayFiles()
	known := n.startCertificates // the handshake index's pass (start)
	n.startCertificates = nil
	if known == nil {
		known = n.certificatesByName(ctx)
	}
	opts := n.propertyOptions(known)
	files, err := property.ListDir(n.cfg.PropertiesDir)
	if err != nil {
		n.metrics.Reload("error")
		return err
	}
	// The stored last good versions matter only when a file is rejected
	// (it serves its last good version; a hostname stays with the file
	// that served it): parsing them all first doubled the parsing of a
	// restart. Without rejections both builds are the same table.
	// Unchanged files come from the snapshot the last run wrote, unparsed.
	snap := n.readSnapshot()
	loaded, taken := property.LoadListSnapshot(files, snap)
	if snap != nil {
		n.log.Info("property snapshot read", zap.Int("files", len(files)), zap.Int("from_snapshot", taken),
			zap.Int("parsed", len(files)-taken))
	}
	t := property.Build(loaded, nil, opts)
	if len(t.Rejected()) > 0 {
		if prev := n.lastGoodTable(ctx, files, opts); prev != nil {
			t = property.Build(loaded, prev, opts)
		}
	}
	n.apply(ctx, t, known)
	return nil
}

// The last good version of each property file is kept in the store's meta
// bucket under lastGoodKey: the file's bytes, as they last loaded. Keys
// hold the node's name, since property files are each node's own while a
// fleet shares the store.
func (n *node) lastGoodPrefix() string { return "property/" + n.cfg.Node.Name + "/" }

// lastGoodTable builds a table from the stored last good versions of the
// files still in properties_dir, to stand in as the previous table of the
// first load; nil when there are none or the store does not answer.
func (n *node) lastGoodTable(ctx context.Context, files []string, opts property.Options) *property.Table {
	var exists map[string]bool // made at the first stored version: none at a first start
	var loaded []property.Loaded
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	prefix := n.lastGoodPrefix()
	err := n.store.View(sctx, func(tx store.Tx) error {
		return tx.ForEach(store.Meta, prefix, func(k string, v []byte) error {
			if exists == nil {
				exists = make(map[string]bool, len(files))
				for _, f := range files {
					exists[f] = true
				}
			}
			if file := k[len(prefix):]; exists[file] {
				if p, errs := property.Parse(file, v); len(errs) == 0 {
					loaded = append(loaded, property.Loaded{File: file, Property: p})
				}
			}
			return nil
		})
	})
	if err != nil {
		n.log.Warn("reading the last good property versions; rejected files will not serve", zap.Error(err))
		return nil
	}
	if len(loaded) == 0 {
		return nil
	}
	return property.Build(loaded, nil, opts)
}

// saveLastGood stores the version of every property t serves whose stored
// version differs, and forgets the files that are gone. A file that
// changed again since it was read is left for the next reload.
func (n *node) saveLastGood(ctx context.Context, t *property.Table) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	prefix := n.lastGoodPrefix()
	stored := map[string]string{}
	err := n.store.View(sctx, func(tx store.Tx) error {
		return tx.ForEach(store.Meta, prefix, func(k string, v []byte) error {
			stored[k[len(prefix):]] = digest(v)
			return nil
		})
	})
	if err != nil {
		n.log.Warn("reading the last good property versions", zap.Error(err))
		return
	}
	keep := map[string]bool{}
	puts := map[string][]byte{}
	for _, p := range t.Properties() {
		keep[p.File] = true
		if stored[p.File] == p.Digest() {
			continue
		}
		if data, err := os.ReadFile(p.File); err == nil && digest(data) == p.Digest() {
			puts[p.File] = data
		}
	}
	for _, r := range t.Rejected() {
		keep[r.File] = true
	}
	var dels []string
	for f := range stored {
		if !keep[f] {
			dels = append(dels, f)
		}
	}
	n.lastGoodSaved.Store(n.writeLastGoods(ctx, puts, dels))
}

// saveLastGoodChanges is saveLastGood for a reload from prev to t: it
// stores the versions of the properties that changed and forgets the
// files gone, reading nothing else (a reload of one file among 100,000
// read and hashed every stored version). After a save that failed, it
// saves all.
func (n *node) saveLastGoodChanges(ctx context.Context, prev, t *property.Table) {
	if !n.lastGoodSaved.Load() {
		n.saveLastGood(ctx, t)
		return
	}
	puts := map[string][]byte{}
	for _, p := range t.Properties() {
		if prev.ByName(p.Name) == p {
			continue
		}
		if data, err := os.ReadFile(p.File); err == nil && digest(data) == p.Digest() {
			puts[p.File] = data
		}
	}
	rejected := map[string]bool{}
	for _, r := range t.Rejected() {
		rejected[r.File] = true
	}
	var dels []string
	for _, p := range prev.Properties() {
		if t.ByName(p.Name) != p && t.ByFile(p.File) == nil && !rejected[p.File] {
			dels = append(dels, p.File)
		}
	}
	n.lastGoodSaved.Store(n.writeLastGoods(ctx, puts, dels))
}

// writeLastGoods stores puts and deletes dels, by file; false when a
// write failed (logged).
func (n *node) writeLastGoods(ctx context.Context, puts map[string][]byte, dels []string) bool {
	if len(puts) == 0 && len(dels) == 0 {
		return true
	}
	prefix := n.lastGoodPrefix()
	// The writes go in key order (bbolt inserts a key into an in-memory
	// node by copying what follows it: 100,000 new keys in map order took
	// 20 s, in order a fraction of one) and in batches that etcd takes
	// (--max-txn-ops), each with its own deadline.
	keys := slices.Sorted(maps.Keys(puts))
	slices.Sort(dels)
	batch := store.MaxTxnWrites(n.store)
	if batch <= 0 {
		batch = len(keys) + len(dels)
	}
	for len(keys)+len(dels) > 0 {
		np := min(len(keys), batch)
		nd := min(len(dels), batch-np)
		if err := n.writeLastGood(ctx, prefix, keys[:np], puts, dels[:nd]); err != nil {
			n.log.Warn("storing the last good property versions", zap.Error(err))
			return false
		}
		keys, dels = keys[np:], dels[nd:]
	}
	return true
}

// writeLastGood stores one batch of saveLastGood's writes.
func (n *node) writeLastGood(ctx context.Context, prefix string, keys []string, puts map[string][]byte, dels []string) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return n.store.Update(ctx, func(tx store.Tx) error {
		for _, f := range keys {
			if err := tx.Put(store.Meta, prefix+f, puts[f]); err != nil {
				return err
			}
		}
		for _, f := range dels {
			if err := tx.Delete(store.Meta, prefix+f); err != nil {
				return err
			}
		}
		return nil
	})
}

// digest is property's digest of a file's bytes (Property.Digest).
func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// reloadProperties rebuilds the table; on any error the last good table
// keeps serving.
func (n *node) reloadProperties(ctx context.Context) {
	start := time.Now()
	n.noteConfigChanges()
	n.noteStrayFiles()
	prev := n.table.Load()
	files, err := property.LoadFiles(n.cfg.PropertiesDir, prev)
	if err != nil {
		n.metrics.Reload("error")
		n.log.Error("property reload failed; the last good properties keep serving", zap.Error(err))
		return
	}
	read := time.Now()
	var known map[string]cert.Summary // nil: not known
	scoped := false
	if n.health.err() == nil {
		// While the store is down, reading would wait for its timeout.
		if !n.unapplied.Load() {
			known, scoped = n.certificatesOf(ctx, changedFileCertificates(files, prev))
		}
		if !scoped {
			known = n.certificatesByName(ctx)
		}
	}
	listed := time.Now()
	t := property.Build(files, prev, n.propertyOptions(known))
	if scoped {
		n.applyScoped(ctx, t, known)
	} else {
		n.apply(ctx, t, known)
	}
	n.log.Info("properties reloaded", zap.Duration("took", time.Since(start)),
		zap.Duration("files", read.Sub(start)), zap.Duration("certificates", listed.Sub(read)), zap.Duration("apply", time.Since(listed)),
		zap.Bool("certificates_of_changed_files_only", scoped))
	n.offerSnapshot(t)
}

// noteConfigChanges says which sections of the config file changed since
// the node started: a reload applies property files only, and the rest
// takes a restart (issue 11: SIGHUP ignored them silently).
func (n *node) noteConfigChanges() {
	if n.cfg.File() == "" {
		return
	}
	now, errs := config.Load(n.cfg.File())
	if len(errs) > 0 {
		n.log.Warn("the config file has problems now; the node runs with the config it started with", zap.Error(errs[0]), zap.Int("problems", len(errs)))
		return
	}
	if changed := config.ChangedSections(n.cfg, now); len(changed) > 0 {
		n.log.Warn("the config file changed; these sections take effect at the next restart (a reload applies property files only)",
			zap.Strings("sections", changed))
	}
}

// noteStrayFiles warns about files of properties_dir that look like
// property files but are not read: only *.yaml is (issue 11).
func (n *node) noteStrayFiles() {
	// Names only, unsorted, then the few strays sorted (os.ReadDir sorted
	// 100,000 entries for it).
	d, err := os.Open(n.cfg.PropertiesDir)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	var strays []string
	for _, name := range names {
		if isStrayFile(name) {
			strays = append(strays, name)
		}
	}
	slices.Sort(strays)
	for _, name := range strays {
		n.log.Warn(strayFileMessage, zap.String("file", name))
	}
}

const strayFileMessage = "not a property file: only *.yaml files are read; rename it to load it"

// isStrayFile reports whether a file name of properties_dir looks like a
// property file that is not read: *.yml, not hidden.
func isStrayFile(name string) bool {
	return strings.HasSuffix(name, ".yml") && !strings.HasPrefix(name, ".")
}

func (n *node) propertyOptions(known map[string]cert.Summary) property.Options {
	return property.Options{
		MaxNamesPerCertificate: n.cfg.MaxNamesPerOrder(),
		CertificateType: func(name string) (string, bool) {
			c, ok := known[name]
			if !ok {
				return "", false
			}
			return c.Type, true
		},
	}
}

// apply makes t the serving table: bootstrap certificates first, so that
// every property with a certificate name can complete a handshake, then the
// handshake index and the proxy; then it announces what changed. known are
// the stored certificates by name (certificatesByName), nil if unknown.
func (n *node) apply(ctx context.Context, t *property.Table, known map[string]cert.Summary) {
	n.applyTo(ctx, t, known, false)
}

// applyScoped is apply for a reload whose known certificates are only
// those named by the files that changed (certificatesOf): the bootstrap
// and tls.renew_automation look at the properties that changed only;
// the others were seen to by the load that made them.
func (n *node) applyScoped(ctx context.Context, t *property.Table, known map[string]cert.Summary) {
	n.applyTo(ctx, t, known, true)
}

func (n *node) applyTo(ctx context.Context, t *property.Table, known map[string]cert.Summary, scoped bool) {
	prev := n.table.Load()
	n.unapplied.Store(false)
	// Plain HTTP needs no certificate: the proxy takes the table first, so
	// a new property's HTTP routes do not wait for the store (issue 18: in
	// a store outage its host answered 421); its HTTPS waits for its
	// certificate, below.
	changed := t.Properties()
	if prev != nil {
		changed = changedProperties(prev, t)
	}
	// Unchanged properties are the cache's already (the same *Property).
	n.cache.SetProperties(changed)
	n.proxy.Update(t)
	if err := n.health.err(); err != nil {
		// The certificates are made when the store answers again: the
		// store's return reloads (unapplied).
		n.unapplied.Store(true)
		n.log.Warn("the store is unreachable: the properties' HTTP routes are applied; certificates they need are made when it answers again", zap.Error(err))
	} else if scoped {
		n.applyCertificates(ctx, tableOf(changed), known)
	} else {
		n.applyCertificates(ctx, t, known)
	}
	n.tls.SetProperties(t)
	n.table.Store(t)
	result := "ok"
	if len(t.Rejected()) > 0 {
		result = "rejected"
	}
	n.metrics.Reload(result)
	n.metrics.Rejected(len(t.Rejected()))
	n.log.Info("properties loaded", zap.Int("properties", len(t.Properties())), zap.Int("rejected", len(t.Rejected())))
	n.dropCached(prev, t)
	n.announce(ctx, prev, t)
	if prev != nil {
		// Hostnames may have changed, for the certificates of the
		// properties that changed only. At start the renewal loop's first
		// scan, once the node serves, schedules every certificate.
		n.rescheduleChanged(ctx, prev, t)
	}
	if prev != nil {
		n.saveLastGoodChanges(ctx, prev, t)
	} // at start, Run saves them all once the node serves (4.7 s of a first start with 100,000 files)
}

// rescheduleChanged has the renewal schedule the certificates of the
// properties that changed from prev to t: each read from the store when
// they are few, else all from one list (a reload that changed many files).
func (n *node) rescheduleChanged(ctx context.Context, prev, t *property.Table) {
	names := changedCertificates(prev, t)
	if len(names) <= maxCertificateReads {
		for name := range names {
			n.renewer.Changed(ctx, name)
		}
		return
	}
	list, err := n.certs.List(ctx)
	if err != nil {
		n.renewer.PropertiesChanged(ctx, prev, t)
		return
	}
	known := make(map[string]*cert.Certificate, len(list))
	for _, c := range list {
		known[c.Name] = c
	}
	n.renewer.PropertiesChangedKnown(ctx, prev, t, known)
}

// maxCertificateReads is how many certificates a reload reads one by one
// for the renewal schedule before it lists them all instead.
const maxCertificateReads = 16

// applyCertificates creates the bootstrap certificates t needs and
// follows tls.renew_automation; a failure leaves the reload unapplied, to
// be done again when the store answers.
func (n *node) applyCertificates(ctx context.Context, t *property.Table, known map[string]cert.Summary) {
	made, err := n.certs.BootstrapKnown(ctx, t, known)
	for _, c := range made {
		n.log.Info("self-signed bootstrap certificate created", zap.String("certificate", c.Name),
			zap.Strings("names", c.SubjectNames), zap.String("auto_renew", c.AutoRenew))
	}
	if err != nil {
		n.unapplied.Store(true)
		n.log.Error("bootstrap certificates", zap.Error(err))
	}
	switched, err := n.certs.FollowAutomation(ctx, t, known)
	for _, c := range switched {
		n.log.Info("tls.renew_automation is on: the certificate now renews by ACME", zap.String("certificate", c.Name),
			zap.String("auto_renew", c.AutoRenew), zap.String("source", c.Source))
	}
	if err != nil {
		n.unapplied.Store(true)
		n.log.Error("following tls.renew_automation", zap.Error(err))
	}
}

// announce emits property.loaded for each new or changed property and
// property.rejected for each rejection that is new or has new errors. At
// start (no previous table) the loaded properties are one event: a node
// with 100,000 properties announces its start, not each of them.
func (n *node) announce(ctx context.Context, prev, t *property.Table) {
	if ps := t.Properties(); prev == nil && len(ps) > 0 {
		_, _ = n.events.Emit(ctx, events.Event{Type: events.PropertyLoaded,
			Detail: fmt.Sprintf("%d properties loaded from %s at start", len(ps), n.cfg.PropertiesDir)})
	}
	for _, p := range t.Properties() {
		if prev == nil {
			break // announced above
		}
		if old := prev.ByName(p.Name); old != nil && old.Digest() == p.Digest() {
			continue
		}
		_, _ = n.events.Emit(ctx, events.Event{Type: events.PropertyLoaded, Property: p.Name,
			Detail: "loaded from " + p.File + ": " + strings.Join(p.Hostnames, ", ")})
	}
	before := map[string]string{}
	for _, r := range prev.Rejected() {
		before[r.File] = joinErrors(r.Errors)
	}
	for _, r := range t.Rejected() {
		detail := joinErrors(r.Errors)
		if before[r.File] == detail {
			continue
		}
		name := ""
		if r.Serving != nil {
			name = r.Serving.Name
			detail += " (the last good version keeps serving)"
		}
		_, _ = n.events.Emit(ctx, events.Event{Type: events.PropertyRejected, Property: name, Detail: detail})
	}
}

func joinErrors(errs []error) string {
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// watchProperties asks for a reload when a file of properties_dir changes,
// after a short quiet time so that an editor's save is one reload.
func (n *node) watchProperties() *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(n.cfg.PropertiesDir)
	}
	if err != nil {
		n.log.Warn("cannot watch properties_dir; reload with SIGHUP", zap.Error(err))
		if w != nil {
			w.Close()
		}
		return nil
	}
	go func() {
		const quiet = 200 * time.Millisecond
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					timer.Stop()
					return
				}
				if property.IsPropertyFile(ev.Name) {
					timer.Reset(quiet)
				} else if ev.Has(fsnotify.Create) && isStrayFile(filepath.Base(ev.Name)) {
					// Said when it appears (a move into the directory is a
					// Create too), not at the next reload (issue 18).
					n.log.Warn(strayFileMessage, zap.String("file", filepath.Base(ev.Name)))
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				n.log.Warn("watching properties_dir", zap.Error(err))
			case <-timer.C:
				select {
				case n.reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	return w
}

// dropCached removes the cached objects of the properties that t no longer
// has; a property whose settings changed keeps the objects still valid.
func (n *node) dropCached(prev, t *property.Table) {
	for _, p := range prev.Properties() {
		if t.ByName(p.Name) == nil {
			if k := n.cache.DropProperty(p.Name); k > 0 {
				n.log.Info("property removed: its cached objects are dropped", zap.String("property", p.Name), zap.Int("objects", k))
			}
		}
	}
}
