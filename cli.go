package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/events"
)

const cliUsage = `usage:
  edge cert list [--status S] [--auto-renew acme|none] [--type server|ca] [--json]
  edge cert show ID|NAME [--json]
  edge cert versions ID|NAME [--json]
  edge cert request --name N --common-name H [--alt H ...] [--json]
  edge cert upload --name N --cert FILE [--key FILE] [--type server|ca] [--auto-renew acme|none] [--json]
  edge cert self-signed --name N [--host H ...] [--valid-for DURATION] [--auto-renew acme|none] [--json]
  edge cert auto-renew ID|NAME acme|none
  edge cert renew ID|NAME
  edge cert delete ID|NAME
  edge property list [--json]
  edge property show NAME [--json]
  edge events [--since TIME|SEQ] [--json]
  edge backup FILE
Every command takes --config FILE and talks to the running node's admin API.
`

// strList is a repeatable string flag.
type strList []string

func (s *strList) String() string     { return strings.Join(*s, ",") }
func (s *strList) Set(v string) error { *s = append(*s, v); return nil }

// cliCmd holds one CLI invocation's flags and output.
type cliCmd struct {
	fs     *flag.FlagSet
	config *string
	json   *bool
	args   []string
	stdout io.Writer
}

func newCLICmd(name string, stderr, stdout io.Writer) *cliCmd {
	fs := flag.NewFlagSet("edge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cliUsage) }
	return &cliCmd{fs: fs, config: fs.String("config", "", "config file"), json: fs.Bool("json", false, "print JSON"), stdout: stdout}
}

// parse parses flags anywhere among the arguments and checks the number of
// positional ones.
func (c *cliCmd) parse(args []string, positional int, names string) error {
	for {
		if err := c.fs.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		c.args = append(c.args, rest[0])
		args = rest[1:]
	}
	if len(c.args) != positional {
		return usageError{fmt.Sprintf("%s takes %s", c.fs.Name(), names)}
	}
	return nil
}

func (c *cliCmd) client() (*apiClient, error) {
	file, err := configFile(*c.config)
	if err != nil {
		return nil, err
	}
	cfg, errs := loadConfig(file)
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %v", file, errs[0])
	}
	return newAPIClient(cfg)
}

// print writes v as indented JSON with --json, else calls table.
func (c *cliCmd) print(v any, table func(w *tabwriter.Writer)) error {
	if *c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func runCLI(ctx context.Context, group string, args []string, stdout, stderr io.Writer) error {
	if group == "backup" || group == "events" {
		return runCLICommand(ctx, group, "", args, stdout, stderr)
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, cliUsage)
		return usageError{fmt.Sprintf("edge %s needs a subcommand", group)}
	}
	return runCLICommand(ctx, group, args[0], args[1:], stdout, stderr)
}

func runCLICommand(ctx context.Context, group, sub string, args []string, stdout, stderr io.Writer) error {
	name := strings.TrimSpace(group + " " + sub)
	c := newCLICmd(name, stderr, stdout)
	switch name {
	case "cert list":
		status := c.fs.String("status", "", "only this status")
		auto := c.fs.String("auto-renew", "", "only this auto_renew")
		typ := c.fs.String("type", "", "only this type")
		return c.run(args, 0, "no arguments", func(cl *apiClient) error {
			q := url.Values{}
			for k, v := range map[string]string{"status": *status, "auto_renew": *auto, "type": *typ} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var out struct {
				Certificates []admin.CertificateView `json:"certificates"`
			}
			if err := cl.do(ctx, "GET", "/api/v1/certificates?"+q.Encode(), nil, &out, nil); err != nil {
				return err
			}
			return c.print(out, func(w *tabwriter.Writer) { certTable(w, out.Certificates) })
		})
	case "cert show":
		return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
			var v admin.CertificateView
			if err := cl.do(ctx, "GET", "/api/v1/certificates/"+url.PathEscape(c.args[0]), nil, &v, nil); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
		})
	case "cert versions":
		return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
			var out struct {
				Versions []map[string]any `json:"versions"`
			}
			if err := cl.do(ctx, "GET", "/api/v1/certificates/"+url.PathEscape(c.args[0])+"/versions", nil, &out, nil); err != nil {
				return err
			}
			return c.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "VERSION\tSOURCE\tNOT_BEFORE\tNOT_AFTER\tNAMES")
				for _, v := range out.Versions {
					fmt.Fprintf(w, "%v\t%v\t%v\t%v\t%v\n", v["version"], v["source"], v["not_before"], v["not_after"], v["subject_names"])
				}
			})
		})
	case "cert request":
		n := c.fs.String("name", "", "certificate name")
		cn := c.fs.String("common-name", "", "common name")
		var alts strList
		c.fs.Var(&alts, "alt", "alternative name (repeatable)")
		return c.run(args, 0, "flags only", func(cl *apiClient) error {
			if *n == "" || *cn == "" {
				return usageError{"edge cert request needs --name and --common-name"}
			}
			var v admin.CertificateView
			body := admin.CertRequest{Name: *n, Challenge: "http", Authority: "lets_encrypt", CommonName: *cn, AlternativeNames: alts}
			if err := cl.do(ctx, "POST", "/api/v1/certificates/request", body, &v, nil); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
		})
	case "cert upload":
		n := c.fs.String("name", "", "certificate name")
		certFile := c.fs.String("cert", "", "PEM chain file, leaf first or in any order")
		keyFile := c.fs.String("key", "", "PEM private key file (server certificates)")
		typ := c.fs.String("type", "server", "server or ca")
		auto := c.fs.String("auto-renew", "none", "acme or none")
		return c.run(args, 0, "flags only", func(cl *apiClient) error {
			if *n == "" || *certFile == "" {
				return usageError{"edge cert upload needs --name and --cert"}
			}
			certPEM, err := os.ReadFile(*certFile)
			if err != nil {
				return err
			}
			var keyPEM []byte
			if *keyFile != "" {
				if keyPEM, err = os.ReadFile(*keyFile); err != nil {
					return err
				}
			}
			body := map[string]any{"name": *n, "certificate_pem": string(certPEM), "private_key_pem": string(keyPEM), "type": *typ, "auto_renew": *auto}
			var v admin.CertificateView
			if err := cl.do(ctx, "POST", "/api/v1/certificates", body, &v, nil); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
		})
	case "cert self-signed":
		n := c.fs.String("name", "", "certificate name")
		var hosts strList
		c.fs.Var(&hosts, "host", "hostname (repeatable)")
		validFor := c.fs.String("valid-for", "", "validity, e.g. 90d (default 90d)")
		auto := c.fs.String("auto-renew", "none", "acme or none")
		return c.run(args, 0, "flags only", func(cl *apiClient) error {
			if *n == "" {
				return usageError{"edge cert self-signed needs --name"}
			}
			body := map[string]any{"name": *n, "self_signed": true, "hostnames": hosts, "valid_for": *validFor, "auto_renew": *auto}
			var v admin.CertificateView
			if err := cl.do(ctx, "POST", "/api/v1/certificates", body, &v, nil); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
		})
	case "cert auto-renew":
		return c.run(args, 2, "ID|NAME and acme or none", func(cl *apiClient) error {
			var v admin.CertificateView
			if err := cl.do(ctx, "PATCH", "/api/v1/certificates/"+url.PathEscape(c.args[0]), map[string]string{"auto_renew": c.args[1]}, &v, nil); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
		})
	case "cert renew":
		return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
			var v admin.CertificateView
			if err := cl.do(ctx, "POST", "/api/v1/certificates/"+url.PathEscape(c.args[0])+"/renew", nil, &v, nil); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
		})
	case "cert delete":
		return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
			if err := cl.do(ctx, "DELETE", "/api/v1/certificates/"+url.PathEscape(c.args[0]), nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s\n", c.args[0])
			return nil
		})
	case "property list":
		return c.run(args, 0, "no arguments", func(cl *apiClient) error {
			var out struct {
				Properties []admin.PropertyView `json:"properties"`
				Rejected   []admin.RejectedView `json:"rejected"`
			}
			if err := cl.do(ctx, "GET", "/api/v1/properties", nil, &out, nil); err != nil {
				return err
			}
			return c.print(out, func(w *tabwriter.Writer) { propertyTable(w, out.Properties, out.Rejected) })
		})
	case "property show":
		return c.run(args, 1, "NAME", func(cl *apiClient) error {
			var v admin.PropertyView
			if err := cl.do(ctx, "GET", "/api/v1/properties/"+url.PathEscape(c.args[0]), nil, &v, nil); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { propertyDetail(w, v) })
		})
	case "events":
		since := c.fs.String("since", "", "RFC 3339 time or event seq")
		return c.run(args, 0, "no arguments", func(cl *apiClient) error {
			var out struct {
				Events []events.Event `json:"events"`
			}
			if err := cl.do(ctx, "GET", "/api/v1/events?since="+url.QueryEscape(*since), nil, &out, nil); err != nil {
				return err
			}
			return c.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "SEQ\tTIME\tTYPE\tPROPERTY\tDETAIL")
				for _, e := range out.Events {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.RFC3339), e.Type, dash(e.Property), e.Detail)
				}
			})
		})
	case "backup":
		return c.run(args, 1, "FILE", func(cl *apiClient) error {
			return backupTo(ctx, cl, c.args[0], stdout)
		})
	}
	fmt.Fprint(stderr, cliUsage)
	return usageError{fmt.Sprintf("unknown command %q", "edge "+name)}
}

func (c *cliCmd) run(args []string, positional int, names string, fn func(*apiClient) error) error {
	if err := c.parse(args, positional, names); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	return fn(cl)
}

// backupTo saves a consistent copy of the store to file, atomically.
func backupTo(ctx context.Context, cl *apiClient, file string, stdout io.Writer) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".edge-backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := cl.do(ctx, "GET", "/api/v1/backup", nil, nil, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	st, _ := os.Stat(file)
	fmt.Fprintf(stdout, "saved %s (%d bytes)\n", file, st.Size())
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func certTable(w io.Writer, cs []admin.CertificateView) {
	fmt.Fprintln(w, "NAME\tSTATUS\tTYPE\tAUTO_RENEW\tNOT_AFTER\tNAMES\tPROPERTIES\tRENEWAL")
	for _, c := range cs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Status, c.Type, c.AutoRenew, day(c.NotAfter),
			dash(strings.Join(c.SubjectNames, ",")), dash(strings.Join(c.Properties, ",")), dash(c.Renewal.State))
	}
}

func certDetail(w io.Writer, c admin.CertificateView) {
	line := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	line("id", c.ID)
	line("name", c.Name)
	line("status", c.Status)
	if c.StatusDetail != "" {
		line("status_detail", c.StatusDetail)
	}
	line("type", c.Type)
	line("auto_renew", c.AutoRenew)
	line("subject_names", dash(strings.Join(c.SubjectNames, ", ")))
	line("issuer", c.Issuer)
	line("not_before", day(c.NotBefore))
	line("not_after", day(c.NotAfter))
	line("version", fmt.Sprint(c.Version))
	line("source", c.Source)
	line("properties", dash(strings.Join(c.Properties, ", ")))
	line("renewal", dash(c.Renewal.State))
	if c.Renewal.RenewAt != nil {
		line("renew_at", day(*c.Renewal.RenewAt))
	}
	if c.Renewal.LastError != "" {
		line("last_error", c.Renewal.LastError)
	}
}

func propertyTable(w io.Writer, ps []admin.PropertyView, rejected []admin.RejectedView) {
	fmt.Fprintln(w, "NAME\tHOSTNAMES\tCERTIFICATE\tORIGINS\tSTATE")
	for _, p := range ps {
		origins := make([]string, len(p.Origins))
		for i, o := range p.Origins {
			origins[i] = o.URL
			if o.Healthy != nil && !*o.Healthy {
				origins[i] += " (down)"
			}
		}
		state := "ok"
		if len(p.LoadError) > 0 {
			state = "last good version (file rejected)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.Name, strings.Join(p.Hostnames, ","), dash(p.Certificate), strings.Join(origins, ","), state)
	}
	for _, r := range rejected {
		fmt.Fprintf(w, "-\t-\t-\t-\trejected %s: %s\n", r.File, strings.Join(r.LoadError, "; "))
	}
}

func propertyDetail(w io.Writer, p admin.PropertyView) {
	fmt.Fprintf(w, "name:\t%s\nfile:\t%s\nhostnames:\t%s\ncertificate:\t%s\nrenew_automation:\t%v\nredirect_http:\t%v\n",
		p.Name, p.File, strings.Join(p.Hostnames, ", "), dash(p.Certificate), p.TLS.RenewAutomation, p.TLS.RedirectHTTP)
	for _, o := range p.Origins {
		h := "unknown"
		if o.Healthy != nil {
			h = map[bool]string{true: "healthy", false: "down"}[*o.Healthy]
		}
		fmt.Fprintf(w, "origin:\t%s (weight %d, %s)\n", o.URL, o.Weight, h)
	}
	for _, e := range p.LoadError {
		fmt.Fprintf(w, "load_error:\t%s\n", e)
	}
}
