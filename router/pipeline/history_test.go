package pipeline

import (
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
)

// TestHistoryCountsWhatThePatientSaw: a malignant result held (never
// released) and then corrected is not a prior malignancy, so the correction
// keeps new-cancer; once the correction is released, a later malignant
// result for the patient is no longer new.
func TestHistoryCountsWhatThePatientSaw(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "M1", filler: "F1", section: "SP", text: "invasive carcinoma"})
	e.waitSettled()
	first := e.waitState(s, holdOf("M1"), hold.StateHeld)
	if !first.HasTag(policy.TagNewCancer) {
		t.Fatalf("first malignant result tags %v, want new-cancer", first.TagNames())
	}
	e.send(msgSpec{ctrl: "M2", filler: "F1", section: "SP", status: "C", text: "invasive carcinoma, margins revised"})
	e.waitSettled()
	corr := e.waitState(s, holdOf("M2"), hold.StateHeld)
	e.waitState(s, holdOf("M1"), hold.StateSuperseded)
	if !corr.HasTag(policy.TagNewCancer) {
		t.Fatalf("correction of a never-released malignancy lost new-cancer: tags %v", corr.TagNames())
	}
	if hist, err := s.history.Get(testutil.Ctx(t), corr.PatientKey); err != nil || hist.Malignancy {
		t.Fatalf("history before any release = %+v, %v; want none", hist, err)
	}
	if _, err := s.Acknowledge(testutil.Ctx(t), corr.ID, AckRequest{By: "DRSMITH"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "released correction on record", func() bool {
		hist, err := s.history.Get(testutil.Ctx(t), corr.PatientKey)
		return err == nil && hist.Malignancy && hist.FirstMalignancyMsg == corr.Inbound.MsgID
	})
	e.send(msgSpec{ctrl: "M3", filler: "F9", section: "SP", text: "metastatic carcinoma"})
	e.waitSettled()
	later := e.waitState(s, holdOf("M3"), hold.StateHeld)
	if later.HasTag(policy.TagNewCancer) || !later.HasTag(policy.TagMalignancy) {
		t.Fatalf("malignancy after one the patient saw: tags %v, want malignancy without new-cancer", later.TagNames())
	}
}
