package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/yamlfield"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
)

// runValidate is `edge validate`.
func runValidate(_ context.Context, name string, args []string, stdout, stderr io.Writer) error {
	file, err := parseConfigFlag(name, args, stderr)
	if err != nil {
		return err
	}
	return validate(file, stdout)
}

// validate checks the config and every property file with the rules the
// running node uses, in one pass, and lists every problem; it fails (exit
// 1) if there is any. Property files are checked even when the config has
// problems, as long as properties_dir is known (issue 11).
func validate(file string, stdout io.Writer) error {
	cfg, problems := config.Load(file)
	if cfg == nil || fieldFailed(problems, "properties_dir") {
		fmt.Fprintln(stdout, "note: property files not checked: the config does not say where they are")
		printProblems(stdout, problems)
		return reportedError{fmt.Errorf("%d problems in the config", len(problems))}
	}
	opts := property.Options{MaxNamesPerCertificate: cfg.MaxNamesPerOrder()}
	if types, err := certificateTypes(cfg); err != nil {
		fmt.Fprintf(stdout, "note: certificate types not checked: %v\n", err)
	} else {
		opts.CertificateType = func(name string) (string, bool) { t, ok := types[name]; return t, ok }
	}
	if held, err := servedHostnames(cfg); err != nil {
		fmt.Fprintf(stdout, "note: duplicate hostnames are decided by file name, as at a first start: which file serves them now is not known (%v)\n", err)
	} else {
		opts.Held = held
	}
	if ents, err := os.ReadDir(cfg.PropertiesDir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".yml") && !strings.HasPrefix(e.Name(), ".") {
				fmt.Fprintf(stdout, "note: %s is not read: only *.yaml files are property files\n", filepath.Join(cfg.PropertiesDir, e.Name()))
			}
		}
	}
	t, err := property.LoadDir(cfg.PropertiesDir, nil, opts)
	if err != nil {
		problems = append(problems, err)
	} else {
		problems = append(problems, t.Problems()...)
	}
	if len(problems) > 0 {
		printProblems(stdout, problems)
		return reportedError{fmt.Errorf("%d problems", len(problems))}
	}
	fmt.Fprintf(stdout, "ok: %s and %d properties in %s\n", file, len(t.Properties()), cfg.PropertiesDir)
	return nil
}

// fieldFailed reports whether errs hold a problem with key.
func fieldFailed(errs []error, key string) bool {
	for _, err := range errs {
		var fe *yamlfield.FieldError
		if errors.As(err, &fe) && fe.Field == key {
			return true
		}
	}
	return false
}

// certificateTypes returns the type of every stored certificate by name,
// as the running node checks property files against them: from a bbolt
// store no node holds, else from the running node's admin API (a node
// holding the store, or an etcd fleet).
func certificateTypes(cfg *config.Config) (map[string]string, error) {
	types, err := storedCertificateTypes(cfg)
	if err == nil {
		return types, nil
	}
	var out struct {
		Certificates []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"certificates"`
	}
	if err := askNode(cfg, err, "/api/v1/certificates", &out); err != nil {
		return nil, err
	}
	types = make(map[string]string, len(out.Certificates))
	for _, c := range out.Certificates {
		types[c.Name] = c.Type
	}
	return types, nil
}

// storedCertificateTypes reads the certificate types of a bbolt store that
// no running node holds.
func storedCertificateTypes(cfg *config.Config) (map[string]string, error) {
	st, err := openStoreReadOnly(cfg)
	if st == nil || err != nil {
		return map[string]string{}, err // no store yet: no certificates
	}
	defer st.Close()
	return cert.NewCerts(st).Types(context.Background())
}

// servedHostnames returns which file serves each hostname, as the node
// decides duplicates (the file that serves a hostname keeps it; the other
// is refused): from a bbolt store no node holds (the last good versions
// the node starts from), else from the running node's admin API.
func servedHostnames(cfg *config.Config) (map[string]string, error) {
	held, err := storedServedHostnames(cfg)
	if err == nil {
		return held, nil
	}
	var out struct {
		Properties []struct {
			File      string   `json:"file"`
			Hostnames []string `json:"hostnames"`
		} `json:"properties"`
	}
	if err := askNode(cfg, err, "/api/v1/properties", &out); err != nil {
		return nil, err
	}
	held = map[string]string{}
	for _, p := range out.Properties {
		for _, h := range p.Hostnames {
			held[h] = p.File
		}
	}
	return held, nil
}

// storedServedHostnames reads the last good property versions of a bbolt
// store no running node holds: what the node serves when it starts.
func storedServedHostnames(cfg *config.Config) (map[string]string, error) {
	st, err := openStoreReadOnly(cfg)
	if st == nil || err != nil {
		return map[string]string{}, err // no store yet: nothing served
	}
	defer st.Close()
	prefix := "property/" + cfg.Node.Name + "/" // the node's lastGoodPrefix
	var loaded []property.Loaded
	err = st.View(context.Background(), func(tx store.Tx) error {
		return tx.ForEach(store.Meta, prefix, func(k string, v []byte) error {
			if p, errs := property.Parse(k[len(prefix):], v); len(errs) == 0 {
				loaded = append(loaded, property.Loaded{File: p.File, Property: p})
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	held := map[string]string{}
	for _, p := range property.Build(loaded, nil, property.Options{}).Properties() {
		for _, h := range p.Hostnames {
			held[h] = p.File
		}
	}
	return held, nil
}

// openStoreReadOnly opens the bbolt store of cfg that no running node
// holds, for validate; nil and no error when there is none yet.
func openStoreReadOnly(cfg *config.Config) (*store.Bolt, error) {
	if cfg.Store.Backend != "bbolt" {
		return nil, errors.New("the etcd store is not read by validate")
	}
	st, err := store.OpenBoltReadOnly(filepath.Join(cfg.DataDir, "edge.db"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return st, err
}

// askNode is validate's second source, when the store could not be read
// (storeErr): the running node's admin API, GET path decoded into out.
func askNode(cfg *config.Config, storeErr error, path string, out any) error {
	cl, err := newAPIClient(cfg)
	if err != nil {
		return fmt.Errorf("%v; and the admin API: %v", storeErr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.do(ctx, "GET", path, nil, out, nil); err != nil {
		return fmt.Errorf("%v; and the admin API: %v", storeErr, err)
	}
	return nil
}
