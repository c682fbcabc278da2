package httpapi

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
)

// Audit page sizes: a page of the trail view, and the most one answer (a
// page or the CSV) holds.
const (
	auditPageDefault = 200
	auditPageMax     = 5000
)

// auditFilter is the audit trail's filters as GET /api/audit and
// /api/audit.csv read them: hold, patient (key), actor, kind (one or a comma
// list), since and until (ParseWhen), limit and offset.
type auditFilter struct {
	q             audit.Query
	patient       string
	actor         string
	until         time.Time
	limit, offset int
}

func parseAuditFilter(r *http.Request, now time.Time) (auditFilter, error) {
	v := r.URL.Query()
	f := auditFilter{q: audit.Query{HoldID: strings.TrimSpace(v.Get("hold"))}, patient: strings.TrimSpace(v.Get("patient")),
		actor: strings.TrimSpace(v.Get("actor")), limit: auditPageDefault}
	if f.q.HoldID != "" && !bus.ValidToken(f.q.HoldID) {
		return f, newErr(http.StatusBadRequest, "bad_request", "hold: not a hold ID")
	}
	for _, k := range strings.Split(v.Get("kind"), ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if !bus.ValidToken(k) {
			return f, newErr(http.StatusBadRequest, "bad_request", "kind %q: not an audit kind", hlTrunc(k))
		}
		f.q.Kinds = append(f.q.Kinds, k)
	}
	if s := v.Get("since"); s != "" {
		t, _, err := ParseWhen(s, now)
		if err != nil {
			return f, newErr(http.StatusBadRequest, "bad_request", "since: %s", err)
		}
		f.q.Since = t
	}
	if s := v.Get("until"); s != "" {
		t, isDate, err := ParseWhen(s, now)
		if err != nil {
			return f, newErr(http.StatusBadRequest, "bad_request", "until: %s", err)
		}
		if isDate {
			t = t.AddDate(0, 0, 1) // a date includes its day
		}
		f.until = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > auditPageMax {
			return f, newErr(http.StatusBadRequest, "bad_request", "limit: want 1 to %d, got %q", auditPageMax, hlTrunc(s))
		}
		f.limit = n
	}
	if s := v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return f, newErr(http.StatusBadRequest, "bad_request", "offset: want a number >= 0, got %q", hlTrunc(s))
		}
		f.offset = n
	}
	return f, nil
}

func hlTrunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func (f auditFilter) match(e audit.Event) bool {
	if f.patient != "" && e.PatientKey != f.patient {
		return false
	}
	if f.actor != "" && !strings.EqualFold(e.Actor, f.actor) {
		return false
	}
	return f.until.IsZero() || e.At.Before(f.until)
}

// auditPage reads the trail with f (audit.Query reads at most 10,000 events
// per request: the read is bounded; truncated says a narrower filter is
// needed to see past it) and returns the page of matching events, the number
// matched and whether the read reached its bound.
func (a *API) auditPage(r *http.Request, f auditFilter) (page []audit.Event, matched int, truncated bool, err error) {
	evs, err := a.svc.Audit(r.Context(), f.q)
	if err != nil {
		return nil, 0, false, err
	}
	truncated = len(evs) >= maxAuditEvents
	page = []audit.Event{}
	for _, e := range evs {
		if !f.match(e) {
			continue
		}
		matched++
		if matched > f.offset && len(page) < f.limit {
			page = append(page, e)
		}
	}
	return page, matched, truncated, nil
}

// maxAuditEvents is audit.Query's bound on one read.
const maxAuditEvents = 10000

// audit serves GET /api/audit: the trail, filtered and paged.
func (a *API) audit(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, err := parseAuditFilter(r, time.Now())
	if err != nil {
		return err
	}
	page, matched, truncated, err := a.auditPage(r, f)
	if err != nil {
		return err
	}
	resp := map[string]any{"events": page, "total": matched, "offset": f.offset, "limit": f.limit, "truncated": truncated}
	if f.offset+len(page) < matched {
		resp["next_offset"] = f.offset + len(page)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// auditCSVHeader names the columns of GET /api/audit.csv.
var auditCSVHeader = []string{"seq", "at", "kind", "action", "hold_id", "patient_key", "control_id", "from", "to", "path",
	"actor", "role", "reason", "bases", "deadline", "determination_id", "dead_seq"}

// auditCSV serves GET /api/audit.csv: the same filters and bound as
// /api/audit (limit up to 5,000 rows, default 5,000), as CSV with a header
// row. Cells that a spreadsheet would read as a formula are prefixed with an
// apostrophe (OWASP CSV injection). The export is audited (audit.export).
func (a *API) auditCSV(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, err := parseAuditFilter(r, time.Now())
	if err != nil {
		return err
	}
	if r.URL.Query().Get("limit") == "" {
		f.limit = auditPageMax
	}
	page, matched, _, err := a.auditPage(r, f)
	if err != nil {
		return err
	}
	if err := a.access(r.Context(), p, "audit.export", f.q.HoldID, strconv.Itoa(len(page))+" of "+strconv.Itoa(matched)+" audit events as CSV"); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="resultgate-audit.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(auditCSVHeader)
	for _, e := range page {
		var bases []string
		for _, b := range e.Bases {
			bases = append(bases, b.Kind)
		}
		at, deadline := e.At.UTC().Format(time.RFC3339), ""
		if !e.Deadline.IsZero() {
			deadline = e.Deadline.UTC().Format(time.RFC3339)
		}
		dead := ""
		if e.DeadSeq != 0 {
			dead = strconv.FormatUint(e.DeadSeq, 10)
		}
		row := []string{strconv.FormatUint(e.Seq, 10), at, e.Kind, e.Action, e.HoldID, e.PatientKey, e.ControlID,
			string(e.From), string(e.To), string(e.Path), e.Actor, e.Role, e.Reason, strings.Join(bases, " "), deadline, e.Determination, dead}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
