package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/edge-cdn/edge/events"
)

// certName is the name of the certificate an event carries, or "".
func certName(raw json.RawMessage) string {
	var c struct {
		Name string `json:"name"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.Name
}

// cmdEvents is `edge events`.
func cmdEvents(ctx context.Context, c *cliCmd, args []string, stdout io.Writer) error {
	since := c.fs.String("since", "", "RFC 3339 time or event seq")
	return c.run(args, 0, "no arguments", func(cl *apiClient) error {
		var out struct {
			Events []events.Event `json:"events"`
		}
		if err := cl.do(ctx, "GET", "/api/v1/events?since="+url.QueryEscape(*since), nil, &out, nil); err != nil {
			return err
		}
		return c.print(out, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "SEQ\tTIME\tTYPE\tCERTIFICATE\tPROPERTY\tDETAIL")
			for _, e := range out.Events {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.RFC3339), e.Type, dash(certName(e.Certificate)), dash(e.Property), e.Detail)
			}
		})
	})
}
