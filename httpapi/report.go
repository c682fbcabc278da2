package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/report"
)

// Reporter is what GET /api/report needs from the pipeline
// (pipeline.Service.Report). It is kept apart from Service so that a Service
// without reports still serves the rest of the API.
type Reporter interface {
	Report(ctx context.Context, since, until time.Time) (*report.Report, error)
}

// reportTimeout bounds the making of one report (it reads every hold and the
// inbound message of every result of the period); it replaces the server's
// write timeout for this route.
const reportTimeout = 3 * time.Minute

// defaultReportDays is the period of a report asked for without since: the
// last 30 days, a month of practice.
const defaultReportDays = 30

// ParsePeriod reads the since and until of a report by ParseWhen's rule. A
// since date is the start of that day; an until date includes that day (the
// period ends at the start of the next one).
// Without until the period ends now; without since it starts
// defaultReportDays before until.
func ParsePeriod(sinceS, untilS string, now time.Time) (since, until time.Time, err error) {
	until = now.UTC()
	if untilS != "" {
		t, isDate, err := ParseWhen(untilS, now)
		if err != nil {
			return since, until, newErr(http.StatusBadRequest, "bad_request", "until: %s", err)
		}
		if isDate {
			t = t.AddDate(0, 0, 1)
		}
		until = t
	}
	since = until.AddDate(0, 0, -defaultReportDays)
	if sinceS != "" {
		t, _, err := ParseWhen(sinceS, now)
		if err != nil {
			return since, until, newErr(http.StatusBadRequest, "bad_request", "since: %s", err)
		}
		since = t
	}
	if !since.Before(until) {
		return since, until, newErr(http.StatusBadRequest, "bad_request", "since (%s) must be before until (%s)", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	return since, until, nil
}

// report serves GET /api/report?since=&until=&format=json|csv|text. Reading
// a report is audited like every other read.
func (a *API) report(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rep, ok := a.svc.(Reporter)
	if !ok {
		return newErr(http.StatusNotImplemented, "not_implemented", "this resultgate has no report service")
	}
	q := r.URL.Query()
	since, until, err := ParsePeriod(q.Get("since"), q.Get("until"), time.Now())
	if err != nil {
		return err
	}
	format := strings.ToLower(q.Get("format"))
	switch format {
	case "", "json", "csv", "text":
	default:
		return newErr(http.StatusBadRequest, "bad_request", "format: want json, csv or text, got %q", format)
	}
	// A report reads every hold and inbound message of the period: allow it
	// longer than the server's write timeout, but not forever.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(reportTimeout + 10*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), reportTimeout)
	defer cancel()
	// The report runs beside the request: a request cancelled (shutdown,
	// client gone) is answered at once, not when the read in hand returns (a
	// 16 MiB message under load can take longer than the stop's grace).
	type result struct {
		out *report.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := rep.Report(ctx, since, until)
		done <- result{out, err}
	}()
	var out *report.Report
	select {
	case res := <-done:
		out, err = res.out, res.err
	case <-r.Context().Done():
		err = r.Context().Err()
	}
	if err == nil && r.Context().Err() != nil {
		err = r.Context().Err() // finished as the server stopped: not audited, so not served
	}
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			// The server is shutting down (every request's context is
			// cancelled then) or the client went away.
			return newErr(http.StatusServiceUnavailable, "unavailable", "the report was interrupted: the server is shutting down; ask again")
		case ctx.Err() != nil:
			return newErr(http.StatusServiceUnavailable, "unavailable", "the report took longer than %s; ask for a shorter period", reportTimeout)
		}
		return err
	}
	if err := a.access(r.Context(), p, "report.read", "", ""); err != nil {
		return err
	}
	var buf bytes.Buffer
	switch format {
	case "csv":
		if err := report.WriteCSV(&buf, out); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="resultgate-report.csv"`)
	case "text":
		if err := report.WriteText(&buf, out); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	default:
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}
