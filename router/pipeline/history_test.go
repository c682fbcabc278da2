package pipeline

import (
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
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

// TestDeadlinePathNamesWhatHappened: a patient's request to wait a time that
// runs its course is released on its own path (feed header and audit say
// so); a request to wait for a clinician's review that nobody gave is cut by
// the hard deadline.
func TestDeadlinePathNamesWhatHappened(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, true)  // hold, elapse only
	e.consent(s, "MRN2", "active", true, false) // hold until review
	e.send(msgSpec{ctrl: "D1", pid: "MRN1", filler: "F1", section: "SP"})
	e.send(msgSpec{ctrl: "D2", pid: "MRN2", filler: "F2", section: "SP"})
	e.waitSettled()
	e.waitState(s, holdOf("D1"), hold.StateHeld)
	e.waitState(s, holdOf("D2"), hold.StateHeld)
	e.clock.Advance(73 * time.Hour)
	asked := e.waitState(s, holdOf("D1"), hold.StateReleased)
	cut := e.waitState(s, holdOf("D2"), hold.StateReleased)
	if asked.Release.Path != hold.PathPatientDelayEnded || cut.Release.Path != hold.PathDeadline {
		t.Fatalf("paths: elapsed request %q (%s), review request %q (%s)", asked.Release.Path, asked.Release.Reason, cut.Release.Path, cut.Release.Reason)
	}
	testutil.Eventually(t, 5*time.Second, "both on the feed", func() bool { return len(e.portal("portal.hl7.>")) == 2 })
	for _, m := range e.portal("portal.hl7.>") {
		want := string(hold.PathDeadline)
		if m.Header.Get(bus.HeaderHoldID) == asked.ID {
			want = string(hold.PathPatientDelayEnded)
		}
		if got := m.Header.Get(bus.HeaderReleasePath); got != want {
			t.Errorf("feed message of %s: path %q, want %q", m.Header.Get(bus.HeaderHoldID), got, want)
		}
	}
	evs, err := s.Audit(testutil.Ctx(t), audit.Query{HoldID: asked.ID})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		if ev.Kind == bus.AuditTransition && ev.To == hold.StateReleased {
			found = ev.Path == hold.PathPatientDelayEnded
		}
	}
	if !found {
		t.Errorf("audit of %s has no release on the patient-delay path: %+v", asked.ID, evs)
	}
}
