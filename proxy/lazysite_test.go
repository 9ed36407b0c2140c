package proxy

import "github.com/edge-cdn/edge/property"

// siteFor returns p's site in the current routes, building it as p's
// first request would.
func (s *Server) siteFor(p *property.Property) *site { return s.site(s.routes.Load(), p) }
