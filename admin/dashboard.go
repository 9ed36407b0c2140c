package admin

import (
	"embed"
	"io/fs"
	"net/http"
)

// The dashboard (issue 21): static files embedded in the binary, no
// external script, font or style; the page calls the API with fetch and
// the token the operator types, kept in the tab's sessionStorage.
//
//go:embed ui
var uiFiles embed.FS

// DashboardCSP is the dashboard's Content-Security-Policy: only its own
// files and the admin API on the same origin, no inline script or style,
// no framing, no form posting anywhere.
const DashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// dashboard serves / (the page) and /ui/ (its files).
func dashboard() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", DashboardCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/" || r.URL.Path == "/ui/" || r.URL.Path == "/ui/index.html" {
			h.Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(index)
			return
		}
		files.ServeHTTP(w, r)
	})
}
