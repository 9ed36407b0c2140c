package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/renew"
	"go.uber.org/zap"
)

// Issuer runs ACME work for the API; nil answers 501.
type Issuer interface {
	// Request creates a certificate to be issued by ACME and returns it
	// pending; issuance goes on in the background.
	Request(ctx context.Context, o renew.Order) (*cert.Certificate, error)
	// Renew schedules an immediate renewal.
	Renew(ctx context.Context, idOrName string) (*cert.Certificate, error)
}

// CertRequest is the body of POST /api/v1/certificates/request.
type CertRequest struct {
	Name             string   `json:"name"`
	Challenge        string   `json:"challenge"`
	Authority        string   `json:"authority"`
	CommonName       string   `json:"common_name"`
	AlternativeNames []string `json:"alternative_names"`
}

// Config is what the API serves from.
type Config struct {
	Token      string
	Certs      *cert.Certs
	Properties func() *property.Table
	Events     *events.Log
	Issuer     Issuer
	Metrics    http.Handler
	// Ready returns the checks that make the node unready when they fail.
	Ready func(ctx context.Context) map[string]error
	// Degraded returns the checks that, failing, leave the node ready but
	// degraded (an unreachable store: the node serves from memory).
	Degraded func(ctx context.Context) map[string]error
	// Cache is the node's cache; nil: the cache endpoints answer 501.
	Cache Cache
	// Backup writes a consistent copy of the store.
	Backup func(w io.Writer) (int64, error)
	// OriginHealth reports the health of a property's origins by URL.
	OriginHealth func(property string) map[string]bool
	// History is the node's per-minute cache history; nil: GET
	// /api/v1/cache/history answers 501.
	History *History
	// Fleet lists the nodes of an etcd fleet; nil: a single node.
	Fleet  func(ctx context.Context) ([]FleetNode, error)
	Logger *zap.Logger
	Now    func() time.Time
}

// maxBody bounds every request body; certificates with chains fit easily.
const maxBody = 1 << 20

// Handler returns the admin API.
func Handler(c Config) http.Handler {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	a := &api{c: c}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", a.readyz)
	if c.Metrics != nil {
		mux.Handle("GET /metrics", c.Metrics)
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/certificates", a.listCertificates)
	api.HandleFunc("POST /api/v1/certificates", a.createCertificate)
	api.HandleFunc("POST /api/v1/certificates/request", a.requestCertificate)
	api.HandleFunc("GET /api/v1/certificates/{id}", a.getCertificate)
	api.HandleFunc("PATCH /api/v1/certificates/{id}", a.patchCertificate)
	api.HandleFunc("DELETE /api/v1/certificates/{id}", a.deleteCertificate)
	api.HandleFunc("POST /api/v1/certificates/{id}/renew", a.renewCertificate)
	api.HandleFunc("GET /api/v1/certificates/{id}/versions", a.certificateVersions)
	api.HandleFunc("POST /api/v1/certificates/{id}/versions", a.rotateCertificate)
	api.HandleFunc("POST /api/v1/certificates/{id}/rollback", a.rollbackCertificate)
	api.HandleFunc("GET /api/v1/properties", a.listProperties)
	api.HandleFunc("GET /api/v1/properties/{name}", a.getProperty)
	api.HandleFunc("GET /api/v1/events", a.listEvents)
	api.HandleFunc("GET /api/v1/backup", a.backup)
	api.HandleFunc("POST /api/v1/cache/purge", a.purgeCache)
	api.HandleFunc("GET /api/v1/cache", a.cacheStats)
	api.HandleFunc("GET /api/v1/cache/history", a.cacheHistory)
	api.HandleFunc("GET /api/v1/fleet", a.fleet)
	// Profiling a live node (issue 6), behind the same token.
	api.HandleFunc("GET /debug/pprof/", pprof.Index)
	api.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	api.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	api.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	api.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if allowed := allowedMethods(api, r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
			return
		}
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	// The dashboard: its files need no token (they hold no data); every
	// call the page makes does.
	ui := dashboard()
	mux.Handle("GET /{$}", ui)
	mux.Handle("GET /ui/", ui)
	mux.Handle("/api/", a.auth(api))
	mux.Handle("/debug/pprof/", a.auth(api))
	return mux
}

type api struct{ c Config }

// allowedMethods are the methods with an endpoint at r's path: the
// catch-all that answers 404 in JSON also hides the mux's own 405.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/api/" {
			out = append(out, m)
		}
	}
	return out
}

func (a *api) auth(next http.Handler) http.Handler {
	want := []byte(a.c.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 6750, RFC 9110 §11.1).
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got = strings.TrimLeft(got, " ")
		if a.c.Token == "" || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edge"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token: send Authorization: Bearer <the token in admin.token_file>")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ready := true
	if a.c.Ready != nil {
		for name, err := range a.c.Ready(r.Context()) {
			checks[name] = "ok"
			if err != nil {
				checks[name] = err.Error()
				ready = false
			}
		}
	}
	degraded := map[string]string{}
	if a.c.Degraded != nil {
		for name, err := range a.c.Degraded(r.Context()) {
			checks[name] = "ok"
			if err != nil {
				checks[name] = err.Error()
				degraded[name] = err.Error()
			}
		}
	}
	// Rejected property files leave the node ready (the others serve, and
	// a rejected file its last good version) but degraded, and are named
	// (issue 11).
	rejected := []RejectedView{}
	if a.c.Properties != nil {
		for _, r := range a.c.Properties().Rejected() {
			rejected = append(rejected, RejectedView{File: r.File, LoadError: errStrings(r.Errors), Serving: r.Serving != nil})
		}
	}
	if len(rejected) > 0 {
		msg := fmt.Sprintf("%d property files rejected (see rejected_properties)", len(rejected))
		checks["property_files"], degraded["property_files"] = msg, msg
	} else {
		checks["property_files"] = "ok"
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	body := map[string]any{"ready": ready, "degraded": len(degraded) > 0, "checks": checks, "rejected_properties": rejected}
	if a.c.Cache != nil {
		s := a.c.Cache.Stats()
		body["cache"] = map[string]any{"memory": s.Memory, "disk": s.Disk, "memory_size": s.MemorySize, "disk_size": s.DiskSize}
	}
	writeJSON(w, code, body)
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is the shape of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = errCode, msg
	writeJSON(w, code, b)
}

// fail maps an error to its answer: input errors 400, missing 404,
// conflicts 409, anything else 500 (logged, not shown).
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ie *cert.InputError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body: larger than %d bytes", mbe.Limit))
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, "invalid", ie.Error())
	case errors.Is(err, cert.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, cert.ErrExists):
		writeError(w, http.StatusConflict, "exists", err.Error())
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		// The store did not answer in time (etcd down): nothing was
		// written, and the same request may be sent again.
		a.c.Logger.Warn("admin API: the store did not answer", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the store did not answer in time; nothing was changed: retry when /readyz no longer reports the store degraded")
	default:
		a.c.Logger.Error("admin API", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", "internal error; see the node's log")
	}
}

// decode reads a JSON body strictly into v: unknown fields, wrong types,
// trailing data and oversized bodies are input errors naming the field.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &cert.InputError{Field: "Content-Type", Msg: fmt.Sprintf("%q: send application/json", ct)}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return &cert.InputError{Field: "body", Msg: "holds more than one JSON value"}
	}
	return nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return &cert.InputError{Field: field, Msg: fmt.Sprintf("must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &cert.InputError{Field: "body", Msg: "malformed JSON: it ends before the value is complete"}
	case errors.As(err, &se):
		return &cert.InputError{Field: "body", Msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)}
	case errors.As(err, &mbe):
		return tooLarge{mbe, &cert.InputError{Field: "body", Msg: fmt.Sprintf("larger than %d bytes", mbe.Limit)}}
	case errors.Is(err, io.EOF):
		return &cert.InputError{Field: "body", Msg: "empty: send a JSON object"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &cert.InputError{Field: strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), Msg: "unknown field"}
	}
	return &cert.InputError{Field: "body", Msg: err.Error()}
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "a list"
	case "bool":
		return "true or false"
	case "int", "int64", "uint64":
		return "a number"
	case "struct", "map":
		return "a JSON object"
	}
	return "a " + k
}

// tooLarge is an oversized body: an input error answered 413.
type tooLarge struct {
	mbe *http.MaxBytesError
	*cert.InputError
}

func (e tooLarge) Unwrap() []error { return []error{e.mbe, e.InputError} }
