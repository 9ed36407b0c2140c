package property

import "github.com/edge-cdn/edge/internal/yamlfield"

// fileSchema is the YAML layout of a property file. Every key is listed here;
// any other key is an error.
type fileSchema struct {
	Name        string         `yaml:"name"`
	Hostnames   []string       `yaml:"hostnames"`
	Origins     []originSchema `yaml:"origins"`
	OriginHost  string         `yaml:"origin_host"`
	TLS         tlsSchema      `yaml:"tls"`
	Timeouts    timeoutsSchema `yaml:"timeouts"`
	HealthCheck *healthSchema  `yaml:"health_check"`
	Headers     headersSchema  `yaml:"headers"`
	Cache       cacheSchema    `yaml:"cache"`
	HTTP3       *bool          `yaml:"http3"`
}

type originSchema struct {
	URL    string `yaml:"url"`
	Weight *int   `yaml:"weight"`
	CAFile string `yaml:"ca_file"`
}

type tlsSchema struct {
	Certificate     string `yaml:"certificate"`
	RenewAutomation bool   `yaml:"renew_automation"`
	RedirectHTTP    bool   `yaml:"redirect_http"`
	HSTS            string `yaml:"hsts"`
}

type timeoutsSchema struct {
	Connect        yamlfield.Duration `yaml:"connect"`
	ResponseHeader yamlfield.Duration `yaml:"response_header"`
	Idle           yamlfield.Duration `yaml:"idle"`
	BodyIdle       yamlfield.Duration `yaml:"body_idle"`
}

type healthSchema struct {
	Path     string             `yaml:"path"`
	Interval yamlfield.Duration `yaml:"interval"`
	Timeout  yamlfield.Duration `yaml:"timeout"`
}

type headersSchema struct {
	Request        headerRulesSchema `yaml:"request"`
	Response       headerRulesSchema `yaml:"response"`
	AllowOverrides []string          `yaml:"allow_overrides"`
}

type headerRulesSchema struct {
	Set    map[string]string `yaml:"set"`
	Remove []string          `yaml:"remove"`
}
