// Package acme obtains certificates from an ACME CA with HTTP-01: the
// certmagic/acmez issuer (Client), the certmagic.Storage adapter that keeps
// the account and challenge tokens in the store (so every node of a fleet
// answers every challenge), the preflight check that spends no order when a
// hostname does not reach this edge, and the mapping of CA problems to a
// status_detail a person can act on (Describe).
//
// It issues; it does not decide when. The renewal loop (package renew)
// decides.
package acme
