package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/edge-cdn/edge/internal/conf"
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
// checks of each section. It returns every problem found, each naming the
// file and line, or the environment variable, and the key.
func Load(file string) (*Config, []error) {
	doc, errs := parseYAML(file)
	if len(errs) > 0 {
		return nil, errs
	}
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
		return nil, []error{fmt.Errorf("%s: %w", file, err)}
	}
	c := &Config{file: file}
	chk := &checker{file: file, doc: doc}
	if err := v.UnmarshalExact(c, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationHook, mapstructure.StringToSliceHookFunc(","),
	))); err != nil {
		return nil, chk.decodeErrors(err)
	}
	chk.check(c)
	sort.SliceStable(chk.errs, func(i, j int) bool { return lineOf(chk.errs[i]) < lineOf(chk.errs[j]) })
	if len(chk.errs) > 0 {
		return nil, chk.errs
	}
	return c, nil
}

// parseYAML reads file as a YAML mapping whose keys are all known.
func parseYAML(file string) (*yaml.Node, []error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, []error{fmt.Errorf("config: %w", err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, conf.FromYAML(file, err)
	}
	if len(doc.Content) > 0 && doc.Content[0].Kind != yaml.MappingNode {
		return nil, []error{&conf.FieldError{File: file, Line: conf.Line(&doc), Msg: "the config must be a YAML mapping"}}
	}
	if errs := conf.CheckKeys(file, &doc, reflect.TypeOf(Config{}), "mapstructure"); len(errs) > 0 {
		return nil, errs
	}
	return &doc, nil
}

var durationType = reflect.TypeOf(conf.Duration(0))

func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch d := data.(type) {
	case string:
		v, err := conf.ParseDuration(d)
		return conf.Duration(v), err
	case time.Duration:
		return conf.Duration(d), nil
	case int:
		if d == 0 {
			return conf.Duration(0), nil
		}
	}
	return nil, fmt.Errorf("%v is not a duration: use a number with a unit, as in 30s or 25d", data)
}

// decodeErrors turns mapstructure's errors into located ones: it walks the
// joined errors down to each *mapstructure.DecodeError, whose Name is the
// key, so no error text is parsed.
func (c *checker) decodeErrors(err error) []error {
	c.walkDecode(err)
	if len(c.errs) == 0 {
		c.errs = append(c.errs, fmt.Errorf("%s: %w", c.file, err))
	}
	return c.errs
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
