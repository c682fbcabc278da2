package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// apiEnv is a running resultgate with the Kentucky preset and one token per role.
type apiEnv struct {
	app    *App
	base   string
	tokens map[string]string
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	cfg := kentuckyConfig(t, t.TempDir())
	tokFile := filepath.Join(cfg.DataDir, "tokens.yaml")
	toks := map[string]string{}
	for _, u := range []struct {
		key, name string
		role      auth.Role
		provider  string
	}{
		{"clinician", "Dr Delta", auth.RoleClinician, "D001"},
		{"other", "Dr Echo", auth.RoleClinician, "D002"},
		{"oncall", "Dr Night", auth.RoleOnCall, ""},
		{"compliance", "Compliance Office", auth.RoleCompliance, ""},
		{"admin", "Integration Team", auth.RoleAdmin, ""},
	} {
		tok, err := auth.NewToken(tokFile, u.name, u.role, u.provider, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		toks[u.key] = tok
	}
	return startAPIEnv(t, cfg, toks)
}

// startAPIEnv starts resultgate with cfg; toks are the bearer tokens by user key.
func startAPIEnv(t *testing.T, cfg config.Config, toks map[string]string) *apiEnv {
	t.Helper()
	a := New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	return &apiEnv{app: a, base: "http://" + a.HTTPAddr().String(), tokens: toks}
}

type apiResp struct {
	status int
	body   map[string]any
	raw    string
}

func (e *apiEnv) do(t *testing.T, who, method, path, ctype string, body []byte, hdr ...string) apiResp {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok, ok := e.tokens[who]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if who != "" {
		req.Header.Set("Authorization", "Bearer "+who)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiResp{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (e *apiEnv) heldPathology(t *testing.T, id string) string {
	t.Helper()
	sendAll(t, e.app.MLLPAddr().String(), msg(pathORU, id))
	var holdID string
	testutil.Eventually(t, 15*time.Second, "hold for "+id, func() bool {
		hs, _ := e.app.Service().ListHolds(context.Background(), holdview.Filter{Provider: "D001"})
		for _, h := range hs {
			if h.Inbound.ControlID == id {
				holdID = h.ID
				return true
			}
		}
		return false
	})
	return holdID
}

func TestAPIRolesAndErrors(t *testing.T) {
	e := newAPIEnv(t)
	h1 := e.heldPathology(t, "API1")
	h2 := e.heldPathology(t, "API2")
	jsonCT := "application/json"

	tests := []struct {
		name, who, method, path, ctype, body string
		hdr                                  []string
		status                               int
		code                                 string
	}{
		{"no token", "", "GET", "/api/holds", "", "", nil, 401, "unauthorized"},
		{"unknown token", auth.TokenPrefix + "nope", "GET", "/api/holds", "", "", nil, 401, "unauthorized"},
		{"admin may not list holds", "admin", "GET", "/api/holds", "", "", nil, 403, "forbidden"},
		{"compliance may not release", "compliance", "POST", "/api/holds/" + h1 + "/release", jsonCT, `{}`, nil, 403, "forbidden"},
		{"oncall may not use the clinician release", "oncall", "POST", "/api/holds/" + h1 + "/release", jsonCT, `{}`, nil, 403, "forbidden"},
		{"clinician may not override", "clinician", "POST", "/api/holds/" + h1 + "/override", jsonCT, `{"reason":"x"}`, nil, 403, "forbidden"},
		{"other clinician may not read", "other", "GET", "/api/holds/" + h1, "", "", nil, 403, "forbidden"},
		{"other clinician may not release", "other", "POST", "/api/holds/" + h1 + "/release", jsonCT, `{}`, nil, 403, "forbidden"},
		{"other clinician may not list another's holds", "other", "GET", "/api/holds?provider=D001", "", "", nil, 403, "forbidden"},
		{"unknown hold", "oncall", "GET", "/api/holds/h0000000000000000000000000", "", "", nil, 404, "not_found"},
		{"malformed json", "clinician", "POST", "/api/holds/" + h1 + "/release", jsonCT, `{"reason":`, nil, 400, "bad_request"},
		{"unknown field", "clinician", "POST", "/api/holds/" + h1 + "/release", jsonCT, `{"reasn":"x"}`, nil, 400, "bad_request"},
		{"form post refused", "clinician", "POST", "/api/holds/" + h1 + "/release", "application/x-www-form-urlencoded", `reason=x`, nil, 415, "unsupported_media_type"},
		{"post without content type refused", "clinician", "POST", "/api/holds/" + h1 + "/release", "", `{}`, nil, 415, "unsupported_media_type"},
		{"cross-origin refused", "clinician", "POST", "/api/holds/" + h1 + "/release", jsonCT, `{}`, []string{"Origin", "https://evil.example"}, 403, "cross_origin"},
		{"too large", "clinician", "POST", "/api/holds/" + h1 + "/release", jsonCT, `{"reason":"` + strings.Repeat("x", 2<<20) + `"}`, nil, 413, "too_large"},
		{"override needs reason", "oncall", "POST", "/api/holds/" + h2 + "/override", jsonCT, `{"reason":"  "}`, nil, 422, "reason_required"},
		{"determination needs reason", "clinician", "POST", "/api/orders/FL-X/hold", jsonCT, `{}`, nil, 422, "reason_required"},
		{"unknown harm type", "clinician", "POST", "/api/orders/FL-X/hold", jsonCT, `{"issuer":"SYNLAB","reason":"r","harm_type":"embarrassment"}`, nil, 400, "bad_request"},
		{"bad deadline filter", "oncall", "GET", "/api/holds?deadline_before=tomorrow", "", "", nil, 400, "bad_request"},
		{"bad limit", "oncall", "GET", "/api/holds?limit=0", "", "", nil, 400, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.who, tt.method, tt.path, tt.ctype, []byte(tt.body), tt.hdr...)
			if r.status != tt.status || r.body["error"] != tt.code || r.body["reason"] == "" {
				t.Errorf("got %d %.200s, want %d %s with a reason", r.status, r.raw, tt.status, tt.code)
			}
		})
	}

	// The worklist: the ordering clinician sees both holds, soonest deadline first,
	// with tags and bases; the other clinician sees none.
	r := e.do(t, "clinician", "GET", "/api/holds", "", nil)
	holds, _ := r.body["holds"].([]any)
	if r.status != 200 || len(holds) != 2 {
		t.Fatalf("clinician worklist: %d %s", r.status, r.raw)
	}
	first := holds[0].(map[string]any)
	if !strings.Contains(r.raw, `"state-law"`) || !strings.Contains(r.raw, `"malignancy"`) || first["remaining"] == "" {
		t.Errorf("worklist rows lack bases/tags/remaining: %s", r.raw)
	}
	if r := e.do(t, "other", "GET", "/api/holds", "", nil); !strings.Contains(r.raw, `"total":0`) {
		t.Errorf("other clinician sees holds: %s", r.raw)
	}
	r = e.do(t, "oncall", "GET", "/api/holds?limit=1", "", nil)
	if r.body["next_offset"] != float64(1) || r.body["total"] != float64(2) {
		t.Errorf("pagination: %s", r.raw)
	}

	// Reading a hold shows evidence and the report text, and is audited.
	r = e.do(t, "clinician", "GET", "/api/holds/"+h1, "", nil)
	if r.status != 200 || !strings.Contains(r.raw, "invasive ductal carcinoma") || !strings.Contains(r.raw, `"evidence"`) {
		t.Fatalf("hold detail: %d %.500s", r.status, r.raw)
	}

	// The ordering clinician releases h1 with a note; a second release conflicts.
	r = e.do(t, "clinician", "POST", "/api/holds/"+h1+"/release", jsonCT, []byte(`{"note_to_patient":"Dr Delta will call you today."}`))
	if r.status != 200 || r.body["state"] != "released" {
		t.Fatalf("release: %d %s", r.status, r.raw)
	}
	r = e.do(t, "clinician", "POST", "/api/holds/"+h1+"/release", jsonCT, []byte(`{}`))
	if r.status != 409 || r.body["error"] != "already_released" {
		t.Errorf("second release: %d %s", r.status, r.raw)
	}
	// On call overrides h2 with a reason.
	r = e.do(t, "oncall", "POST", "/api/holds/"+h2+"/override", jsonCT, []byte(`{"reason":"patient asked at the ED; discussed with oncology"}`))
	if r.status != 200 || r.body["state"] != "released" {
		t.Fatalf("override: %d %s", r.status, r.raw)
	}

	// The audit trail has the read, the denials, the release and the override.
	r = e.do(t, "compliance", "GET", "/api/audit", "", nil)
	if r.status != 200 {
		t.Fatalf("audit: %d %s", r.status, r.raw)
	}
	for _, want := range []string{`"kind":"access"`, `"kind":"denied"`, `"kind":"override"`, `"actor":"Dr Delta"`, `"actor":"Dr Echo"`, "patient asked at the ED"} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("audit trail lacks %s", want)
		}
	}
	if strings.Contains(r.raw, "MRN-E2E") || strings.Contains(r.raw, "TESTPATIENT") {
		t.Error("audit trail contains patient identifiers")
	}
	if r := e.do(t, "clinician", "GET", "/api/audit", "", nil); r.status != 403 {
		t.Errorf("clinician read the audit trail: %d", r.status)
	}
	// since takes the CLI's forms too: a date, an RFC 3339 time, a duration ago.
	now := time.Now().UTC()
	for _, tc := range []struct {
		since string
		some  bool // whether this test's events are at or after it
	}{
		{now.AddDate(0, 0, -1).Format("2006-01-02"), true},
		{now.AddDate(0, 0, 2).Format("2006-01-02"), false},
		{now.Add(-time.Hour).Format(time.RFC3339), true},
		{now.Add(time.Hour).Format(time.RFC3339), false},
		{"1h", true},
	} {
		r := e.do(t, "compliance", "GET", "/api/audit?since="+url.QueryEscape(tc.since), "", nil)
		evs, _ := r.body["events"].([]any)
		if r.status != 200 || (len(evs) > 0) != tc.some {
			t.Errorf("audit since=%s: %d, %d events; want 200 and events %t", tc.since, r.status, len(evs), tc.some)
		}
	}
	r = e.do(t, "compliance", "GET", "/api/audit?since=yesterday", "", nil)
	if want := `since: want an RFC 3339 time (2026-12-07T08:00:00Z), a date (2026-12-07, UTC) or a duration ago (24h), got \"yesterday\"`; r.status != 400 || !strings.Contains(r.raw, want) {
		t.Errorf("audit since=yesterday: %d %s; want 400 with %s", r.status, r.raw, want)
	}
}

func TestAPIConsent(t *testing.T) {
	e := newAPIEnv(t)
	good, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "consent", "until-clinician-review.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := e.do(t, "admin", "POST", "/fhir/Consent", "application/fhir+json", good)
	if r.status != 400 || !strings.Contains(r.raw, "no patient identifier") {
		t.Errorf("Consent naming only Patient/example-1: %d %s", r.status, r.raw)
	}
	r = e.do(t, "admin", "POST", "/fhir/Consent?patient=MRN-E2E-C1%5E%5E%5EGENHOSP", "application/fhir+json", good)
	if r.status != 201 {
		t.Fatalf("POST Consent: %d %s", r.status, r.raw)
	}
	bad := bytes.Replace(good, []byte(`"status": "active"`), []byte(`"status": "sometimes"`), 1)
	r = e.do(t, "admin", "POST", "/fhir/Consent", "application/fhir+json", bad)
	if r.status != 400 || r.body["resourceType"] != "OperationOutcome" {
		t.Errorf("invalid Consent: %d %s", r.status, r.raw)
	}
	r = e.do(t, "admin", "POST", "/fhir/Consent", "application/fhir+json", []byte(`{"resourceType":`))
	if r.status != 400 || r.body["resourceType"] != "OperationOutcome" {
		t.Errorf("malformed Consent: %d %s", r.status, r.raw)
	}
	if r := e.do(t, "compliance", "POST", "/fhir/Consent", "application/fhir+json", good); r.status != 403 {
		t.Errorf("compliance posted a Consent: %d", r.status)
	}
	r = e.do(t, "clinician", "GET", "/fhir/Consent?patient=MRN-E2E-C1%5E%5E%5EGENHOSP", "", nil)
	// The resource as stored, with the id the server gave it (the patient key,
	// as FHIR create assigns ids) and its version.
	if r.status != 200 || r.body["total"] != float64(1) || !strings.Contains(r.raw, "LP7839-6") || !strings.Contains(r.raw, `"versionId":"1"`) || strings.Contains(r.raw, "rg-clinician-review") {
		t.Errorf("search Consent: %d %s", r.status, r.raw)
	}
	r = e.do(t, "admin", "GET", "/fhir/Consent", "", nil)
	if r.status != 400 || r.body["resourceType"] != "OperationOutcome" {
		t.Errorf("search without patient: %d %s", r.status, r.raw)
	}
	// Every answer of a FHIR route is FHIR: wrong media type, no token and a
	// refused role are OperationOutcomes too.
	for _, tc := range []struct {
		who, ctype string
		status     int
		code       string
	}{
		{"admin", "text/plain", 415, "not-supported"},
		{"", "application/fhir+json", 401, "login"},
		{"compliance", "application/fhir+json", 403, "forbidden"},
	} {
		r := e.do(t, tc.who, "POST", "/fhir/Consent", tc.ctype, good)
		issues, _ := r.body["issue"].([]any)
		if r.status != tc.status || r.body["resourceType"] != "OperationOutcome" || len(issues) != 1 || issues[0].(map[string]any)["code"] != tc.code {
			t.Errorf("POST as %q with %s: %d %s; want %d OperationOutcome %s", tc.who, tc.ctype, r.status, r.raw, tc.status, tc.code)
		}
	}
}

// POST /fhir/Consent is answered as a FHIR create: 201 with Location naming
// the version, the resource as stored (id, meta.versionId), readable at that
// Location; versions count per patient; the audit trail has the real role.
func TestAPIConsentCreateAnswer(t *testing.T) {
	e := newAPIEnv(t)
	good, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "consent", "until-clinician-review.json"))
	if err != nil {
		t.Fatal(err)
	}
	revoked := bytes.Replace(good, []byte(`"status": "active"`), []byte(`"status": "inactive"`), 1)
	post := func(who, patient string, body []byte, prefer string) (apiResp, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", e.base+"/fhir/Consent?patient="+url.QueryEscape(patient), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.tokens[who])
		req.Header.Set("Content-Type", "application/fhir+json")
		if prefer != "" {
			req.Header.Set("Prefer", prefer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		r := apiResp{status: resp.StatusCode, raw: string(raw)}
		_ = json.Unmarshal(raw, &r.body)
		if ct := resp.Header.Get("Content-Type"); r.raw != "" && ct != "application/fhir+json" {
			t.Errorf("POST answer Content-Type %q", ct)
		}
		return r, resp.Header.Get("Location")
	}
	key := func(patient string) string {
		rec, err := e.app.Service().GetConsent(context.Background(), patient)
		if err != nil {
			t.Fatal(err)
		}
		return rec.PatientKey
	}

	// Patient A by the admin, then patient B by a clinician: each is version 1.
	r, loc := post("admin", "MRN-CA^^^GENHOSP", good, "")
	keyA := key("MRN-CA^^^GENHOSP")
	if r.status != 201 || loc != "/fhir/Consent/"+keyA+"/_history/1" || r.body["resourceType"] != "Consent" || r.body["id"] != keyA ||
		r.body["meta"].(map[string]any)["versionId"] != "1" || r.body["status"] != "active" {
		t.Fatalf("POST A: %d, Location %q, %s", r.status, loc, r.raw)
	}
	r, loc = post("clinician", "MRN-CB^^^GENHOSP", good, "")
	keyB := key("MRN-CB^^^GENHOSP")
	if r.status != 201 || loc != "/fhir/Consent/"+keyB+"/_history/1" {
		t.Fatalf("POST B: %d, Location %q, %s (versions are per patient)", r.status, loc, r.raw)
	}
	// A's revocation, by a clinician, is A's version 2.
	r, loc = post("clinician", "MRN-CA^^^GENHOSP", revoked, "return=OperationOutcome")
	issues, _ := r.body["issue"].([]any)
	if r.status != 201 || loc != "/fhir/Consent/"+keyA+"/_history/2" || r.body["resourceType"] != "OperationOutcome" || len(issues) == 0 ||
		!strings.HasPrefix(issues[0].(map[string]any)["diagnostics"].(string), "Consent stored as version 2;") {
		t.Fatalf("POST A revoked: %d, Location %q, %s", r.status, loc, r.raw)
	}
	if r, loc := post("admin", "MRN-CA^^^GENHOSP", revoked, "return=minimal"); r.status != 201 || r.raw != "" || loc != "/fhir/Consent/"+keyA+"/_history/3" {
		t.Errorf("return=minimal: %d %q %q", r.status, r.raw, loc)
	}

	// The Locations read back: each version as stored, and the current one.
	for _, tc := range []struct{ path, version, status string }{
		{"/fhir/Consent/" + keyA + "/_history/1", "1", "active"},
		{"/fhir/Consent/" + keyA + "/_history/2", "2", "inactive"},
		{"/fhir/Consent/" + keyA, "3", "inactive"},
		{"/fhir/Consent/" + keyB, "1", "active"},
	} {
		r := e.do(t, "compliance", "GET", tc.path, "", nil)
		meta, _ := r.body["meta"].(map[string]any)
		if r.status != 200 || r.body["id"] == nil || meta["versionId"] != tc.version || r.body["status"] != tc.status {
			t.Errorf("GET %s: %d %s; want version %s, status %s", tc.path, r.status, r.raw, tc.version, tc.status)
		}
	}
	for _, path := range []string{"/fhir/Consent/" + keyA + "/_history/9", "/fhir/Consent/" + strings.Repeat("0", 32), "/fhir/Consent/not-a-key"} {
		if r := e.do(t, "admin", "GET", path, "", nil); r.status != 404 || r.body["resourceType"] != "OperationOutcome" {
			t.Errorf("GET %s: %d %s; want 404 OperationOutcome", path, r.status, r.raw)
		}
	}
	if r := e.do(t, "admin", "GET", "/fhir/Consent/"+keyA+"/_history/x", "", nil); r.status != 400 || r.body["resourceType"] != "OperationOutcome" {
		t.Errorf("GET version x: %d %s", r.status, r.raw)
	}

	// The audit trail records each filer's real role.
	evs, err := e.app.Service().Audit(context.Background(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, ev := range evs {
		if ev.Kind == bus.AuditConsent {
			roles = append(roles, ev.Actor+"/"+ev.Role)
		}
	}
	if got, want := strings.Join(roles, ","), "Integration Team/admin,Dr Delta/clinician,Dr Delta/clinician,Integration Team/admin"; got != want {
		t.Errorf("consent audit events %s, want %s", got, want)
	}

	// Concurrent filings for one patient get distinct, consecutive versions.
	const n = 6
	var wg sync.WaitGroup
	revs := make(chan uint64, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.app.Service().PutConsent(context.Background(), pipeline.ConsentPut{Consent: good, Patient: "MRN-CC^^^GENHOSP", By: "portal", Role: "patient"})
			if err != nil {
				t.Error(err)
				return
			}
			revs <- res.Record.Revision
		}()
	}
	wg.Wait()
	close(revs)
	seen := map[uint64]bool{}
	for r := range revs {
		seen[r] = true
	}
	for v := uint64(1); v <= n; v++ {
		if !seen[v] {
			t.Errorf("concurrent Consents got versions %v, want 1..%d each once", seen, n)
			break
		}
	}
}

// TestConsentHoldsAndRevokeReleases: a patient's Consent on file (deny pathology
// until clinician review) holds a pathology result that no statute would hold;
// revoking it releases the result.
func TestConsentHoldsAndRevokeReleases(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	tokFile := filepath.Join(cfg.DataDir, "tokens.yaml")
	adminTok, err := auth.NewToken(tokFile, "Portal", auth.RoleAdmin, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cfg)
	e := &apiEnv{app: a, base: "http://" + a.HTTPAddr().String(), tokens: map[string]string{"admin": adminTok}}
	consent, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "consent", "until-clinician-review.json"))
	if err != nil {
		t.Fatal(err)
	}
	const patient = "/fhir/Consent?patient=MRN-E2E-CON1%5E%5E%5EGENHOSP"
	if r := e.do(t, "admin", "POST", patient, "application/fhir+json", consent); r.status != 201 {
		t.Fatalf("POST Consent: %d %s", r.status, r.raw)
	}
	holdID := e.heldPathology(t, "CON1")
	h, err := a.Service().GetHold(context.Background(), holdID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Bases) != 1 || h.Bases[0].Kind != "patient-request" {
		t.Fatalf("bases = %+v, want patient-request", h.Bases)
	}
	if n, _, _ := feed(t, a.JetStream(), "portal.hl7.", "CON1"); n != 0 {
		t.Fatal("held result in the feed")
	}
	revoked := bytes.Replace(consent, []byte(`"status": "active"`), []byte(`"status": "inactive"`), 1)
	if r := e.do(t, "admin", "POST", patient, "application/fhir+json", revoked); r.status != 201 {
		t.Fatalf("POST revoked Consent: %d %s", r.status, r.raw)
	}
	testutil.Eventually(t, 15*time.Second, "released after revocation", func() bool {
		n, _, _ := feed(t, a.JetStream(), "portal.hl7.", "CON1")
		return n == 1
	})
	_, hdr, _ := feed(t, a.JetStream(), "portal.hl7.", "CON1")
	if hdr[bus.HeaderReleasePath] != string(hold.PathPatientRevoked) {
		t.Errorf("release path %q, want patient-revoked", hdr[bus.HeaderReleasePath])
	}
	// The revocation was filed by the admin: the release says so, not "patient".
	h, err = a.Service().GetHold(context.Background(), holdID)
	if err != nil {
		t.Fatal(err)
	}
	if h.Release == nil || h.Release.Actor != "Portal" || h.Release.Role != "admin" {
		t.Errorf("release %+v, want actor Portal, role admin", h.Release)
	}
}
