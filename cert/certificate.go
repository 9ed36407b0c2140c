package cert

import (
	"time"
)

// Types of certificate.
const (
	TypeServer = "server" // served to clients; may renew automatically
	TypeCA     = "ca"     // a trust anchor; never renewed
)

// Renewal automation settings.
const (
	AutoRenewACME = "acme"
	AutoRenewNone = "none"
)

// Statuses (SPEC §6).
const (
	StatusPending = "pending" // no CA-issued certificate yet; a bootstrap may be serving
	StatusActive  = "active"  // a valid certificate is serving
	StatusFailed  = "failed"  // no valid certificate; the last attempt failed
	StatusExpired = "expired"
)

// Sources of a version.
const (
	SourceSelfSigned = "self_signed"
	SourceUpload     = "upload"
	SourceACME       = "acme"
)

// Certificate is the record of one named certificate: its metadata and the
// facts of its current version. It is what the admin API shows, less the
// properties using it, which come from the property table.
type Certificate struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	AutoRenew    string    `json:"auto_renew"`
	Status       string    `json:"status"`
	StatusDetail string    `json:"status_detail"`
	SubjectNames []string  `json:"subject_names"`
	Issuer       string    `json:"issuer"`
	NotBefore    time.Time `json:"not_before"`
	NotAfter     time.Time `json:"not_after"`
	Challenge    string    `json:"challenge,omitempty"`
	Authority    string    `json:"authority,omitempty"`
	Version      int       `json:"version"`
	Source       string    `json:"source"`
	// Bootstrap marks a self-signed certificate that Edge made for a
	// property naming a certificate that did not exist: an upload under
	// its name replaces it instead of being refused.
	Bootstrap  bool      `json:"bootstrap,omitempty"`
	CommonName string    `json:"common_name,omitempty"`
	AltNames   []string  `json:"alternative_names,omitempty"`
	Renewal    Renewal   `json:"renewal"`
	Notices    Notices   `json:"notices"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Renewal is the renewal state of a certificate.
type Renewal struct {
	State         string     `json:"state"`
	RenewAt       *time.Time `json:"renew_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	Attempts      int        `json:"attempts"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	LastError     string     `json:"last_error"`
	ARIWindow     *Window    `json:"ari_window"`
	// ARISelectedAt is the random moment chosen inside ARIWindow;
	// ARINextCheckAt is when to ask the CA again (its Retry-After).
	ARISelectedAt  *time.Time `json:"ari_selected_at,omitempty"`
	ARINextCheckAt *time.Time `json:"ari_next_check_at,omitempty"`
	// Forced is set by a renew command: renew at once, whatever the
	// schedule.
	Forced bool   `json:"forced,omitempty"`
	Reason string `json:"reason,omitempty"` // why it is (or was) due
}

// Notices records which version's expiry has been announced, so that each
// announcement is made once.
type Notices struct {
	ExpiringVersion int `json:"expiring_version,omitempty"`
	ExpiredVersion  int `json:"expired_version,omitempty"`
}

// Renewal states.
const (
	RenewalNone      = "none"      // does not renew automatically
	RenewalScheduled = "scheduled" // waits for renew_at
	RenewalRenewing  = "renewing"  // an attempt is under way
	RenewalBackoff   = "backoff"   // the last attempt failed; next_attempt_at says when again
)

// Window is an ACME Renewal Information window.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Version is one stored issue of a certificate: the PEM chain (leaf first)
// and its private key.
type Version struct {
	Version      int       `json:"version"`
	CertPEM      string    `json:"certificate_pem"`
	KeyPEM       string    `json:"private_key_pem,omitempty"`
	SubjectNames []string  `json:"subject_names"`
	Issuer       string    `json:"issuer"`
	NotBefore    time.Time `json:"not_before"`
	NotAfter     time.Time `json:"not_after"`
	Source       string    `json:"source"`
	// RollbackOf is the kept version this one is a copy of, when an
	// operator rolled back to it.
	RollbackOf int       `json:"rollback_of,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// KeepVersions is how many versions of a certificate are kept at least.
const KeepVersions = 10
