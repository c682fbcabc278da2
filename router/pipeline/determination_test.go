package pipeline

import (
	"errors"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// hasDetermination reports whether hold id rests on a clinician determination.
func hasDetermination(h *hold.Hold) bool {
	return h.HasBasis(string(policy.BasisClinicianDetermination))
}

// determinationEvents returns the audit events of kind determination about
// determination id, in order.
func determinationEvents(t *testing.T, s *Service, id string) []audit.Event {
	t.Helper()
	evs, err := s.Audit(testutil.Ctx(t), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range evs {
		if e.Kind == bus.AuditDetermination && e.Determination == id {
			out = append(out, e)
		}
	}
	return out
}

// TestDeterminationScopedToIssuer is the scenario with the production
// policy: a determination on FLNU4 of PATHSYS holds FLNU4^PATHSYS for MRN8888,
// and FLNU4^OTHERLAB from another sending facility for MRN9999 is released
// at once. A result whose filler number has no namespace is of its sending
// facility's issuer.
func TestDeterminationScopedToIssuer(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)

	if _, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "FLNU4", Reason: "r", By: "DRWHO"}); !errors.Is(err, hold.ErrBadRequest) {
		t.Fatalf("determination without issuer: %v, want ErrBadRequest", err)
	}
	res, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "FLNU4", Issuer: "pathsys", Reason: "risk of self-harm", HarmType: hold.HarmLifeOrSafety, By: "DRWHO"})
	if err != nil {
		t.Fatal(err)
	}
	want := e.clock.Now().UTC().Add(policy.DefaultDeterminationReview)
	if res.ID == "" || res.Issuer != "PATHSYS" || res.By != "DRWHO" || res.HarmType != hold.HarmLifeOrSafety ||
		!res.Review.Equal(want) || res.HoldState != "" || res.State != hold.DeterminationActive || res.PatientKey != "" ||
		res.Scope != "results of order FLNU4 issued by PATHSYS, for the patient of the order's result" {
		t.Fatalf("placed = %+v (review want %s)", res, want)
	}

	e.send(msgSpec{ctrl: "A", filler: "FLNU4", issuer: "PATHSYS", facility: "PATHLAB", pid: "MRN8888", section: "CH"})
	e.send(msgSpec{ctrl: "B", filler: "FLNU4", issuer: "OTHERLAB", facility: "OTHERLAB", pid: "MRN9999", section: "CH"})
	e.send(msgSpec{ctrl: "D", filler: "FLNU4", facility: "THIRDLAB", pid: "MRN6666", section: "CH"})
	e.waitSettled()

	a := e.waitState(s, holdOf("A"), hold.StateHeld)
	if !hasDetermination(a) {
		t.Fatalf("FLNU4^PATHSYS bases = %+v, want a clinician determination", a.Bases)
	}
	if a.OrderKey != hold.OrderKey(pipeSecret, "PATHSYS", "FLNU4") {
		t.Fatalf("hold order key %s, want the PATHSYS one", a.OrderKey)
	}
	// The first held result names the determination's patient.
	ds, err := s.ListDeterminations(ctx, DeterminationFilter{})
	if err != nil || len(ds) != 1 || ds[0].PatientKey != a.PatientKey || ds[0].PatientFrom != hold.PatientFromResult ||
		ds[0].Scope != "results of order FLNU4 issued by PATHSYS, for the patient of the held result" {
		t.Fatalf("determination after the first result = %+v, %v", ds, err)
	}
	// No namespace: the sending facility PATHSYS is the issuer; same patient.
	e.send(msgSpec{ctrl: "C", filler: "FLNU4", facility: "PATHSYS", pid: "MRN8888", section: "CH", status: "C"})
	e.waitSettled()
	if c := e.waitState(s, holdOf("C"), hold.StateHeld); !hasDetermination(c) || c.Supersedes != a.ID {
		t.Fatalf("correction of FLNU4 from PATHSYS: %d bases, supersedes %q", len(c.Bases), c.Supersedes)
	}
	// Same order, another patient: not held by it.
	e.send(msgSpec{ctrl: "E", filler: "FLNU4", issuer: "PATHSYS", pid: "MRN7777", section: "CH"})
	e.waitSettled()
	for _, ctrl := range []string{"B", "D", "E"} {
		if _, err := s.GetHold(ctx, holdOf(ctrl)); !errors.Is(err, hold.ErrHoldNotFound) {
			t.Fatalf("result %s of another issuer: hold lookup %v, want none (released at once)", ctrl, err)
		}
	}
	if n := len(e.portal("portal.hl7.>")); n != 3 {
		t.Fatalf("feed has %d messages, want 3 (the other issuers' and the other patient's results)", n)
	}
	evs := determinationEvents(t, s, res.ID)
	if len(evs) != 1 || evs[0].Action != DeterminationPlaced || evs[0].Actor != "DRWHO" {
		t.Fatalf("audit = %+v", evs)
	}
}

// TestDeterminationScopedToPatient: a determination names its patient (by
// the request, or by the order's held result); a result of another patient
// is not held by it, and a patient who is not the held result's is refused.
func TestDeterminationScopedToPatient(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)

	res, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "FLNU5", Issuer: "PATHSYS", Patient: "MRN8888", Reason: "discuss first", By: "DRWHO"})
	if err != nil || res.PatientFrom != hold.PatientFromRequest || res.PatientKey != s.patientKey("MRN8888") {
		t.Fatalf("placed = %+v, %v", res, err)
	}
	e.send(msgSpec{ctrl: "P1", filler: "FLNU5", issuer: "PATHSYS", pid: "MRN9999", section: "CH"})
	e.send(msgSpec{ctrl: "P2", filler: "FLNU6", issuer: "PATHSYS", pid: "MRN8888", section: "CH"})
	e.waitSettled()
	for _, ctrl := range []string{"P1", "P2"} {
		if _, err := s.GetHold(ctx, holdOf(ctrl)); !errors.Is(err, hold.ErrHoldNotFound) {
			t.Fatalf("result %s: hold lookup %v, want released at once", ctrl, err)
		}
	}

	// A held result names the patient of a determination placed after it.
	e.consentReal(t, s, "MRN5555")
	e.send(msgSpec{ctrl: "P3", filler: "FLNU7", issuer: "PATHSYS", pid: "MRN5555", section: "SP", text: "invasive ductal carcinoma"})
	h := e.waitState(s, holdOf("P3"), hold.StateHeld)
	if _, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "FLNU7", Issuer: "PATHSYS", Patient: "MRN8888", Reason: "r", By: "DRWHO"}); !errors.Is(err, hold.ErrBadRequest) {
		t.Fatalf("determination for another patient than the held result's: %v, want ErrBadRequest", err)
	}
	res, err = s.PlaceDetermination(ctx, PlaceRequest{Order: "FLNU7", Issuer: "PATHSYS", Reason: "r", By: "DRWHO"})
	if err != nil || res.PatientFrom != hold.PatientFromResult || res.PatientKey != h.PatientKey || res.HoldID != h.ID || res.HoldState != hold.StateHeld {
		t.Fatalf("placed after the result = %+v, %v", res, err)
	}
	if got, _ := s.GetHold(ctx, h.ID); !hasDetermination(got) {
		t.Fatalf("held result bases after placing = %+v", got.Bases)
	}
}

// consentReal stores a FHIR Consent asking for clinician review of every
// result of patient pid (the production policy's Consent format).
func (e *pipeEnv) consentReal(t *testing.T, s *Service, pid string) {
	t.Helper()
	put := ConsentPut{Consent: readTestdata(t, "consent/until-clinician-review.json"), Patient: pid, By: "patient"}
	if _, err := s.PutConsent(testutil.Ctx(t), put); err != nil {
		t.Fatalf("PutConsent: %v", err)
	}
}

// TestDeterminationReleasedByPlacingClinician: the clinician who placed a
// determination ends its "until clinician release" by releasing the result,
// although they are not its ordering provider; the ordering provider cannot
// while the determination stands, and another clinician may not at all.
func TestDeterminationReleasedByPlacingClinician(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)

	d, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "FLNU4", Issuer: "PATHSYS", Reason: "risk of self-harm", By: "DRWHO"})
	if err != nil {
		t.Fatal(err)
	}
	e.send(msgSpec{ctrl: "R1", filler: "FLNU4", issuer: "PATHSYS", pid: "MRN8888", section: "CH"})
	h := e.waitState(s, holdOf("R1"), hold.StateHeld)

	if _, err := s.Acknowledge(ctx, h.ID, AckRequest{By: "DROTHER"}); !errors.Is(err, hold.ErrForbidden) {
		t.Fatalf("release by an unrelated clinician: %v, want ErrForbidden", err)
	}
	if _, err := s.Acknowledge(ctx, h.ID, AckRequest{By: "DRSMITH"}); !errors.Is(err, ErrBasisActive) {
		t.Fatalf("release by the ordering provider: %v, want ErrBasisActive", err)
	}
	got, err := s.Acknowledge(ctx, h.ID, AckRequest{By: "DRWHO", Reason: "discussed with the patient"})
	if err != nil || got.State != hold.StateReleased || got.Release.Actor != "DRWHO" {
		t.Fatalf("release by the placing clinician: %+v, %v", got, err)
	}
	ds, err := s.ListDeterminations(ctx, DeterminationFilter{By: "DRWHO"})
	if err != nil || len(ds) != 1 || ds[0].State != hold.DeterminationReleased || ds[0].Ended == nil || ds[0].Ended.By != "DRWHO" {
		t.Fatalf("determinations after the release = %+v, %v", ds, err)
	}
	if evs := determinationEvents(t, s, d.ID); len(evs) != 2 || evs[1].Action != DeterminationReleased {
		t.Fatalf("audit = %+v", evs)
	}
	// Released: a correction of the order is not held by it again.
	e.send(msgSpec{ctrl: "R2", filler: "FLNU4", issuer: "PATHSYS", pid: "MRN8888", section: "CH", status: "C"})
	e.waitSettled()
	if _, err := s.GetHold(ctx, holdOf("R2")); !errors.Is(err, hold.ErrHoldNotFound) {
		t.Fatalf("correction after the release: %v, want released at once", err)
	}

	// A clinician covering the placer (DRJONES covers DRSMITH) may release.
	if _, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "FLNU8", Issuer: "PATHSYS", Reason: "r", By: "DRSMITH"}); err != nil {
		t.Fatal(err)
	}
	e.send(msgSpec{ctrl: "R3", filler: "FLNU8", issuer: "PATHSYS", pid: "MRN8888", section: "CH"})
	h = e.waitState(s, holdOf("R3"), hold.StateHeld)
	if got, err := s.Acknowledge(ctx, h.ID, AckRequest{By: "DRJONES"}); err != nil || got.State != hold.StateReleased {
		t.Fatalf("release by the covering clinician: %+v, %v", got, err)
	}
}

// TestDeterminationListAndWithdraw: the placing clinician lists their
// determinations and withdraws one (audited, with a reason); the held result
// that rested only on it is released; another clinician may not withdraw,
// and on-call may.
func TestDeterminationListAndWithdraw(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)

	d1, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "W1", Issuer: "PATHSYS", Reason: "r1", By: "DRWHO"})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	d2, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "W2", Issuer: "PATHSYS", Reason: "r2", By: "DRSMITH"})
	if err != nil {
		t.Fatal(err)
	}
	e.send(msgSpec{ctrl: "W1", filler: "W1", issuer: "PATHSYS", pid: "MRN8888", section: "CH"})
	h := e.waitState(s, holdOf("W1"), hold.StateHeld)

	for _, c := range []struct {
		name string
		f    DeterminationFilter
		want []string
	}{
		{"all", DeterminationFilter{}, []string{d1.ID, d2.ID}},
		{"by", DeterminationFilter{By: "DRWHO"}, []string{d1.ID}},
		{"visible to a covering clinician", DeterminationFilter{Visible: "DRJONES"}, []string{d2.ID}},
		{"order and issuer", DeterminationFilter{Order: "W2", Issuer: "pathsys"}, []string{d2.ID}},
		{"other issuer", DeterminationFilter{Order: "W2", Issuer: "OTHERLAB"}, nil},
		{"withdrawn", DeterminationFilter{State: hold.DeterminationWithdrawn}, nil},
	} {
		ds, err := s.ListDeterminations(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		if len(ids) != len(c.want) || (len(ids) > 0 && (ids[0] != c.want[0] || ids[len(ids)-1] != c.want[len(c.want)-1])) {
			t.Errorf("%s: %v, want %v", c.name, ids, c.want)
		}
	}

	if _, err := s.WithdrawDetermination(ctx, WithdrawRequest{ID: d1.ID, By: "DRWHO"}); !errors.Is(err, hold.ErrReasonRequired) {
		t.Fatalf("withdraw without reason: %v", err)
	}
	if _, err := s.WithdrawDetermination(ctx, WithdrawRequest{ID: d1.ID, By: "DROTHER", Reason: "mine now"}); !errors.Is(err, hold.ErrForbidden) {
		t.Fatalf("withdraw by another clinician: %v, want ErrForbidden", err)
	}
	if _, err := s.WithdrawDetermination(ctx, WithdrawRequest{ID: "dnone", By: "DRWHO", Reason: "r"}); !errors.Is(err, hold.ErrDeterminationNotFound) {
		t.Fatalf("withdraw of an unknown ID: %v", err)
	}
	res, err := s.WithdrawDetermination(ctx, WithdrawRequest{ID: d1.ID, By: "DRWHO", Reason: "patient informed in clinic"})
	if err != nil || res.Determination.State != hold.DeterminationWithdrawn || len(res.Released) != 1 || res.Released[0] != h.ID {
		t.Fatalf("withdraw: %+v, %v", res, err)
	}
	if got := e.waitState(s, h.ID, hold.StateReleased); got.Release.Path != hold.PathReevaluated {
		t.Fatalf("release path %s", got.Release.Path)
	}
	evs := determinationEvents(t, s, d1.ID)
	if len(evs) != 2 || evs[1].Action != DeterminationWithdrawn || evs[1].Actor != "DRWHO" || evs[1].Reason != "patient informed in clinic" {
		t.Fatalf("audit = %+v", evs)
	}
	if _, err := s.WithdrawDetermination(ctx, WithdrawRequest{ID: d1.ID, By: "DRWHO", Reason: "again"}); !errors.Is(err, hold.ErrDeterminationEnded) {
		t.Fatalf("second withdrawal: %v, want ErrDeterminationEnded", err)
	}
	// On-call withdraws anyone's.
	if res, err := s.WithdrawDetermination(ctx, WithdrawRequest{ID: d2.ID, By: "DRNIGHT", Role: hold.RoleOnCall, Reason: "reviewed"}); err != nil || res.Determination.Ended.Role != hold.RoleOnCall {
		t.Fatalf("on-call withdraw: %+v, %v", res, err)
	}
	// Withdrawn: the order's next result is not held.
	e.send(msgSpec{ctrl: "W2", filler: "W2", issuer: "PATHSYS", pid: "MRN8888", section: "CH"})
	e.waitSettled()
	if _, err := s.GetHold(ctx, holdOf("W2")); !errors.Is(err, hold.ErrHoldNotFound) {
		t.Fatalf("result after withdrawal: %v, want released at once", err)
	}
}

// TestLegacyOrderKeys: data stored before orders were keyed by issuer (the
// order index and a determination under the filler number's legacy key)
// keeps working: a legacy determination still holds the order's results, a
// correction finds its held prior version under the legacy key and replaces
// it, and another patient's result with the same filler number is not taken
// for a correction of it.
func TestLegacyOrderKeys(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)
	legacy := hold.LegacyOrderKey(pipeSecret, "F7")
	if err := s.dets.Add(ctx, hold.Determination{Order: "F7", OrderKey: legacy, Reason: "old", By: "DRSMITH", Role: hold.RoleClinician, At: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.send(msgSpec{ctrl: "L1", filler: "F7", pid: "MRN8888", section: "CH"})
	first := e.waitState(s, holdOf("L1"), hold.StateHeld)
	if !hasDetermination(first) {
		t.Fatalf("legacy determination did not hold: %+v", first.Bases)
	}
	// Make it a hold of before the upgrade: indexed and keyed by the legacy key.
	key := hold.OrderKey(pipeSecret, "HOSP", "F7")
	entry, ok, err := s.orders.Get(ctx, key)
	if err != nil || !ok {
		t.Fatalf("order index: %v %v", ok, err)
	}
	if err := s.orders.Put(ctx, legacy, entry); err != nil {
		t.Fatal(err)
	}
	if err := s.orders.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.holds.Mutate(ctx, first.ID, func(h *hold.Hold) error { h.OrderKey = legacy; return nil }); err != nil {
		t.Fatal(err)
	}

	// Another patient's result with filler F7 from another lab: held by the
	// legacy determination (which names no issuer) but not a correction.
	e.send(msgSpec{ctrl: "L2", filler: "F7", issuer: "OTHERLAB", pid: "MRN9999", section: "CH"})
	other := e.waitState(s, holdOf("L2"), hold.StateHeld)
	if other.Supersedes != "" {
		t.Fatalf("another patient's result superseded %s", other.Supersedes)
	}
	// The correction finds its prior under the legacy key.
	e.send(msgSpec{ctrl: "L3", filler: "F7", pid: "MRN8888", section: "CH", status: "C"})
	corr := e.waitState(s, holdOf("L3"), hold.StateHeld)
	if corr.Supersedes != first.ID || corr.OrderKey != key {
		t.Fatalf("correction supersedes %q (want %s), key %s", corr.Supersedes, first.ID, corr.OrderKey)
	}
	e.waitState(s, first.ID, hold.StateSuperseded)
	if got, ok, _ := s.orders.Get(ctx, key); !ok || got.HoldID != corr.ID {
		t.Fatalf("order index under the new key = %+v", got)
	}
}

// TestDeterminationFirstPatientWins: two patients' first results on one order
// (an anomaly) arrive at once on a determination that names no patient:
// whichever is held first names the patient, and the other is not held on
// it, whatever the order in which the partitions process them.
func TestDeterminationFirstPatientWins(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)
	if _, err := s.PlaceDetermination(ctx, PlaceRequest{Order: "FR1", Issuer: "PATHSYS", Reason: "r", By: "DRWHO"}); err != nil {
		t.Fatal(err)
	}
	e.send(msgSpec{ctrl: "X1", filler: "FR1", issuer: "PATHSYS", pid: "MRN1001", section: "CH"})
	e.send(msgSpec{ctrl: "X2", filler: "FR1", issuer: "PATHSYS", pid: "MRN1002", section: "CH"})
	e.waitSettled()
	held := 0
	for _, ctrl := range []string{"X1", "X2"} {
		h, err := s.GetHold(ctx, holdOf(ctrl))
		if err == nil && h.State == hold.StateHeld {
			held++
		}
	}
	ds, err := s.ListDeterminations(ctx, DeterminationFilter{})
	if err != nil || len(ds) != 1 || ds[0].PatientKey == "" {
		t.Fatalf("determination = %+v, %v", ds, err)
	}
	if held != 1 {
		for _, ctrl := range []string{"X1", "X2"} {
			h, err := s.GetHold(ctx, holdOf(ctrl))
			if err != nil {
				t.Logf("%s: %v", ctrl, err)
				continue
			}
			t.Logf("%s: %s patient %s bases %+v transitions %+v", ctrl, h.State, h.PatientKey, h.Bases, h.Transitions)
		}
		t.Logf("determination: %+v", ds)
		t.Fatalf("%d of the two patients' results held, want 1", held)
	}
}
