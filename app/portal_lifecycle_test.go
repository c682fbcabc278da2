package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/report"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// startClockedAPIEnv starts resultgate with cfg, the pipeline on clk (nil:
// the system clock), and one bearer token per role: admin (Consents),
// clinician D001 (the ordering provider of the templates) and compliance.
func startClockedAPIEnv(t *testing.T, cfg config.Config, clk *testutil.FakeClock) *apiEnv {
	t.Helper()
	tokFile := filepath.Join(cfg.DataDir, "tokens.yaml")
	toks := map[string]string{}
	for _, u := range []struct {
		key, name, provider string
		role                auth.Role
	}{
		{"admin", "Integration Team", "", auth.RoleAdmin},
		{"clinician", "Dr Delta", "D001", auth.RoleClinician},
		{"compliance", "Compliance Office", "", auth.RoleCompliance},
	} {
		tok, err := auth.NewToken(tokFile, u.name, u.role, u.provider, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		toks[u.key] = tok
	}
	a := New(cfg, zerolog.Nop())
	if clk != nil {
		a.clock = clk
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return &apiEnv{app: a, base: "http://" + a.HTTPAddr().String(), tokens: toks}
}

// portalMsgs returns the PORTAL stream's messages on subjects matching
// filter ("portal.hl7.>", "portal.fhir.>"), in stream order.
func portalMsgs(t *testing.T, js jetstream.JetStream, filter string) []*nats.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := bus.ReadAll(ctx, js, bus.StreamPortal, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}, 1000,
		func(m jetstream.Msg, _ uint64) (*nats.Msg, error) {
			return &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}, nil
		})
	if err != nil {
		t.Fatalf("reading %s: %v", filter, err)
	}
	return out
}

// fhirResources returns the status of each DiagnosticReport and Observation
// of a FHIR feed Bundle, by "Type/id".
func fhirResources(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
				Status       string `json:"status"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range b.Entry {
		if r := e.Resource; r.ResourceType == "DiagnosticReport" || r.ResourceType == "Observation" {
			out[r.ResourceType+"/"+r.ID] = r.Status
		}
	}
	return out
}

// apiHold reads GET /api/holds/{id} as who.
func (e *apiEnv) apiHold(t *testing.T, who, id string) *hold.Hold {
	t.Helper()
	r := e.do(t, who, "GET", "/api/holds/"+id, "", nil)
	if r.status != 200 {
		t.Fatalf("GET /api/holds/%s: %d %s", id, r.status, r.raw)
	}
	var h hold.Hold
	if err := json.Unmarshal([]byte(r.raw), &h); err != nil {
		t.Fatalf("decoding hold %s: %v", id, err)
	}
	return &h
}

// holdOfControl waits for the held hold of the inbound message with control
// ID ctl on clinician D001's worklist (GET /api/holds) and returns its ID.
func (e *apiEnv) holdOfControl(t *testing.T, ctl string) string {
	t.Helper()
	var id string
	testutil.Eventually(t, 15*time.Second, "hold for "+ctl, func() bool {
		r := e.do(t, "clinician", "GET", "/api/holds", "", nil)
		var body struct {
			Holds []struct {
				ID        string `json:"id"`
				ControlID string `json:"control_id"`
			} `json:"holds"`
		}
		if r.status != 200 || json.Unmarshal([]byte(r.raw), &body) != nil {
			t.Fatalf("GET /api/holds: %d %s", r.status, r.raw)
		}
		for _, h := range body.Holds {
			if h.ControlID == ctl {
				id = h.ID
				return true
			}
		}
		return false
	})
	return id
}

// postConsent files a Consent from testdata/consent for the patient with
// identifier mrn (assigning authority GENHOSP) as the integration team would.
func (e *apiEnv) postConsent(t *testing.T, file, mrn string) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "consent", file))
	if err != nil {
		t.Fatal(err)
	}
	r := e.do(t, "admin", "POST", "/fhir/Consent?patient="+url.QueryEscape(mrn+"^^^GENHOSP"), "application/fhir+json", body)
	if r.status != 201 && r.status != 200 {
		t.Fatalf("POST /fhir/Consent: %d %s", r.status, r.raw)
	}
}

// TestPatientDelayEndsOverMLLP runs serve's wiring with the pipeline on a
// fake clock: a malignant pathology report arrives over MLLP for a patient
// whose Consent asks to see malignancies 72 hours after they arrive, and
// nothing else holds it. When the clock passes the 72 hours, the result is
// released on the patient-delay-ended path: so say both feeds' headers (and
// the FHIR Provenance's reason), the hold's audit trail and the compliance
// report, which counts it as a delay that ended as asked, not as a hold cut
// short by its hard deadline (issue 11, point 6).
func TestPatientDelayEndsOverMLLP(t *testing.T) {
	clk := testutil.NewFakeClock(time.Now())
	e := startClockedAPIEnv(t, testConfig(t, t.TempDir()), clk)
	e.postConsent(t, "hours.json", "MRN-E2E-DELAY1")
	sendAll(t, e.app.MLLPAddr().String(), msg(pathORU, "DELAY1"))
	id := e.holdOfControl(t, "DELAY1")
	h := e.apiHold(t, "clinician", id)
	bases := hold.PolicyBases(h.Bases)
	if h.State != hold.StateHeld || len(bases) != 1 || bases[0].Kind != policy.BasisPatientRequest || bases[0].Until != policy.UntilElapsed {
		t.Fatalf("hold %s: state %s bases %+v; want held on one patient-request basis that elapses", id, h.State, bases)
	}
	if !h.Deadline.Equal(bases[0].Deadline) {
		t.Fatalf("hold deadline %s, patient's delay ends %s: another limit binds", h.Deadline, bases[0].Deadline)
	}
	if n, _, _ := feed(t, e.app.js, "portal.hl7.", "DELAY1"); n != 0 {
		t.Fatalf("held result on the feed %d times", n)
	}

	clk.Advance(h.Deadline.Sub(clk.Now()) + time.Minute)
	testutil.Eventually(t, 15*time.Second, "released on both feeds", func() bool {
		n7, _, _ := feed(t, e.app.js, "portal.hl7.", "DELAY1")
		nf, _, _ := feed(t, e.app.js, "portal.fhir.", "DELAY1")
		return n7 == 1 && nf == 1
	})
	for _, prefix := range []string{"portal.hl7.", "portal.fhir."} {
		_, hdr, data := feed(t, e.app.js, prefix, "DELAY1")
		if hdr[bus.HeaderReleasePath] != string(hold.PathPatientDelayEnded) || hdr[bus.HeaderHoldID] != id || hdr[bus.HeaderReleaseActor] != "resultgate" {
			t.Errorf("%s headers: path %q hold %q actor %q; want %s, %s, resultgate", prefix,
				hdr[bus.HeaderReleasePath], hdr[bus.HeaderHoldID], hdr[bus.HeaderReleaseActor], hold.PathPatientDelayEnded, id)
		}
		if reason := unescape(hdr[bus.HeaderReleaseReason]); strings.Contains(reason, "hard deadline") {
			t.Errorf("%s release reason %q names the hard deadline", prefix, reason)
		}
		if prefix == "portal.fhir." && !strings.Contains(string(data), `"code":"`+fhirmap.ReasonPatientDelay+`"`) {
			t.Errorf("FHIR Bundle has no %s release reason", fhirmap.ReasonPatientDelay)
		}
	}
	h = e.apiHold(t, "clinician", id)
	if h.State != hold.StateReleased || h.Release == nil || h.Release.Path != hold.PathPatientDelayEnded {
		t.Fatalf("hold after the delay: state %s release %+v", h.State, h.Release)
	}

	r := e.do(t, "compliance", "GET", "/api/audit?hold="+id, "", nil)
	var trail struct {
		Events []audit.Event `json:"events"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.raw), &trail) != nil {
		t.Fatalf("GET /api/audit: %d %s", r.status, r.raw)
	}
	var paths []hold.ReleasePath
	for _, ev := range trail.Events {
		if ev.Kind == bus.AuditTransition && ev.To == hold.StateReleased {
			paths = append(paths, ev.Path)
		}
	}
	if len(paths) != 1 || paths[0] != hold.PathPatientDelayEnded {
		t.Errorf("audited releases of %s: %v, want one on %s", id, paths, hold.PathPatientDelayEnded)
	}

	r = e.do(t, "compliance", "GET", "/api/report", "", nil)
	var rep report.Report
	if r.status != 200 || json.Unmarshal([]byte(r.raw), &rep) != nil {
		t.Fatalf("GET /api/report: %d %s", r.status, r.raw)
	}
	outcomes := map[string]int{}
	for _, o := range rep.Outcomes {
		outcomes[o.Outcome] = o.Holds
	}
	if rep.Totals.Holds != 1 || outcomes[report.OutcomePatientDelay] != 1 || outcomes[report.OutcomeDeadline] != 0 {
		t.Errorf("report: %d holds, outcomes %+v; want the one hold as %s, none as %s", rep.Totals.Holds, rep.Outcomes, report.OutcomePatientDelay, report.OutcomeDeadline)
	}
	if bo := rep.TimeToRelease.ByOutcome; len(bo) != 1 || bo[0].Outcome != report.OutcomePatientDelay || bo[0].Stats.Count != 1 {
		t.Errorf("time to release by outcome: %+v", bo)
	}
}

// corrected returns the pathology message m (control ID ctl, built by msg)
// as the lab's correction of the same order: control ID ctl+"-C", OBR-25 and
// every OBX-11 C, and the final diagnosis text was replaced by diagnosis.
func corrected(t *testing.T, m []byte, ctl, was, diagnosis string) []byte {
	t.Helper()
	s := string(m)
	for _, r := range []struct{ old, new string }{
		{"|" + ctl + "|P|2.5.1\r", "|" + ctl + "-C|P|2.5.1\r"},
		{"|SP|F\r", "|SP|C\r"},
		{"||||||F\r", "||||||C\r"},
		{was, diagnosis},
	} {
		if !strings.Contains(s, r.old) {
			t.Fatalf("template has no %q", r.old)
		}
		s = strings.ReplaceAll(s, r.old, r.new)
	}
	return []byte(s)
}

// tagNames returns the names of h's tags.
func tagNames(h *hold.Hold) []string {
	var out []string
	for _, tg := range h.Tags {
		out = append(out, tg.Tag)
	}
	return out
}

// TestCorrectionKeepsNewCancerOverMLLP runs serve's wiring with Kentucky's
// statute: a first malignant pathology report for a patient is held
// (state-law) and tagged new-cancer; the lab's correction of it (OBR-25 C)
// arrives before anyone released it. The first version, superseded without
// the patient ever seeing it, is not a prior malignancy: the correction's
// hold keeps new-cancer, in the hold's tags on the worklist and in its
// detail (issue 11, point 7).
func TestCorrectionKeepsNewCancerOverMLLP(t *testing.T) {
	e := startClockedAPIEnv(t, kentuckyConfig(t, t.TempDir()), nil)
	first := msg(pathORU, "NEWCA1")
	sendAll(t, e.app.MLLPAddr().String(), first)
	firstID := e.holdOfControl(t, "NEWCA1")
	if tags := tagNames(e.apiHold(t, "clinician", firstID)); !strings.Contains(strings.Join(tags, ","), policy.TagNewCancer) {
		t.Fatalf("first malignant result: tags %v, want new-cancer", tags)
	}

	sendAll(t, e.app.MLLPAddr().String(), corrected(t, first, "NEWCA1", "invasive ductal carcinoma, grade 2.", "invasive ductal carcinoma, grade 3, margins involved."))
	corrID := e.holdOfControl(t, "NEWCA1-C")
	testutil.Eventually(t, 15*time.Second, "first version superseded", func() bool {
		return e.apiHold(t, "clinician", firstID).State == hold.StateSuperseded
	})
	r := e.do(t, "clinician", "GET", "/api/holds", "", nil)
	var list struct {
		Holds []struct {
			ID         string   `json:"id"`
			Tags       []string `json:"tags"`
			Supersedes string   `json:"supersedes"`
		} `json:"holds"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.raw), &list) != nil {
		t.Fatalf("GET /api/holds: %d %s", r.status, r.raw)
	}
	if len(list.Holds) != 1 || list.Holds[0].ID != corrID || list.Holds[0].Supersedes != firstID ||
		!strings.Contains(","+strings.Join(list.Holds[0].Tags, ",")+",", ","+policy.TagNewCancer+",") {
		t.Errorf("worklist %+v: want only the correction %s, superseding %s, tagged new-cancer", list.Holds, corrID, firstID)
	}
	corr := e.apiHold(t, "clinician", corrID)
	tags := "," + strings.Join(tagNames(corr), ",") + ","
	if corr.State != hold.StateHeld || !strings.Contains(tags, ","+policy.TagNewCancer+",") || !strings.Contains(tags, ","+policy.TagMalignancy+",") {
		t.Errorf("correction hold: state %s tags %v; want held with malignancy and new-cancer", corr.State, tagNames(corr))
	}
	if n, _, _ := feed(t, e.app.js, "portal.hl7.", "NEWCA1-C"); n != 0 {
		t.Errorf("held correction on the feed %d times", n)
	}
}

// TestCorrectionToBeHeldRetractsOverMLLP runs serve's default policy: a
// benign pathology report is released at once to both feeds; the patient
// then files a Consent asking to see pathology only after their clinician
// has reviewed it, and the lab's correction shows a carcinoma. At once, and
// before anything of the correction reaches the patient, both feeds take the
// released version back on its partition subject, linked to it
// (Resultgate-Retracts): the HL7 feed with the same order and observations
// deleted and the "being revised" note, the FHIR feed with the same resource
// ids entered-in-error; neither carries the corrected text. The correction
// is held on the patient's request; when the clinician releases it, it
// reaches both feeds after the retraction (issue 11, point 1).
func TestCorrectionToBeHeldRetractsOverMLLP(t *testing.T) {
	e := startClockedAPIEnv(t, testConfig(t, t.TempDir()), nil)
	js := e.app.js
	benign := bytes.ReplaceAll(msg(pathORU, "REV1"), []byte("invasive ductal carcinoma, grade 2."), []byte("benign fibroadipose tissue."))
	sendAll(t, e.app.MLLPAddr().String(), benign)
	testutil.Eventually(t, 15*time.Second, "benign version on both feeds", func() bool {
		return len(portalMsgs(t, js, "portal.hl7.>")) == 1 && len(portalMsgs(t, js, "portal.fhir.>")) == 1
	})
	rel7, relF := portalMsgs(t, js, "portal.hl7.>")[0], portalMsgs(t, js, "portal.fhir.>")[0]
	released := rel7.Header.Get(bus.HeaderHoldID)
	if rel7.Header.Get(bus.HeaderReleasePath) != string(hold.PathImmediate) || released == "" || relF.Header.Get(bus.HeaderHoldID) != released {
		t.Fatalf("benign version: path %q hold %q/%q; want released at once", rel7.Header.Get(bus.HeaderReleasePath), released, relF.Header.Get(bus.HeaderHoldID))
	}

	e.postConsent(t, "until-clinician-review.json", "MRN-E2E-REV1")
	sendAll(t, e.app.MLLPAddr().String(), corrected(t, benign, "REV1", "benign fibroadipose tissue.", "invasive ductal carcinoma, grade 2."))
	corrID := e.holdOfControl(t, "REV1-C")
	testutil.Eventually(t, 15*time.Second, "retraction on both feeds", func() bool {
		return len(portalMsgs(t, js, "portal.hl7.>")) == 2 && len(portalMsgs(t, js, "portal.fhir.>")) == 2
	})
	h7, hf := portalMsgs(t, js, "portal.hl7.>"), portalMsgs(t, js, "portal.fhir.>")
	for _, m := range []struct {
		name      string
		rel, retr *nats.Msg
	}{{"HL7", h7[0], h7[1]}, {"FHIR", hf[0], hf[1]}} {
		h := m.retr.Header
		if h.Get(bus.HeaderReleasePath) != string(hold.PathRetraction) || h.Get(bus.HeaderRetracts) != released ||
			h.Get(bus.HeaderHoldID) != corrID || h.Get(bus.HeaderControlID) != "REV1-C" {
			t.Errorf("%s retraction: path %q retracts %q hold %q control %q; want %s of %s for %s (REV1-C)", m.name,
				h.Get(bus.HeaderReleasePath), h.Get(bus.HeaderRetracts), h.Get(bus.HeaderHoldID), h.Get(bus.HeaderControlID), hold.PathRetraction, released, corrID)
		}
		if m.retr.Subject != m.rel.Subject {
			t.Errorf("%s: release on %s, retraction on %s: not one ordered subject", m.name, m.rel.Subject, m.retr.Subject)
		}
		if note := unescape(h.Get(bus.HeaderNote)); !strings.Contains(note, "being revised") {
			t.Errorf("%s retraction note %q", m.name, note)
		}
		if bytes.Contains(m.retr.Data, []byte("carcinoma")) {
			t.Errorf("%s retraction shows the held correction's content", m.name)
		}
	}
	if d := string(h7[1].Data); !strings.Contains(d, "This result is being revised") || strings.Count(d, "||||||D\r") != 2 || !strings.Contains(d, "|FL-REV1|") {
		t.Errorf("HL7 retraction does not delete both observations of order FL-REV1 with the note:\n%s", strings.ReplaceAll(d, "\r", "\n"))
	}
	orig, retr := fhirResources(t, hf[0].Data), fhirResources(t, hf[1].Data)
	if len(orig) < 3 {
		t.Fatalf("released Bundle has %d report and observation resources, want 3: %v", len(orig), orig)
	}
	for ref := range orig {
		if st, ok := retr[ref]; !ok || st != "entered-in-error" {
			t.Errorf("%s of the release is %q in the retraction (present %v), want entered-in-error", ref, st, ok)
		}
	}
	if err := fhirmap.Validate(hf[1].Data); err != nil {
		t.Errorf("retraction Bundle does not validate: %v", err)
	}
	if !bytes.Contains(hf[1].Data, []byte("This result is being revised")) {
		t.Errorf("FHIR retraction Bundle does not carry the revision note")
	}

	corr := e.apiHold(t, "clinician", corrID)
	bases := hold.PolicyBases(corr.Bases)
	if corr.State != hold.StateHeld || len(bases) != 1 || bases[0].Kind != policy.BasisPatientRequest {
		t.Fatalf("correction hold: state %s bases %+v; want held on the patient's request", corr.State, bases)
	}
	if r := e.do(t, "clinician", "POST", "/api/holds/"+corrID+"/release", "application/json", []byte(`{}`)); r.status != 200 {
		t.Fatalf("clinician release: %d %s", r.status, r.raw)
	}
	testutil.Eventually(t, 15*time.Second, "correction released to both feeds", func() bool {
		return len(portalMsgs(t, js, "portal.hl7.>")) == 3 && len(portalMsgs(t, js, "portal.fhir.>")) == 3
	})
	for _, m := range []*nats.Msg{portalMsgs(t, js, "portal.hl7.>")[2], portalMsgs(t, js, "portal.fhir.>")[2]} {
		if m.Header.Get(bus.HeaderHoldID) != corrID || m.Header.Get(bus.HeaderReleasePath) != string(hold.PathAcknowledged) ||
			m.Header.Get(bus.HeaderRetracts) != "" || !bytes.Contains(m.Data, []byte("carcinoma")) || m.Subject != rel7.Subject && m.Subject != relF.Subject {
			t.Errorf("third message on %s: hold %q path %q retracts %q; want the correction %s released by the clinician",
				m.Subject, m.Header.Get(bus.HeaderHoldID), m.Header.Get(bus.HeaderReleasePath), m.Header.Get(bus.HeaderRetracts), corrID)
		}
	}
}
