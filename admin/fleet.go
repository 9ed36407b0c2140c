package admin

import (
	"context"
	"net/http"
	"time"
)

// FleetNode is one node of an etcd fleet as GET /api/v1/fleet shows it:
// each node writes its record every few seconds; one that stopped writing
// is shown not alive for a day, then forgotten.
type FleetNode struct {
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	SeenAt    time.Time `json:"seen_at"`
	Alive     bool      `json:"alive"`
	// LastRenewal is when this node last issued or renewed a certificate
	// (since its record was first written); LastPurge when a purge sent
	// to it last reached the fleet (within the purge retention, 7 days).
	LastRenewal *time.Time `json:"last_renewal"`
	LastPurge   *time.Time `json:"last_purge"`
}

func (a *api) fleet(w http.ResponseWriter, r *http.Request) {
	if a.c.Fleet == nil {
		writeJSON(w, http.StatusOK, map[string]any{"fleet": false, "nodes": []FleetNode{}})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	nodes, err := a.c.Fleet(ctx)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if nodes == nil {
		nodes = []FleetNode{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"fleet": true, "nodes": nodes})
}
