package pipeline

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// bundleResources returns the id and status of each DiagnosticReport and
// Observation of a FHIR feed message, by resource type.
func bundleResources(t *testing.T, data []byte) map[string]map[string]string {
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
	out := map[string]map[string]string{}
	for _, e := range b.Entry {
		r := e.Resource
		if r.ResourceType != "DiagnosticReport" && r.ResourceType != "Observation" {
			continue
		}
		if out[r.ResourceType] == nil {
			out[r.ResourceType] = map[string]string{}
		}
		out[r.ResourceType][r.ID] = r.Status
	}
	return out
}

// TestWithdrawalOfReleasedResultIsRetracted: a routine result is released at
// once; the lab then withdraws it (OBX-11 W, "posted as wrong", e.g. wrong
// patient). Both feeds get the withdrawal after the release, on the same
// partition subject, linked to it; the FHIR Bundle updates the same
// resources to entered-in-error.
func TestWithdrawalOfReleasedResultIsRetracted(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.send(msgSpec{ctrl: "R1", filler: "F1", section: "CH"})
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "release on the feed", func() bool { return len(e.portal("portal.hl7.>")) == 1 })
	e.send(msgSpec{ctrl: "R2", filler: "F1", section: "CH", status: "F", obxStat: "W"})
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "retraction on both feeds", func() bool {
		return len(e.portal("portal.hl7.>")) == 2 && len(e.portal("portal.fhir.>")) == 2
	})
	h7, fh := e.portal("portal.hl7.>"), e.portal("portal.fhir.>")
	for _, feed := range [][]string{{h7[0].Subject, h7[1].Subject}, {fh[0].Subject, fh[1].Subject}} {
		if feed[0] != feed[1] {
			t.Errorf("release on %s, retraction on %s: not one ordered subject", feed[0], feed[1])
		}
	}
	for _, m := range []struct {
		name string
		hdr  func(string) string
	}{{"hl7", h7[1].Header.Get}, {"fhir", fh[1].Header.Get}} {
		if m.hdr(bus.HeaderReleasePath) != string(hold.PathRetraction) || m.hdr(bus.HeaderRetracts) != holdOf("R1") || m.hdr(bus.HeaderControlID) != "R2" {
			t.Errorf("%s retraction headers: path %q retracts %q control %q", m.name, m.hdr(bus.HeaderReleasePath), m.hdr(bus.HeaderRetracts), m.hdr(bus.HeaderControlID))
		}
	}
	if string(h7[1].Data) != string(msgSpec{ctrl: "R2", filler: "F1", section: "CH", status: "F", obxStat: "W"}.build()) {
		t.Errorf("HL7 retraction is not the withdrawing message as sent")
	}
	orig, retr := bundleResources(t, fh[0].Data), bundleResources(t, fh[1].Data)
	for typ, ids := range orig {
		for id := range ids {
			st, ok := retr[typ][id]
			if !ok {
				t.Errorf("%s %s of the release is not in the retraction (ids %v)", typ, id, retr[typ])
				continue
			}
			if st != "entered-in-error" {
				t.Errorf("%s %s status %q in the retraction, want entered-in-error", typ, id, st)
			}
		}
	}
	if len(orig["DiagnosticReport"]) == 0 || len(orig["Observation"]) == 0 {
		t.Fatalf("release Bundle without report or observations: %v", orig)
	}
	recs, err := s.Releases(testutil.Ctx(t), feed.ReleasesQuery{})
	if err != nil || len(recs) != 2 || recs[0].Path != hold.PathImmediate || recs[1].Path != hold.PathRetraction || recs[1].Retracts != recs[0].HoldID {
		t.Fatalf("Releases = %+v, %v; want the release and its retraction", recs, err)
	}
	if only, _ := s.Releases(testutil.Ctx(t), feed.ReleasesQuery{Path: hold.PathRetraction}); len(only) != 1 {
		t.Errorf("Releases(path retraction) = %+v", only)
	}
}

// TestCorrectionToBeHeldRetractsReleasedVersion runs the production policy:
// a benign pathology report is released at once; the patient then asks for
// results like it to wait for their clinician; the lab's correction shows a
// carcinoma. The released benign version is taken back at once (a
// synthesised withdrawal with the revision note, none of the corrected
// text, the same FHIR resources entered-in-error) and the correction is
// held; when the clinician releases it, it reaches the feed after the
// retraction.
func TestCorrectionToBeHeldRetractsReleasedVersion(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	msg := func(ctrl, status, text string) []byte {
		return []byte("MSH|^~\\&|LIS|SYNTH LAB|PORTAL|HOSP|20260302080000||ORU^R01^ORU_R01|" + ctrl + "|P|2.5.1\r" +
			"PID|1||MRN0001^^^GENHOSP^MR||TESTPATIENT^ALPHA||19700101|F\r" +
			"OBR|1|PL-9|FIL-900^SYNTH LAB|88305^Surgical pathology^CPT|||20260301120000|||||||||D001^DOCTOR^DELTA||||||20260302070000||SP|" + status + "\r" +
			"OBX|1|TX|22637-3^Path report.final diagnosis^LN||" + text + "||||||" + status + "\r")
	}
	publishRaw(t, e, "LIS|SYNTH LAB|RV-1", msg("RV-1", "F", "Benign fibroadipose tissue."))
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "benign version released", func() bool { return len(e.portal("portal.hl7.>")) == 1 })
	first := hold.HoldID(pipeSecret, "LIS|SYNTH LAB|RV-1")

	put := ConsentPut{Consent: readTestdata(t, "consent/until-clinician-review.json"), Patient: "MRN0001", By: "patient"}
	if _, err := s.PutConsent(testutil.Ctx(t), put); err != nil {
		t.Fatalf("PutConsent: %v", err)
	}
	publishRaw(t, e, "LIS|SYNTH LAB|RV-2", msg("RV-2", "C", "Invasive ductal carcinoma, grade 2."))
	e.waitSettled()
	corr := e.waitState(s, hold.HoldID(pipeSecret, "LIS|SYNTH LAB|RV-2"), hold.StateHeld)
	testutil.Eventually(t, 5*time.Second, "retraction on both feeds", func() bool {
		return len(e.portal("portal.hl7.>")) == 2 && len(e.portal("portal.fhir.>")) == 2
	})
	h7, fh := e.portal("portal.hl7.>"), e.portal("portal.fhir.>")
	ret := h7[1]
	if ret.Header.Get(bus.HeaderReleasePath) != string(hold.PathRetraction) || ret.Header.Get(bus.HeaderRetracts) != first {
		t.Fatalf("second feed message: path %q retracts %q", ret.Header.Get(bus.HeaderReleasePath), ret.Header.Get(bus.HeaderRetracts))
	}
	if strings.Contains(string(ret.Data), "carcinoma") || strings.Contains(string(fh[1].Data), "carcinoma") {
		t.Fatal("the retraction shows the held correction's content")
	}
	if !strings.Contains(string(ret.Data), "This result is being revised") || !strings.Contains(string(ret.Data), "|D\r") {
		t.Errorf("HL7 retraction lacks the note or the deleted status:\n%s", strings.ReplaceAll(string(ret.Data), "\r", "\n"))
	}
	if note, _ := url.PathUnescape(ret.Header.Get(bus.HeaderNote)); !strings.Contains(note, "being revised") {
		t.Errorf("retraction note header %q", note)
	}
	orig, retr := bundleResources(t, fh[0].Data), bundleResources(t, fh[1].Data)
	for typ, ids := range orig {
		for id := range ids {
			if st := retr[typ][id]; st != "entered-in-error" {
				t.Errorf("%s %s of the release is %q in the retraction, want entered-in-error", typ, id, st)
			}
		}
	}
	if _, err := s.Acknowledge(testutil.Ctx(t), corr.ID, AckRequest{By: corr.ProviderID}); err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, "correction released after the retraction", func() bool { return len(e.portal("portal.hl7.>")) == 3 })
	if got := e.portal("portal.hl7.>")[2]; got.Header.Get(bus.HeaderHoldID) != corr.ID || !strings.Contains(string(got.Data), "carcinoma") {
		t.Errorf("third feed message is not the released correction: hold %s", got.Header.Get(bus.HeaderHoldID))
	}
}
