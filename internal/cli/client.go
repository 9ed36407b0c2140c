package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/internal/config"
)

// apiClient talks to a running node's admin API, with the address and
// token from the same config file the node uses.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(cfg *config.Config) (*apiClient, error) {
	host, port, err := net.SplitHostPort(cfg.Listen.Admin)
	if err != nil {
		return nil, fmt.Errorf("listen.admin: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	token, err := readToken(cfg.Admin.TokenFile)
	if err != nil {
		return nil, err
	}
	return &apiClient{base: "http://" + net.JoinHostPort(host, port), token: token,
		http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	tok := strings.TrimSpace(string(b))
	if err != nil {
		return "", fmt.Errorf("cannot read the admin token (%v): run this as a user who can read admin.token_file, or start edge serve once to create it", err)
	}
	return tok, nil
}

// apiError is an error answer of the API.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// do sends a request and decodes a JSON answer into out (if not nil), or
// copies the raw body to raw (if not nil).
func (c *apiClient) do(ctx context.Context, method, path string, body any, out any, raw io.Writer) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return fmt.Errorf("cannot reach the edge admin API at %s (is edge serve running with this config?): %v", c.base, op.Err)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		var eb admin.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
			return &apiError{status: resp.StatusCode, code: eb.Error.Code, msg: eb.Error.Message}
		}
		return &apiError{status: resp.StatusCode, msg: fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))}
	}
	if raw != nil {
		if s, ok := raw.(interface{ SetTotal(int64) }); ok && resp.ContentLength >= 0 {
			s.SetTotal(resp.ContentLength)
		}
		_, err = io.Copy(raw, resp.Body)
		return err
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}
