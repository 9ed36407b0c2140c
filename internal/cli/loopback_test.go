package cli

import (
	"net/http"
	"net/http/httptest"
)

func newLoopbackServer(h http.HandlerFunc) *httptest.Server { return httptest.NewServer(h) }
