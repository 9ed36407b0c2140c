package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestBearerSchemeCaseInsensitive: the token is accepted whatever the case
// of the scheme (RFC 6750); a wrong token or scheme is not.
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	srv := httptest.NewServer(Handler(Config{Token: tok}))
	defer srv.Close()
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"Bearer " + tok, 404}, // past the check: no such endpoint
		{"bearer " + tok, 404},
		{"BEARER " + tok, 404},
		{"Bearer  " + tok, 404},
		{"Bearer " + tok + "x", 401},
		{"Basic " + tok, 401},
		{tok, 401},
		{"", 401},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/nothing-here", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %.12q…: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
}
