package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/edge-cdn/edge/admin"
)

// cmdCertList is `edge cert list`.
func cmdCertList(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	status := c.fs.String("status", "", "only this status")
	auto := c.fs.String("auto-renew", "", "only this auto_renew")
	typ := c.fs.String("type", "", "only this type")
	return c.run(args, 0, "no arguments", func(cl *apiClient) error {
		for flag, v := range map[string][2]string{"--status": {*status, "pending active failed expired"},
			"--auto-renew": {*auto, "acme none"}, "--type": {*typ, "server ca"}} {
			if v[0] != "" && !slices.Contains(strings.Fields(v[1]), v[0]) {
				return usageError{fmt.Sprintf("%s %q: use one of %s", flag, v[0], strings.ReplaceAll(v[1], " ", ", "))}
			}
		}
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
}

// cmdCertShow is `edge cert show`.
func cmdCertShow(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
		var v admin.CertificateView
		if err := cl.do(ctx, "GET", "/api/v1/certificates/"+url.PathEscape(c.args[0]), nil, &v, nil); err != nil {
			return err
		}
		return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
	})
}

// cmdCertVersions is `edge cert versions`.
func cmdCertVersions(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
		var out struct {
			Versions []map[string]any `json:"versions"`
		}
		if err := cl.do(ctx, "GET", "/api/v1/certificates/"+url.PathEscape(c.args[0])+"/versions", nil, &out, nil); err != nil {
			return err
		}
		return c.print(out, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "VERSION\tSOURCE\tNOT_BEFORE\tNOT_AFTER\tNAMES\tROLLBACK_OF")
			for _, v := range out.Versions {
				from := "-"
				if r, ok := v["rollback_of"]; ok {
					from = fmt.Sprint(r)
				}
				fmt.Fprintf(w, "%v\t%v\t%v\t%v\t%v\t%s\n", v["version"], v["source"], v["not_before"], v["not_after"], v["subject_names"], from)
			}
		})
	})
}

// cmdCertRequest is `edge cert request`.
func cmdCertRequest(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
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
}

// cmdCertUpload is `edge cert upload`.
func cmdCertUpload(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	n := c.fs.String("name", "", "certificate name")
	certFile := c.fs.String("cert", "", "PEM chain file, leaf first or in any order")
	keyFile := c.fs.String("key", "", "PEM private key file (server certificates)")
	typ := c.fs.String("type", "server", "server or ca")
	auto := c.fs.String("auto-renew", "none", "acme or none")
	return c.run(args, 0, "flags only", func(cl *apiClient) error {
		if *n == "" || *certFile == "" {
			return usageError{"edge cert upload needs --name and --cert"}
		}
		certPEM, keyPEM, err := readPEMs(*certFile, *keyFile)
		if err != nil {
			return err
		}
		body := map[string]any{"name": *n, "certificate_pem": certPEM, "private_key_pem": keyPEM, "type": *typ, "auto_renew": *auto}
		var v admin.CertificateView
		if err := cl.do(ctx, "POST", "/api/v1/certificates", body, &v, nil); err != nil {
			return err
		}
		return c.printWritten(v)
	})
}

// readPEMs reads the --cert file and, if given, the --key file.
func readPEMs(certFile, keyFile string) (string, string, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return "", "", err
	}
	var keyPEM []byte
	if keyFile != "" {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return "", "", err
		}
	}
	return string(certPEM), string(keyPEM), nil
}

// printWritten prints a certificate just written, its warnings on stderr.
func (c *cliCmd) printWritten(v admin.CertificateView) error {
	for _, w := range v.Warnings {
		fmt.Fprintln(c.stderr, "warning:", w)
	}
	return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
}

// cmdCertRotate is `edge cert rotate`: a new version of an uploaded
// certificate, serving at once.
func cmdCertRotate(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	certFile := c.fs.String("cert", "", "PEM chain file, leaf first or in any order")
	keyFile := c.fs.String("key", "", "PEM private key file")
	return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
		if *certFile == "" {
			return usageError{"edge cert rotate needs --cert (and --key for a server certificate)"}
		}
		certPEM, keyPEM, err := readPEMs(*certFile, *keyFile)
		if err != nil {
			return err
		}
		var v admin.CertificateView
		body := map[string]string{"certificate_pem": certPEM, "private_key_pem": keyPEM}
		if err := cl.do(ctx, "POST", "/api/v1/certificates/"+url.PathEscape(c.args[0])+"/versions", body, &v, nil); err != nil {
			return err
		}
		return c.printWritten(v)
	})
}

// cmdCertRollback is `edge cert rollback`: a kept version serves again.
func cmdCertRollback(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	version := c.fs.Int("version", 0, "the kept version to serve again (edge cert versions lists them)")
	return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
		if *version <= 0 {
			return usageError{"edge cert rollback needs --version N (edge cert versions lists them)"}
		}
		var v admin.CertificateView
		body := map[string]int{"version": *version}
		if err := cl.do(ctx, "POST", "/api/v1/certificates/"+url.PathEscape(c.args[0])+"/rollback", body, &v, nil); err != nil {
			return err
		}
		return c.printWritten(v)
	})
}

// cmdCertSelfSigned is `edge cert self-signed`.
func cmdCertSelfSigned(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
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
}

// cmdCertAutoRenew is `edge cert auto-renew`.
func cmdCertAutoRenew(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	return c.run(args, 2, "ID|NAME and acme or none", func(cl *apiClient) error {
		var v admin.CertificateView
		if err := cl.do(ctx, "PATCH", "/api/v1/certificates/"+url.PathEscape(c.args[0]), map[string]string{"auto_renew": c.args[1]}, &v, nil); err != nil {
			return err
		}
		return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
	})
}

// cmdCertRenew is `edge cert renew`.
func cmdCertRenew(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
		var v admin.CertificateView
		if err := cl.do(ctx, "POST", "/api/v1/certificates/"+url.PathEscape(c.args[0])+"/renew", nil, &v, nil); err != nil {
			return err
		}
		return c.print(v, func(w *tabwriter.Writer) { certDetail(w, v) })
	})
}

// cmdCertDelete is `edge cert delete`.
func cmdCertDelete(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	return c.run(args, 1, "ID|NAME", func(cl *apiClient) error {
		if err := cl.do(ctx, "DELETE", "/api/v1/certificates/"+url.PathEscape(c.args[0]), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s\n", c.args[0])
		return nil
	})
}
