package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/property"
)

// PropertyView is a property as the API shows it.
type PropertyView struct {
	Name        string         `json:"name"`
	File        string         `json:"file"`
	Hostnames   []string       `json:"hostnames"`
	Certificate string         `json:"certificate"`
	TLS         TLSView        `json:"tls"`
	Origins     []OriginView   `json:"origins"`
	OriginHost  string         `json:"origin_host,omitempty"`
	LoadError   []string       `json:"load_error,omitempty"`
	Timeouts    map[string]any `json:"timeouts"`
	// Cache is the property's cache.enabled.
	Cache bool `json:"cache"`
}

// TLSView is a property's tls section, with the property file's keys
// (issue 11: the API showed Go's field names).
type TLSView struct {
	Certificate     string `json:"certificate"`
	RenewAutomation bool   `json:"renew_automation"`
	RedirectHTTP    bool   `json:"redirect_http"`
	HSTS            string `json:"hsts"`
}

// OriginView is one origin with its health.
type OriginView struct {
	URL     string `json:"url"`
	Weight  int    `json:"weight"`
	Healthy *bool  `json:"healthy,omitempty"`
}

// RejectedView is a property file that does not load. In the property
// list, only those with no version serving; in /readyz, every one, with
// whether its last good version serves.
type RejectedView struct {
	File      string   `json:"file"`
	LoadError []string `json:"load_error"`
	Serving   bool     `json:"serving_last_good"`
}

func (a *api) propertyView(p *property.Property, t *property.Table) PropertyView {
	v := PropertyView{Name: p.Name, File: p.File, Hostnames: p.Hostnames, Certificate: p.TLS.Certificate,
		TLS:        TLSView{Certificate: p.TLS.Certificate, RenewAutomation: p.TLS.RenewAutomation, RedirectHTTP: p.TLS.RedirectHTTP, HSTS: p.TLS.HSTS},
		OriginHost: p.OriginHost, Cache: p.Cache.Enabled,
		Timeouts: map[string]any{"connect": p.Timeouts.Connect.String(), "response_header": p.Timeouts.ResponseHeader.String(), "idle": p.Timeouts.Idle.String()}}
	var health map[string]bool
	if a.c.OriginHealth != nil {
		health = a.c.OriginHealth(p.Name)
	}
	for _, o := range p.Origins {
		ov := OriginView{URL: o.URL.String(), Weight: o.Weight}
		if h, ok := health[ov.URL]; ok {
			ov.Healthy = &h
		}
		v.Origins = append(v.Origins, ov)
	}
	for _, r := range t.Rejected() {
		if r.Serving == p {
			v.LoadError = errStrings(r.Errors)
		}
	}
	return v
}

func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func (a *api) listProperties(w http.ResponseWriter, r *http.Request) {
	t := a.c.Properties()
	out := []PropertyView{}
	for _, p := range t.Properties() {
		out = append(out, a.propertyView(p, t))
	}
	rejected := []RejectedView{}
	for _, r := range t.Rejected() {
		if r.Serving == nil {
			rejected = append(rejected, RejectedView{File: r.File, LoadError: errStrings(r.Errors)})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"properties": out, "rejected": rejected})
}

func (a *api) getProperty(w http.ResponseWriter, r *http.Request) {
	t := a.c.Properties()
	p := t.ByName(r.PathValue("name"))
	if p == nil {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("property %q not found", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, a.propertyView(p, t))
}

// listEvents answers recent events, newest last. since is an RFC 3339
// time or the seq of the last event seen.
func (a *api) listEvents(w http.ResponseWriter, r *http.Request) {
	since := r.URL.Query().Get("since")
	var err error
	var evs []events.Event
	switch {
	case since == "":
		evs, err = a.c.Events.After(r.Context(), 0, 0)
	default:
		if n, perr := strconv.ParseUint(since, 10, 64); perr == nil {
			evs, err = a.c.Events.After(r.Context(), n, 0)
		} else if t, perr := time.Parse(time.RFC3339, since); perr == nil {
			evs, err = a.c.Events.Since(r.Context(), t)
		} else {
			a.fail(w, r, inputErr("since", "%q: give an RFC 3339 time (2026-01-02T15:04:05Z) or an event seq", since))
			return
		}
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if evs == nil {
		evs = []events.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

// backup streams a consistent copy of the store.
func (a *api) backup(w http.ResponseWriter, r *http.Request) {
	if a.c.Backup == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this store backend has no file backup")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="edge.db"`)
	if _, err := a.c.Backup(sizedResponse{w}); err != nil {
		a.c.Logger.Error("backup failed")
		panic(http.ErrAbortHandler) // cut the stream: a partial copy must not look whole
	}
}

// sizedResponse sends the size the backup announces (store.Sizer) as its
// Content-Length.
type sizedResponse struct{ http.ResponseWriter }

func (s sizedResponse) SetSize(n int64) {
	s.Header().Set("Content-Length", strconv.FormatInt(n, 10))
}
