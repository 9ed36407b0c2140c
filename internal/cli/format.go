package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/edge-cdn/edge/admin"
)

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
	if c.Renewal.Reason != "" {
		line("reason", c.Renewal.Reason)
	}
	if c.Renewal.NextAttemptAt != nil {
		line("next_attempt_at", day(*c.Renewal.NextAttemptAt))
	}
	if c.Renewal.Attempts > 0 {
		line("attempts", fmt.Sprint(c.Renewal.Attempts))
	}
	if c.Renewal.LastAttemptAt != nil {
		line("last_attempt_at", day(*c.Renewal.LastAttemptAt))
	}
	if c.Renewal.LastError != "" {
		line("last_error", c.Renewal.LastError)
	}
	if w := c.Renewal.ARIWindow; w != nil {
		line("ari_window", day(w.Start)+" .. "+day(w.End))
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
