package admin

import (
	"context"
	"errors"
	"net/http"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/cert"
)

// Cache is what the API needs of the node's cache: purges (which the node
// also sends to its fleet) and figures.
type Cache interface {
	Purge(ctx context.Context, p cache.Purge) (cache.PurgeResult, error)
	Stats() cache.Stats
}

// PurgeRequest is the body of POST /api/v1/cache/purge (SPEC §11).
type PurgeRequest struct {
	Property string   `json:"property"`
	URLs     []string `json:"urls"`
	Prefixes []string `json:"prefixes"`
	Tags     []string `json:"tags"`
	All      bool     `json:"all"`
	Soft     bool     `json:"soft"`
}

// ErrFleet is wrapped by a purge that was applied on this node but could
// not be sent to the rest of the fleet.
var ErrFleet = errors.New("not sent to the fleet")

// ErrNoProperty is wrapped by a purge naming a property that the node does
// not serve and no other node can (a single node): 404.
var ErrNoProperty = errors.New("no such property")

// ErrNotServedHere is wrapped by a purge naming a property this node does
// not serve, recorded for a fleet where another node may serve it: the
// answer is 200 with the error's text as its note.
var ErrNotServedHere = errors.New("not served here")

// purgeAnswer is the body of a purge's answer.
type purgeAnswer struct {
	cache.PurgeResult
	Note string `json:"note,omitempty"`
}

func (a *api) purgeCache(w http.ResponseWriter, r *http.Request) {
	if a.c.Cache == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node has no cache")
		return
	}
	var b PurgeRequest
	if err := decode(r, &b); err != nil {
		a.fail(w, r, err)
		return
	}
	res, err := a.c.Cache.Purge(r.Context(), cache.Purge{Property: b.Property, URLs: b.URLs, Prefixes: b.Prefixes,
		Tags: b.Tags, All: b.All, Soft: b.Soft})
	switch {
	case errors.Is(err, cache.ErrBadPurge):
		a.fail(w, r, &cert.InputError{Field: "body", Msg: err.Error()})
	case errors.Is(err, ErrFleet):
		writeError(w, http.StatusServiceUnavailable, "fleet_unreachable", err.Error())
	case errors.Is(err, ErrNoProperty):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrNotServedHere):
		writeJSON(w, http.StatusOK, purgeAnswer{PurgeResult: res, Note: err.Error()})
	case err != nil:
		a.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func (a *api) cacheStats(w http.ResponseWriter, r *http.Request) {
	if a.c.Cache == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node has no cache")
		return
	}
	writeJSON(w, http.StatusOK, a.c.Cache.Stats())
}
