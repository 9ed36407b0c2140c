// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package h2srv

import "net/http"

// From x/net/http2's transport.go (not forked).
func strSliceContains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// From x/net/http2's client_priority_go126.go: before Go 1.27 the server
// keeps the round-robin write scheduler.
func clientPriorityDisabled(_ *http.Server) bool {
	return true
}
