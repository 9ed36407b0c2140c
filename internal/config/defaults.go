package config

const (
	letsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

var defaults = map[string]any{
	"node.name":                  "",
	"node.edge_hostname":         "",
	"listen.http":                ":80",
	"listen.https":               ":443",
	"listen.admin":               "127.0.0.1:9180",
	"listen.https_redirect_port": 0,
	"data_dir":                   "/var/lib/edge",
	"properties_dir":             "/etc/edge/properties",
	"store.backend":              "bbolt",
	"store.etcd.endpoints":       []string{},
	"store.etcd.prefix":          "/edge/",
	"store.etcd.username":        "",
	"store.etcd.password":        "",
	"store.etcd.tls.ca":          "",
	"store.etcd.tls.cert":        "",
	"store.etcd.tls.key":         "",
	"store.etcd.dial_timeout":    "5s",
	"acme.directory":             letsEncrypt,
	"acme.staging_directory":     letsEncryptStaging,
	"acme.email":                 "",
	"acme.agree_tos":             false,
	"acme.ca_roots":              "",
	"acme.profile":               "",
	"acme.challenge_port":        80,
	"acme.resolver":              "",
	"renewal.enabled":            true,
	"renewal.renew_before":       "25d",
	"renewal.check_interval":     "10m",
	"renewal.ari":                true,
	"preflight.enabled":          true,
	"notify.webhooks":            []any{},
	"notify.expiry_warning":      "7d",
	"admin.token_file":           "",
	"log.level":                  "info",
	"log.format":                 "json",
	"log.access":                 true,
	"limits.read_header_timeout": "10s",
	"limits.idle_timeout":        "120s",
	"limits.max_header_bytes":    64 << 10,
	"limits.shutdown_timeout":    "30s",
}
