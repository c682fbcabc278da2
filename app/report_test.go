package app

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/report"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/holdview"
)

// TestReportEndToEnd runs the daemon, holds three pathology results and
// releases two lab results at once, releases one hold by the clinician and
// overrides another on call, and checks GET /api/report's figures, formats
// and authorisation.
func TestReportEndToEnd(t *testing.T) {
	e := newAPIEnv(t)
	h1 := e.heldPathology(t, "REP1")
	h2 := e.heldPathology(t, "REP2")
	e.heldPathology(t, "REP3")
	sendAll(t, e.app.MLLPAddr().String(), msg(labORU, "REPLAB1"), msg(labORU, "REPLAB2"))
	jsonCT := "application/json"

	if r := e.do(t, "clinician", "POST", "/api/holds/"+h1+"/release", jsonCT, []byte(`{}`)); r.status != 200 {
		t.Fatalf("release: %d %s", r.status, r.raw)
	}
	reason := "patient asked at the bedside; oncologist present"
	if r := e.do(t, "oncall", "POST", "/api/holds/"+h2+"/override", jsonCT, []byte(`{"reason":"`+reason+`"}`)); r.status != 200 {
		t.Fatalf("override: %d %s", r.status, r.raw)
	}

	// The lab results are decided asynchronously: wait until the report
	// counts all five results.
	var rep report.Report
	var raw string
	testutil.Eventually(t, 15*time.Second, "report counts five results", func() bool {
		r := e.do(t, "compliance", "GET", "/api/report", "", nil)
		if r.status != 200 {
			t.Fatalf("report: %d %s", r.status, r.raw)
		}
		raw = r.raw
		rep = report.Report{}
		if err := json.Unmarshal([]byte(r.raw), &rep); err != nil {
			t.Fatalf("decoding the report: %v", err)
		}
		return rep.Totals.Results != nil && *rep.Totals.Results == 5
	})

	if rep.Totals.Holds != 3 || rep.Totals.HoldRate == nil || *rep.Totals.HoldRate != 0.6 ||
		rep.Totals.Released != 2 || rep.Totals.StillHeld != 1 || rep.Totals.DemographicsMissing != 0 {
		t.Errorf("totals = %+v", rep.Totals)
	}
	if len(rep.ByBasis) != 1 || rep.ByBasis[0].Basis != "state-law" || rep.ByBasis[0].Holds != 3 || rep.ByBasis[0].ComplianceRisk {
		t.Errorf("by basis = %+v", rep.ByBasis)
	}
	if !slices.ContainsFunc(rep.ByTag, func(c report.TagCount) bool { return c.Tag == "malignancy" && c.Holds == 3 }) {
		t.Errorf("by tag = %+v", rep.ByTag)
	}
	outcomes := map[string]int{}
	for _, o := range rep.Outcomes {
		outcomes[o.Outcome] = o.Holds
	}
	if outcomes[report.OutcomeClinician] != 1 || outcomes[report.OutcomeOverride] != 1 || outcomes[report.OutcomeStillHeld] != 1 || outcomes[report.OutcomeDeadline] != 0 {
		t.Errorf("outcomes = %+v", rep.Outcomes)
	}
	if len(rep.Overrides) != 1 || rep.Overrides[0].HoldID != h2 || rep.Overrides[0].Actor != "Dr Night" || rep.Overrides[0].Reason != reason {
		t.Errorf("overrides = %+v", rep.Overrides)
	}
	if rep.Risk.Holds != 0 || len(rep.Risk.HoldIDs) != 0 {
		t.Errorf("risk = %+v", rep.Risk)
	}

	// Time to release is counted from OBR-22 (obr22Text in the policy's zone,
	// America/New_York) to each hold's release time.
	fin := obr22At
	var delays []int64
	for _, id := range []string{h1, h2} {
		h, err := e.app.Service().GetHold(context.Background(), id)
		if err != nil || h.Release == nil {
			t.Fatalf("hold %s: %v %+v", id, err, h)
		}
		delays = append(delays, int64(h.Release.At.Sub(fin)/time.Second))
	}
	slices.Sort(delays)
	tt := rep.TimeToRelease
	if tt.FallbackHolds != 0 || tt.Overall.Count != 2 || *tt.Overall.MaxSeconds != delays[1] ||
		*tt.Overall.MedianSeconds != report.Percentile(delays, 0.5) || *tt.Overall.P90Seconds != report.Percentile(delays, 0.9) {
		t.Errorf("time to release = %+v (%d %d %d), want from %v", tt.Overall, *tt.Overall.MedianSeconds, *tt.Overall.P90Seconds, *tt.Overall.MaxSeconds, delays)
	}
	if len(tt.ByBasis) != 1 || tt.ByBasis[0].Stats.Count != 2 || *tt.ByBasis[0].MaxSeconds != delays[1] {
		t.Errorf("time to release by basis = %+v", tt.ByBasis)
	}

	// Five results of one 56-year-old woman without PID-15: one group per
	// dimension, suppressed (holds 3, released 2, results 5 shown).
	wantGroup := func(dim string, gs []report.Group, name string) {
		t.Helper()
		if len(gs) != 1 || gs[0].Group != name || gs[0].Results.String() != "5" || gs[0].Holds.String() != "<5" ||
			gs[0].Released.String() != "<5" || gs[0].HoldRate != nil || gs[0].TimeToRelease != nil {
			t.Errorf("%s breakdown = %+v", dim, gs)
		}
	}
	wantGroup("age", rep.Breakdown.AgeBand, report.Age40to64)
	wantGroup("sex", rep.Breakdown.Sex, "F")
	wantGroup("language", rep.Breakdown.Language, report.GroupUnset)

	// Aggregates only: no MRN, control ID or name in the report.
	for _, phi := range []string{"MRN-E2E", "TESTPATIENT", "REP1", "REPLAB1", "19700101", "1970-01-01"} {
		if strings.Contains(raw, phi) {
			t.Errorf("report contains %q", phi)
		}
	}

	// A period before the results is empty; the since/until dates parse.
	r := e.do(t, "admin", "GET", "/api/report?since=2020-01-01&until=2020-01-31", "", nil)
	if r.status != 200 || !strings.Contains(r.raw, `"holds":0`) || !strings.Contains(r.raw, `"until":"2020-02-01T00:00:00Z"`) {
		t.Errorf("empty period: %d %.300s", r.status, r.raw)
	}
	// CSV and text.
	r = e.do(t, "compliance", "GET", "/api/report?format=csv", "", nil)
	if r.status != 200 || !strings.HasPrefix(r.raw, "section,since,until,generated_at,min_cell\n") || !strings.Contains(r.raw, "\noverrides,"+h2+",Dr Night,oncall,") {
		t.Errorf("csv: %d %.500s", r.status, r.raw)
	}
	r = e.do(t, "compliance", "GET", "/api/report?format=text", "", nil)
	if r.status != 200 || !strings.Contains(r.raw, "resultgate compliance report") || !strings.Contains(r.raw, reason) {
		t.Errorf("text: %d %.500s", r.status, r.raw)
	}

	// Authorisation and errors.
	tests := []struct {
		name, who, query string
		status           int
		code             string
	}{
		{"clinician may not read reports", "clinician", "", 403, "forbidden"},
		{"on call may not read reports", "oncall", "", 403, "forbidden"},
		{"no token", "", "", 401, "unauthorized"},
		{"bad since", "compliance", "?since=yesterday", 400, "bad_request"},
		{"bad until", "compliance", "?until=2026-13-01", 400, "bad_request"},
		{"since after until", "compliance", "?since=2026-11-10&until=2026-11-01", 400, "bad_request"},
		{"bad format", "compliance", "?format=xml", 400, "bad_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.who, "GET", "/api/report"+tc.query, "", nil)
			if r.status != tc.status || r.body["error"] != tc.code || r.body["reason"] == "" {
				t.Errorf("got %d %.200s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
		})
	}

	// Reads are audited; the denied clinician too.
	evs, err := e.app.Service().Audit(context.Background(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var reads, denied int
	for _, ev := range evs {
		if ev.Action == "report.read" && ev.Role == "compliance" {
			reads++
		}
		if ev.Kind == bus.AuditDenied && strings.HasSuffix(ev.Action, "/api/report") && ev.Role == "clinician" {
			denied++
		}
	}
	if reads == 0 || denied != 1 {
		t.Errorf("audit: %d report reads, %d denied clinician reads", reads, denied)
	}
}

// TestReportOrganisationalPolicyAndFacts runs the daemon with an
// organisational-policy hold rule and checks that the report flags every such
// hold, reads PID-15 from the inbound messages, and times a result without
// OBR-22 from the hold's creation.
func TestReportOrganisationalPolicyAndFacts(t *testing.T) {
	cfg, err := config.Parse([]byte(`
policy:
  time_zone: America/New_York
  organisational_policy:
    written_policy: "POL-LAB-017 v3"
    applies_to: [[new-cancer]]
    max: 3d
`))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, t.TempDir())
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	tokFile := filepath.Join(cfg.DataDir, "tokens.yaml")
	e := &apiEnv{tokens: map[string]string{}}
	for _, u := range []struct {
		key, name string
		role      auth.Role
		provider  string
	}{{"clinician", "Dr Delta", auth.RoleClinician, "D001"}, {"compliance", "Compliance Office", auth.RoleCompliance, ""}} {
		tok, err := auth.NewToken(tokFile, u.name, u.role, u.provider, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[u.key] = tok
	}
	e.app = startApp(t, cfg)
	e.base = "http://" + e.app.HTTPAddr().String()

	// Five Spanish-speaking patients' pathology results; the last has no OBR-22.
	spanish := func(id string) []byte {
		return []byte(strings.Replace(string(msg(pathORU, id)), "||19700101|F\r", "||19700101|F|||||||es^Spanish^ISO639\r", 1))
	}
	var msgs [][]byte
	for _, id := range []string{"ORG1", "ORG2", "ORG3", "ORG4"} {
		msgs = append(msgs, spanish(id))
	}
	msgs = append(msgs, []byte(strings.Replace(string(spanish("ORG5")), "|||"+obr22Text+"||SP|F\r", "|||||SP|F\r", 1)))
	sendAll(t, e.app.MLLPAddr().String(), msgs...)
	ids := map[string]string{}
	testutil.Eventually(t, 15*time.Second, "five holds", func() bool {
		hs, _ := e.app.Service().ListHolds(context.Background(), holdview.Filter{})
		for _, h := range hs {
			ids[h.Inbound.ControlID] = h.ID
		}
		return len(ids) == 5
	})
	if r := e.do(t, "clinician", "POST", "/api/holds/"+ids["ORG5"]+"/release", "application/json", []byte(`{}`)); r.status != 200 {
		t.Fatalf("release: %d %s", r.status, r.raw)
	}

	r := e.do(t, "compliance", "GET", "/api/report", "", nil)
	var rep report.Report
	if err := json.Unmarshal([]byte(r.raw), &rep); r.status != 200 || err != nil {
		t.Fatalf("report: %d %v %s", r.status, err, r.raw)
	}
	wantIDs := []string{ids["ORG1"], ids["ORG2"], ids["ORG3"], ids["ORG4"], ids["ORG5"]}
	slices.Sort(wantIDs)
	if rep.Risk.Holds != 5 || !slices.Equal(rep.Risk.HoldIDs, wantIDs) ||
		len(rep.Risk.Citations) != 1 || rep.Risk.Citations[0] != (report.CitationCount{Citation: "POL-LAB-017 v3", Holds: 5}) {
		t.Errorf("compliance risk = %+v", rep.Risk)
	}
	if len(rep.ByBasis) != 1 || rep.ByBasis[0] != (report.BasisCount{Basis: "organisational-policy", Label: "Organisation's policy (compliance risk)", Holds: 5, Share: 1, ComplianceRisk: true}) {
		t.Errorf("by basis = %+v", rep.ByBasis)
	}
	if tt := rep.TimeToRelease; tt.FallbackHolds != 1 || tt.Overall.Count != 1 || *tt.Overall.MaxSeconds > 60 {
		t.Errorf("time to release (from creation, seconds ago) = %+v", tt)
	}
	lang := rep.Breakdown.Language
	if len(lang) != 1 || lang[0].Group != "es" || lang[0].Results.String() != "5" || lang[0].Holds.String() != "5" ||
		lang[0].HoldRate == nil || *lang[0].HoldRate != 1 || lang[0].Released.String() != "<5" {
		t.Errorf("language breakdown = %s", r.raw)
	}
	notes := strings.Join(rep.Notes, "\n")
	if !strings.Contains(notes, "OBR-22") || !strings.Contains(notes, "organisational policy") {
		t.Errorf("notes = %q", rep.Notes)
	}
}
