package node

import (
	"context"
	"strings"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/property"
	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// loadProperties loads the properties at start; an unreadable directory is
// fatal here, while a bad file only is rejected.
func (n *node) loadProperties(ctx context.Context) error {
	known := n.certificatesByName(ctx)
	t, err := property.LoadDir(n.cfg.PropertiesDir, nil, n.propertyOptions(known))
	if err != nil {
		n.metrics.Reload("error")
		return err
	}
	n.apply(ctx, t, known)
	releaseStartGarbage(len(t.Properties()))
	return nil
}

// reloadProperties rebuilds the table; on any error the last good table
// keeps serving.
func (n *node) reloadProperties(ctx context.Context) {
	known := n.certificatesByName(ctx)
	t, err := property.LoadDir(n.cfg.PropertiesDir, n.table.Load(), n.propertyOptions(known))
	if err != nil {
		n.metrics.Reload("error")
		n.log.Error("property reload failed; the last good properties keep serving", zap.Error(err))
		return
	}
	n.apply(ctx, t, known)
}

func (n *node) propertyOptions(known map[string]*cert.Certificate) property.Options {
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
func (n *node) apply(ctx context.Context, t *property.Table, known map[string]*cert.Certificate) {
	prev := n.table.Load()
	made, err := n.certs.BootstrapKnown(ctx, t, known)
	for _, c := range made {
		n.log.Info("self-signed bootstrap certificate created", zap.String("certificate", c.Name),
			zap.Strings("names", c.SubjectNames), zap.String("auto_renew", c.AutoRenew))
	}
	if err != nil {
		n.log.Error("bootstrap certificates", zap.Error(err))
	}
	n.tls.SetProperties(t)
	n.proxy.Update(t)
	n.table.Store(t)
	result := "ok"
	if len(t.Rejected()) > 0 {
		result = "rejected"
	}
	n.metrics.Reload(result)
	n.log.Info("properties loaded", zap.Int("properties", len(t.Properties())), zap.Int("rejected", len(t.Rejected())))
	n.announce(ctx, prev, t)
	n.renewer.PropertiesChangedKnown(ctx, prev, t, known) // hostnames may have changed
}

// announce emits property.loaded for each new or changed property and
// property.rejected for each rejection that is new or has new errors.
func (n *node) announce(ctx context.Context, prev, t *property.Table) {
	for _, p := range t.Properties() {
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
