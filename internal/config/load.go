package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/edge-cdn/edge/internal/yamlfield"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// File finds the config file: the flag, else $EDGE_CONFIG, else
// ./edge.yaml, else /etc/edge/edge.yaml.
func File(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if env := os.Getenv("EDGE_CONFIG"); env != "" {
		return env, nil
	}
	for _, f := range []string{"edge.yaml", "/etc/edge/edge.yaml"} {
		if _, err := os.Stat(f); err == nil {
			return f, nil
		}
	}
	return "", errors.New("no config file: pass --config FILE or set EDGE_CONFIG (looked for ./edge.yaml and /etc/edge/edge.yaml)")
}

// Load reads, checks and normalises the config in one pipeline: YAML node
// → unknown-key check → decode with defaults and EDGE_* overrides → the
// checks of each section. It returns every problem found in one pass, each
// naming the file and line, or the environment variable, and the key: a
// problem found early does not hide the later ones (issue 11), and a key
// is reported once. With problems, the config is returned as far as it
// decoded (nil when the YAML does not parse), for validate to go on with
// the property files; callers must not run with it.
func Load(file string) (*Config, []error) {
	doc, errs := parseYAML(file)
	if doc == nil {
		return nil, errs
	}
	chk := &checker{file: file, doc: doc, errs: errs}
	chk.environment()
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("EDGE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return nil, append(chk.errs, fmt.Errorf("%s: %w", file, err))
	}
	c := &Config{file: file}
	decode := v.UnmarshalExact
	if len(chk.errs) > 0 {
		decode = v.Unmarshal // the unknown keys are reported already
	}
	if err := decode(c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationHook, mapstructure.StringToSliceHookFunc(","),
	))); err != nil {
		chk.decodeErrors(err)
	}
	chk.check(c)
	sort.SliceStable(chk.errs, func(i, j int) bool { return lineOf(chk.errs[i]) < lineOf(chk.errs[j]) })
	if len(chk.errs) > 0 {
		return c, chk.errs
	}
	return c, nil
}

// environment reports EDGE_* variables that set no config key: a typo
// there would otherwise be ignored silently (issue 11). EDGE_CONFIG names
// the file; EDGE_BENCH_* belong to the benchmark tool.
func (c *checker) environment() {
	known := map[string]bool{"EDGE_CONFIG": true}
	for k := range defaults {
		known["EDGE_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	var unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "EDGE_") && !known[name] && !strings.HasPrefix(name, "EDGE_BENCH_") {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		c.errs = append(c.errs, &yamlfield.FieldError{File: "environment " + name,
			Msg: "sets no config key: EDGE_ and the key in capitals, dots as underscores, as in EDGE_LISTEN_HTTP"})
	}
}

// parseYAML reads file as a YAML mapping and reports its unknown keys and
// values of the wrong kind; the document is nil when it cannot be read.
func parseYAML(file string) (*yaml.Node, []error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, []error{fmt.Errorf("config: %w", err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlfield.FromYAMLSource(file, data, err)
	}
	if len(doc.Content) > 0 && doc.Content[0].Kind != yaml.MappingNode {
		return nil, []error{&yamlfield.FieldError{File: file, Line: yamlfield.Line(&doc), Msg: "the config must be a YAML mapping"}}
	}
	return &doc, yamlfield.CheckKeys(file, &doc, reflect.TypeOf(Config{}), "mapstructure")
}

var durationType = reflect.TypeOf(yamlfield.Duration(0))

func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch d := data.(type) {
	case string:
		v, err := yamlfield.ParseDuration(d)
		return yamlfield.Duration(v), err
	case time.Duration:
		return yamlfield.Duration(d), nil
	case int:
		if d == 0 {
			return yamlfield.Duration(0), nil
		}
	}
	return nil, fmt.Errorf("%v is not a duration: use a number with a unit, as in 30s or 25d", data)
}

// decodeErrors turns mapstructure's errors into located ones: it walks the
// joined errors down to each *mapstructure.DecodeError, whose Name is the
// key, so no error text is parsed.
func (c *checker) decodeErrors(err error) {
	before := len(c.errs)
	c.walkDecode(err)
	// A decode hook's error is not a DecodeError. CheckKeys reports every
	// wrong value of the file with its line first, so only a config with
	// no other problem (a bad EDGE_* value) needs the decoder's own words.
	if len(c.errs) == before && before == 0 {
		c.errs = append(c.errs, fmt.Errorf("%s: %w", c.file, err))
	}
}

func (c *checker) walkDecode(err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			c.walkDecode(e)
		}
		return
	}
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) {
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: %w", c.file, err))
		}
		return
	}
	inner := de.Unwrap()
	var nested *mapstructure.DecodeError
	if _, ok := inner.(interface{ Unwrap() []error }); ok || errors.As(inner, &nested) {
		c.walkDecode(inner)
		return
	}
	key := strings.NewReplacer("[", ".", "]", "").Replace(de.Name())
	c.fail(key, "%s", inner.Error())
}
