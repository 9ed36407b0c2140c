// Package admin serves the admin API on listen.admin (SPEC §7): health,
// readiness and metrics without a token; everything under /api/ with
// "Authorization: Bearer <token>". JSON in and out; every error is
// {"error": {"code", "message"}} with a 4xx or 5xx status, and a refused
// request changes nothing stored.
package admin
