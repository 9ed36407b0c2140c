package cli

import (
	"context"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/edge-cdn/edge/admin"
)

// cmdPropertyList is `edge property list`.
func cmdPropertyList(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
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
}

// cmdPropertyShow is `edge property show`.
func cmdPropertyShow(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	return c.run(args, 1, "NAME", func(cl *apiClient) error {
		var v admin.PropertyView
		if err := cl.do(ctx, "GET", "/api/v1/properties/"+url.PathEscape(c.args[0]), nil, &v, nil); err != nil {
			return err
		}
		return c.print(v, func(w *tabwriter.Writer) { propertyDetail(w, v) })
	})
}
