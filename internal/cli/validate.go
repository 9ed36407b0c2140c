package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/config"
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

// validate checks the config and every property file and lists every
// problem; it fails (exit 1) if there is any.
func validate(file string, stdout io.Writer) error {
	cfg, errs := config.Load(file)
	if len(errs) > 0 {
		printProblems(stdout, errs)
		return reportedError{fmt.Errorf("%d problems in the config", len(errs))}
	}
	opts := property.Options{MaxNamesPerCertificate: cfg.MaxNamesPerOrder()}
	if types, err := storedCertificateTypes(cfg); err != nil {
		fmt.Fprintf(stdout, "note: certificate types not checked: %v\n", err)
	} else {
		opts.CertificateType = func(name string) (string, bool) { t, ok := types[name]; return t, ok }
	}
	t, err := property.LoadDir(cfg.PropertiesDir, nil, opts)
	if err != nil {
		printProblems(stdout, []error{err})
		return reportedError{err}
	}
	problems := t.Problems()
	if len(problems) > 0 {
		printProblems(stdout, problems)
		return reportedError{fmt.Errorf("%d problems in %d property files", len(problems), len(t.Rejected()))}
	}
	fmt.Fprintf(stdout, "ok: %s and %d properties in %s\n", file, len(t.Properties()), cfg.PropertiesDir)
	return nil
}

// storedCertificateTypes reads the certificate types of a bbolt store that
// no running node holds.
func storedCertificateTypes(cfg *config.Config) (map[string]string, error) {
	if cfg.Store.Backend != "bbolt" {
		return nil, errors.New("only the bbolt store is read by validate")
	}
	st, err := store.OpenBoltReadOnly(filepath.Join(cfg.DataDir, "edge.db"))
	if errors.Is(err, store.ErrNotFound) {
		return map[string]string{}, nil // no store yet: no certificates
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return cert.NewCerts(st).Types(context.Background())
}
