package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/resultgate/resultgate/httpapi"
)

// reportTimeout bounds one report request: the server allows itself three
// minutes to read every hold and inbound message of the period; wait a little
// longer than that.
const reportTimeout = 200 * time.Second

// maxReportBytes bounds the answer read from the server.
const maxReportBytes = 64 << 20

func newReportCmd() *cobra.Command {
	var (
		since, until, api, token string
		asJSON, asCSV            bool
	)
	cmd := &cobra.Command{
		Use:   "report [--since T] [--until T] [--json|--csv] [--api URL] [--token TOKEN]",
		Short: "Print the compliance report of a running resultgate (through its HTTP API)",
		Long: `report asks a running resultgate for its compliance report (GET /api/report):
holds by basis and tag, time from finalisation to release (median, p90, max) by basis,
how holds ended (clinician, override, deadline, patient revoked, correction), on-call
overrides with reasons, holds under organisational policy (a compliance risk), and the
hold rate and time to release by age band, sex and preferred language, with groups
under 5 suppressed. See docs/COMPLIANCE.md.

The report is read over the HTTP API because the running server holds the store.
The token needs the compliance or admin role; pass it with --token or, so it stays
out of the process list, in RESULTGATE_TOKEN.

--since and --until are read as the HTTP API reads since and until: ` + httpapi.WhenFormats + `;
an --until date includes that day. Defaults: the 30 days up to now.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON && asCSV {
				return &exitError{code: 2, err: errors.New("--json and --csv exclude each other")}
			}
			if token == "" {
				token = os.Getenv("RESULTGATE_TOKEN")
			}
			if token == "" {
				return &exitError{code: 2, err: errors.New("no token: pass --token or set RESULTGATE_TOKEN (a compliance or admin token)")}
			}
			format := "text"
			switch {
			case asJSON:
				format = "json"
			case asCSV:
				format = "csv"
			}
			u, err := reportURL(api, since, until, format)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), reportTimeout)
			defer cancel()
			return fetchReport(ctx, u, token, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "start of the period: an RFC 3339 time, a date (YYYY-MM-DD, UTC) or a duration ago (default 30 days before --until)")
	f.StringVar(&until, "until", "", "end of the period, excluded: an RFC 3339 time or a duration ago; or a date it includes (YYYY-MM-DD; default now)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&asCSV, "csv", false, "print the report as CSV (one table per section)")
	f.StringVar(&api, "api", envOr("RESULTGATE_API", "http://127.0.0.1:8080"), "base URL of the running resultgate's HTTP API (env RESULTGATE_API)")
	f.StringVar(&token, "token", "", "bearer token with the compliance or admin role (default $RESULTGATE_TOKEN)")
	return cmd
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// reportURL builds the request URL; the period is checked by the server.
func reportURL(api, since, until, format string) (string, error) {
	base, err := url.Parse(strings.TrimRight(api, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("--api: want an http(s) URL such as http://127.0.0.1:8080, got %q", api)
	}
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if until != "" {
		q.Set("until", until)
	}
	q.Set("format", format)
	base.Path += "/api/report"
	base.RawQuery = q.Encode()
	return base.String(), nil
}

// fetchReport GETs u with the bearer token and copies the body to out; an
// error answer becomes an error with the server's reason.
func fetchReport(ctx context.Context, u, token string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking %s for the report: %w", req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxReportBytes)
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(body, 64<<10))
		var e struct {
			Code   string `json:"error"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Reason != "" {
			return fmt.Errorf("report: %s (%s: %s)", resp.Status, e.Code, e.Reason)
		}
		return fmt.Errorf("report: %s", resp.Status)
	}
	if _, err := io.Copy(out, body); err != nil {
		return fmt.Errorf("reading the report: %w", err)
	}
	return nil
}
