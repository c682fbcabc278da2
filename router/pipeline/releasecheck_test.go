package pipeline

import (
	"errors"
	"testing"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
)

// sameOutcome fails unless check (ReleaseCheck's answer, asked first) and
// ack (Acknowledge's) agree: both nil, or both the same sentinel.
func sameOutcome(t *testing.T, who string, check, ack error) {
	t.Helper()
	for _, s := range []error{nil, ErrBasisActive, hold.ErrForbidden, hold.ErrAlreadyReleased} {
		if s == nil {
			if (check == nil) != (ack == nil) {
				t.Errorf("%s: ReleaseCheck %v, Acknowledge %v", who, check, ack)
			}
			continue
		}
		if errors.Is(check, s) != errors.Is(ack, s) {
			t.Errorf("%s: ReleaseCheck %v, Acknowledge %v (disagree on %v)", who, check, ack, s)
		}
	}
}

// TestReleaseCheckAgreesWithAcknowledge: what the page is told a clinician
// may do (ReleaseCheck) is what Acknowledge then does, for a determination
// placed by another clinician, an unrelated clinician, the placer, a
// released hold, and a patient's fixed delay (whose refusal names the basis
// and the time it ends).
func TestReleaseCheckAgreesWithAcknowledge(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)
	if _, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "FLRC1", Issuer: "PATHSYS", Reason: "risk of self-harm", By: "DRWHO"}); err != nil {
		t.Fatal(err)
	}
	e.send(msgSpec{ctrl: "RC1", filler: "FLRC1", issuer: "PATHSYS", pid: "MRN7777", section: "CH"})
	h := e.waitState(s, holdOf("RC1"), hold.StateHeld)

	for _, by := range []string{"DROTHER", "DRSMITH", "DRWHO"} {
		cur, err := s.GetHold(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		check := s.ReleaseCheck(ctx, cur, by)
		_, ack := s.Acknowledge(ctx, h.ID, AckRequest{By: by})
		sameOutcome(t, by, check, ack)
		var r *Refusal
		if by == "DRSMITH" && (!errors.As(check, &r) || r.Basis.Kind != policy.BasisClinicianDetermination || r.Placers != "DRWHO") {
			t.Errorf("the ordering provider's refusal: %#v", check)
		}
	}
	cur, _ := s.GetHold(ctx, h.ID)
	if err := s.ReleaseCheck(ctx, cur, "DRWHO"); !errors.Is(err, hold.ErrAlreadyReleased) {
		t.Errorf("released: ReleaseCheck %v", err)
	}

	// A fixed delay the patient asked for: no review ends it.
	e2 := newPipeEnv(t)
	s2 := e2.start().Service()
	e2.consent(s2, "MRN1", "active", true, true)
	e2.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	h2 := e2.waitState(s2, holdOf("C1"), hold.StateHeld)
	check := s2.ReleaseCheck(ctx, h2, "DRSMITH")
	_, ack := s2.Acknowledge(ctx, h2.ID, AckRequest{By: "DRSMITH"})
	sameOutcome(t, "fixed delay", check, ack)
	var r *Refusal
	if !errors.As(check, &r) || r.Basis.Kind != policy.BasisPatientRequest || r.Until.IsZero() || !r.Until.Equal(r.Basis.Deadline) && !r.Until.Equal(r.Basis.NotBefore) {
		t.Errorf("fixed delay refusal: %#v", check)
	}
	if err := s2.OverrideCheck("DRONCALL", hold.RoleOnCall); err != nil {
		t.Errorf("OverrideCheck on call: %v", err)
	}
	if err := s2.OverrideCheck("DRSMITH", hold.RoleClinician); !errors.Is(err, hold.ErrForbidden) {
		t.Errorf("OverrideCheck as a clinician: %v", err)
	}
}
