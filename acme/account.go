package acme

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"
)

// The ACME account's contact (issue 11): certmagic takes the account email
// from its ACMEIssuer only in PreCheck, which Issue does not call, so Edge
// registered its accounts with no contact. syncAccount runs once before the
// first order: it calls PreCheck so that acme.email is the contact of a new
// account, and when acme.email changed since the account was registered it
// updates that account's contact at the CA (RFC 8555 §7.3.2) and files it
// under the new email, rather than registering a second account.

// syncAccount prepares the account once per process; a failure is retried
// at the next order.
func (a *Client) syncAccount(ctx context.Context) error {
	a.acctMu.Lock()
	defer a.acctMu.Unlock()
	if a.acctSynced || a.email == "" {
		return nil
	}
	if err := a.issuer.PreCheck(ctx, nil, false); err != nil {
		return fmt.Errorf("ACME account: %w", err)
	}
	if err := a.moveAccount(ctx); err != nil {
		// certmagic registers a new account with the contact instead.
		a.log.Warn("updating the ACME account's contact failed; a new account will be registered", zap.Error(err))
	}
	a.acctSynced = true
	return nil
}

// accountKeys are certmagic's storage keys of the account filed under
// email: its registration (JSON) and its private key (PEM). They mirror
// certmagic's storageSafeUserKey (account.go of v0.25), pinned by the test
// that restarts a node with another email.
func (a *Client) accountKeys(email string) (reg, key string) {
	email = strings.ToLower(strings.TrimSpace(email))
	user := email
	if at := strings.IndexByte(email, '@'); at > 0 {
		user = email[:at]
	} else if at == 0 {
		user = email[1:]
	}
	dir := path.Join(a.usersPrefix(), certmagic.StorageKeys.Safe(email))
	return path.Join(dir, certmagic.StorageKeys.Safe(user)+".json"), path.Join(dir, certmagic.StorageKeys.Safe(user)+".key")
}

func (a *Client) usersPrefix() string {
	return path.Join("acme", certmagic.StorageKeys.Safe(a.issuer.IssuerKey()), "users")
}

// moveAccount updates the contact of the most recent account of this CA
// when none is filed under the configured email yet.
func (a *Client) moveAccount(ctx context.Context) error {
	regKey, keyKey := a.accountKeys(a.email)
	if _, err := a.storage.Load(ctx, regKey); err == nil {
		return nil // already filed under this email
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	acct, err := a.latestAccount(ctx)
	if err != nil || acct == nil {
		return err // nil, nil: no account yet; certmagic registers one
	}
	old := strings.Join(acct.Contact, ", ")
	acct.Contact = []string{"mailto:" + strings.ToLower(strings.TrimSpace(a.email))}
	cl := &acme.Client{Directory: a.directory, HTTPClient: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: a.roots}}}}
	if _, err := cl.GetDirectory(ctx); err != nil {
		return err
	}
	location, key := acct.Location, acct.PrivateKey
	updated, err := cl.UpdateAccount(ctx, *acct)
	if err != nil {
		return fmt.Errorf("updating the contact of %s: %w", location, err)
	}
	updated.Location, updated.PrivateKey = location, key
	regJSON, err := json.MarshalIndent(updated, "", "\t")
	if err != nil {
		return err
	}
	keyPEM, err := certmagic.PEMEncodePrivateKey(key)
	if err != nil {
		return err
	}
	if err := a.storage.Store(ctx, keyKey, keyPEM); err != nil {
		return err
	}
	if err := a.storage.Store(ctx, regKey, regJSON); err != nil {
		return err
	}
	a.log.Info("ACME account contact updated", zap.String("account", location), zap.String("from", old),
		zap.Strings("to", updated.Contact))
	return nil
}

// latestAccount loads the account of this CA whose registration was
// written last, or nil when there is none.
func (a *Client) latestAccount(ctx context.Context) (*acme.Account, error) {
	dirs, err := a.storage.List(ctx, a.usersPrefix(), false)
	if errors.Is(err, fs.ErrNotExist) || len(dirs) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var regKey, keyKey string
	var newestAt time.Time
	for _, d := range dirs {
		files, err := a.storage.List(ctx, d, false)
		if err != nil {
			continue
		}
		var reg, key string
		for _, f := range files {
			if strings.HasSuffix(f, ".json") {
				reg = f
			} else if strings.HasSuffix(f, ".key") {
				key = f
			}
		}
		if reg == "" || key == "" {
			continue
		}
		if info, err := a.storage.Stat(ctx, reg); err == nil && (regKey == "" || info.Modified.After(newestAt)) {
			regKey, keyKey, newestAt = reg, key, info.Modified
		}
	}
	if regKey == "" {
		return nil, nil
	}
	reg, err := a.storage.Load(ctx, regKey)
	if err != nil {
		return nil, err
	}
	key, err := a.storage.Load(ctx, keyKey)
	if err != nil {
		return nil, err
	}
	acct := new(acme.Account)
	if err := json.Unmarshal(reg, acct); err != nil {
		return nil, fmt.Errorf("account %s: %w", regKey, err)
	}
	if acct.PrivateKey, err = certmagic.PEMDecodePrivateKey(key); err != nil {
		return nil, fmt.Errorf("account %s: %w", keyKey, err)
	}
	if acct.Location == "" {
		return nil, nil
	}
	return acct, nil
}
