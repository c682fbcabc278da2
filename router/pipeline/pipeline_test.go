package pipeline

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

func TestNonSensitiveReleasedOnce(t *testing.T) {
	e := newPipeEnv(t)
	p := e.start()
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "CH"})
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "CH"}) // a resend: deduplicated by the intake's Msg-Id
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "feed message", func() bool { return len(e.portal("portal.hl7.>")) == 1 })
	hl7Feed, fhirFeed := e.portal("portal.hl7.>"), e.portal("portal.fhir.>")
	if len(hl7Feed) != 1 || len(fhirFeed) != 1 {
		t.Fatalf("feed: %d HL7, %d FHIR messages; want 1 and 1", len(hl7Feed), len(fhirFeed))
	}
	m := hl7Feed[0]
	if got := m.Header.Get(bus.HeaderReleasePath); got != string(hold.PathImmediate) {
		t.Errorf("release path %q, want %q", got, hold.PathImmediate)
	}
	if got := m.Header.Get(bus.HeaderHoldID); got != holdOf("C1") {
		t.Errorf("hold id header %q, want %q", got, holdOf("C1"))
	}
	if string(m.Data) != string(msgSpec{ctrl: "C1", filler: "F1", section: "CH"}.build()) {
		t.Errorf("HL7 feed does not carry the original bytes")
	}
	if _, err := p.Service().GetHold(testutil.Ctx(t), holdOf("C1")); !errors.Is(err, hold.ErrHoldNotFound) {
		t.Errorf("immediate release created a hold record: %v", err)
	}
	evs, err := p.Service().Audit(testutil.Ctx(t), audit.Query{HoldID: holdOf("C1")})
	if err != nil || len(evs) != 1 || evs[0].Kind != bus.AuditDecision || evs[0].Action != string(policy.ActionRelease) {
		t.Fatalf("audit = %+v, %v; want one release decision", evs, err)
	}
}

func TestSensitiveWithBasisHeldThenClinicianRelease(t *testing.T) {
	e := newPipeEnv(t)
	p := e.start()
	s := p.Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	e.waitSettled()
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)
	if n := len(e.portal("portal.>")); n != 0 {
		t.Fatalf("held result reached the feed: %d messages", n)
	}
	if !h.HasBasis(string(policy.BasisPatientRequest)) || h.Deadline.IsZero() || h.ProviderID != "DRSMITH" {
		t.Fatalf("hold record = %+v", h)
	}
	if want := e.clock.Now().Add(72 * time.Hour); !h.Deadline.Equal(want) {
		t.Errorf("deadline %s, want %s", h.Deadline, want)
	}
	if h.Inbound.Seq == 0 || h.Inbound.MsgID != "LIS|HOSP|C1" {
		t.Errorf("inbound ref = %+v", h.Inbound)
	}
	testutil.Eventually(t, 5*time.Second, "hold-created notification", func() bool {
		return len(e.notifications(bus.SubjectNotifyClinicianPrefix+h.ProviderKey)) == 1
	})
	testutil.Eventually(t, 5*time.Second, "provider listing", func() bool {
		l, _ := s.ListHolds(testutil.Ctx(t), holdview.Filter{Provider: "DRSMITH", State: hold.StateHeld})
		return len(l) == 1 && l[0].ID == h.ID
	})

	if _, err := s.Acknowledge(testutil.Ctx(t), h.ID, AckRequest{By: "DRWHO"}); !errors.Is(err, hold.ErrForbidden) {
		t.Fatalf("stranger's acknowledgement: err = %v, want ErrForbidden", err)
	}
	got, err := s.Acknowledge(testutil.Ctx(t), h.ID, AckRequest{By: "DRJONES", Reason: "discussed by phone", Note: "Dr Jones called you about this result."})
	if err != nil {
		t.Fatalf("covering clinician's acknowledgement: %v", err)
	}
	if got.State != hold.StateReleased || !got.Published || got.Release.Actor != "DRJONES" {
		t.Fatalf("released record = %+v", got)
	}
	feed := e.portal("portal.hl7.>")
	if len(feed) != 1 {
		t.Fatalf("feed has %d messages, want 1", len(feed))
	}
	hd := feed[0].Header
	note, _ := url.PathUnescape(hd.Get(bus.HeaderNote))
	reason, _ := url.PathUnescape(hd.Get(bus.HeaderReleaseReason))
	if hd.Get(bus.HeaderReleasePath) != string(hold.PathAcknowledged) || hd.Get(bus.HeaderReleaseActor) != "DRJONES" ||
		reason != "discussed by phone" || note != "Dr Jones called you about this result." || hd.Get(bus.HeaderNotify) != string(policy.NotifyQuiet) {
		t.Fatalf("feed headers = %v", hd)
	}
	if _, err := s.Acknowledge(testutil.Ctx(t), h.ID, AckRequest{By: "DRSMITH"}); !errors.Is(err, hold.ErrAlreadyReleased) {
		t.Fatalf("second release: err = %v, want ErrAlreadyReleased", err)
	}
	if n := len(e.portal("portal.hl7.>")); n != 1 {
		t.Fatalf("feed has %d messages after a second release, want 1", n)
	}
	evs, err := s.Audit(testutil.Ctx(t), audit.Query{HoldID: h.ID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind+":"+string(ev.To))
	}
	if len(evs) != 2 || evs[0].Kind != bus.AuditDecision || evs[1].Kind != bus.AuditTransition || evs[1].Actor != "DRJONES" || evs[1].Reason != "discussed by phone" {
		t.Fatalf("audit trail = %v", kinds)
	}
}

func TestFixedDelayBasisRefusesEarlyAcknowledgement(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, true)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)
	if _, err := s.Acknowledge(testutil.Ctx(t), h.ID, AckRequest{By: "DRSMITH"}); !errors.Is(err, ErrBasisActive) {
		t.Fatalf("acknowledging an elapse-only basis: err = %v, want ErrBasisActive", err)
	}
	if _, err := s.Override(testutil.Ctx(t), h.ID, OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall, Reason: "patient in clinic asking"}); err != nil {
		t.Fatalf("override: %v", err)
	}
}

func TestConcurrentReleasesPublishOnce(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, errs[i] = s.Acknowledge(context.Background(), h.ID, AckRequest{By: "DRSMITH"})
			} else {
				_, errs[i] = s.Override(context.Background(), h.ID, OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall, Reason: "urgent"})
			}
		}()
	}
	wg.Wait()
	ok, already := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, hold.ErrAlreadyReleased):
			already++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || already != n-1 {
		t.Fatalf("%d releases succeeded and %d got ErrAlreadyReleased; want 1 and %d", ok, already, n-1)
	}
	if hl7n, fhirn := len(e.portal("portal.hl7.>")), len(e.portal("portal.fhir.>")); hl7n != 1 || fhirn != 1 {
		t.Fatalf("feed: %d HL7, %d FHIR; want exactly one each", hl7n, fhirn)
	}
	got, _ := s.GetHold(testutil.Ctx(t), h.ID)
	if len(got.Transitions) != 2 {
		t.Fatalf("transitions = %+v; want created and one release", got.Transitions)
	}
}

func TestOverrideRules(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)
	cases := []struct {
		name string
		req  OverrideRequest
		want error
	}{
		{"no reason", OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall}, hold.ErrReasonRequired},
		{"blank reason", OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall, Reason: "  "}, hold.ErrReasonRequired},
		{"not on call", OverrideRequest{By: "DRX", Role: hold.RoleClinician, Reason: "x"}, hold.ErrForbidden},
		{"no actor", OverrideRequest{Role: hold.RoleOnCall, Reason: "x"}, hold.ErrBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Override(testutil.Ctx(t), h.ID, c.req); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if n := len(e.portal("portal.>")); n != 0 {
		t.Fatalf("rejected overrides published %d messages", n)
	}
	got, err := s.Override(testutil.Ctx(t), h.ID, OverrideRequest{By: "DRONCALL", Role: hold.RoleOnCall, Reason: "patient requested in person"})
	if err != nil || got.Release.Path != hold.PathOverride {
		t.Fatalf("override: %+v, %v", got, err)
	}
	evs, _ := s.Audit(testutil.Ctx(t), audit.Query{HoldID: h.ID})
	if last := evs[len(evs)-1]; last.Kind != bus.AuditOverride || last.Role != hold.RoleOnCall || last.Reason != "patient requested in person" {
		t.Fatalf("last audit event = %+v", last)
	}
}

func TestDeadlineReleaseRemindEscalate(t *testing.T) {
	e := newPipeEnv(t, func(c *Config) {
		c.Holds.ReminderBefore = 24 * time.Hour
		c.Holds.EscalateBefore = 2 * time.Hour
	})
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)
	if !h.RemindAt.Equal(h.Deadline.Add(-24*time.Hour)) || !h.EscalateAt.Equal(h.Deadline.Add(-2*time.Hour)) {
		t.Fatalf("remind %s escalate %s deadline %s", h.RemindAt, h.EscalateAt, h.Deadline)
	}
	e.clock.Advance(49 * time.Hour) // past the reminder
	testutil.Eventually(t, 5*time.Second, "reminder", func() bool {
		for _, n := range e.notifications(bus.SubjectNotifyClinicianPrefix + h.ProviderKey) {
			if n.Kind == bus.NotifyReminder {
				return true
			}
		}
		return false
	})
	if n := len(e.notifications(bus.SubjectNotifyOnCall)); n != 0 {
		t.Fatalf("escalated early: %d", n)
	}
	e.clock.Advance(21 * time.Hour) // 70h: past the escalation
	testutil.Eventually(t, 5*time.Second, "escalation", func() bool { return len(e.notifications(bus.SubjectNotifyOnCall)) == 1 })
	if n := len(e.portal("portal.>")); n != 0 {
		t.Fatalf("released before the deadline: %d", n)
	}
	e.clock.Advance(2 * time.Hour) // 72h: the deadline
	got := e.waitState(s, h.ID, hold.StateReleased)
	if got.Release.Path != hold.PathDeadline {
		t.Fatalf("release = %+v", got.Release)
	}
	testutil.Eventually(t, 5*time.Second, "feed", func() bool { return len(e.portal("portal.hl7.>")) == 1 })
	if n := len(e.notifications(bus.SubjectNotifyClinicianPrefix + h.ProviderKey)); n != 2 {
		t.Fatalf("%d clinician notifications, want created + reminder", n)
	}
}

func TestDeadlinePassedWhileDown(t *testing.T) {
	e := newPipeEnv(t)
	p := e.start()
	s := p.Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)
	if err := p.Stop(testutil.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(testutil.Ctx(t)); err != nil { // idempotent
		t.Fatal(err)
	}
	e.clock.Advance(100 * time.Hour)
	if n := len(e.portal("portal.>")); n != 0 {
		t.Fatalf("released while stopped: %d", n)
	}
	p2 := e.start()
	got := e.waitState(p2.Service(), h.ID, hold.StateReleased)
	if got.Release.Path != hold.PathDeadline {
		t.Fatalf("release = %+v", got.Release)
	}
	testutil.Eventually(t, 5*time.Second, "feed after restart", func() bool { return len(e.portal("portal.hl7.>")) == 1 })
	// A second instance started now finds nothing to do.
	e.start()
	e.clock.Advance(time.Hour)
	if n := len(e.portal("portal.hl7.>")); n != 1 {
		t.Fatalf("feed has %d messages, want 1", n)
	}
}

func TestCorrectionSupersedesHeldKeepingDeadline(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	orig := e.waitState(s, holdOf("C1"), hold.StateHeld)
	e.clock.Advance(10 * time.Hour)
	e.send(msgSpec{ctrl: "C2", filler: "F1", section: "SP", status: "C", text: "amended"})
	corr := e.waitState(s, holdOf("C2"), hold.StateHeld)
	old := e.waitState(s, orig.ID, hold.StateSuperseded)
	if !corr.Deadline.Equal(orig.Deadline) {
		t.Fatalf("correction deadline %s, want the original %s", corr.Deadline, orig.Deadline)
	}
	if corr.Supersedes != orig.ID || old.SupersededBy != corr.ID {
		t.Fatalf("links: %q / %q", corr.Supersedes, old.SupersededBy)
	}
	if _, err := s.Acknowledge(testutil.Ctx(t), orig.ID, AckRequest{By: "DRSMITH"}); !errors.Is(err, hold.ErrHoldClosed) {
		t.Fatalf("releasing the superseded hold: %v, want ErrHoldClosed", err)
	}
	if n := len(e.portal("portal.>")); n != 0 {
		t.Fatalf("feed has %d messages", n)
	}
}

func TestCorrectionOfReleasedIsReleasedAtOnce(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "CH"})
	e.send(msgSpec{ctrl: "C2", filler: "F1", section: "CH", status: "C"})
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "two feed messages", func() bool { return len(e.portal("portal.hl7.>")) == 2 })
	feed := e.portal("portal.hl7.>")
	if feed[1].Header.Get(bus.HeaderReleasePath) != string(hold.PathCorrection) || feed[1].Header.Get(bus.HeaderHoldID) != holdOf("C2") {
		t.Fatalf("second feed message headers = %v", feed[1].Header)
	}
	_ = s
}

func TestWithdrawHeld(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	orig := e.waitState(s, holdOf("C1"), hold.StateHeld)
	e.send(msgSpec{ctrl: "C2", filler: "F1", section: "SP", obxStat: "W"})
	e.waitSettled()
	got := e.waitState(s, orig.ID, hold.StateWithdrawn)
	if last := got.Transitions[len(got.Transitions)-1]; last.To != hold.StateWithdrawn || last.Reason == "" {
		t.Fatalf("transition = %+v", last)
	}
	e.clock.Advance(200 * time.Hour) // the old deadline passes: nothing is released
	testutil.Eventually(t, 5*time.Second, "view sees withdrawal", func() bool {
		l, _ := s.ListHolds(testutil.Ctx(t), holdview.Filter{State: hold.StateHeld})
		return len(l) == 0
	})
	if n := len(e.portal("portal.>")); n != 0 {
		t.Fatalf("withdrawn result published: %d", n)
	}
}

func TestConsentRevokeReleases(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	e.send(msgSpec{ctrl: "C2", filler: "F2", section: "SP", pid: "MRN2"}) // another patient without a Consent
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "view has the hold", func() bool {
		l, _ := s.ListHolds(testutil.Ctx(t), holdview.Filter{PatientKey: h.PatientKey})
		return len(l) == 1
	})
	res := e.consent(s, "MRN1", "inactive", true, false)
	if len(res.Released) != 1 || res.Released[0] != h.ID {
		t.Fatalf("consent result = %+v", res)
	}
	got := e.waitState(s, h.ID, hold.StateReleased)
	if got.Release.Path != hold.PathPatientRevoked {
		t.Fatalf("release = %+v", got.Release)
	}
	recs, err := s.consents.History(testutil.Ctx(t), h.PatientKey)
	if err != nil || len(recs) != 2 {
		t.Fatalf("consent history: %d, %v", len(recs), err)
	}
	if n := len(e.portal("portal.hl7.>")); n != 2 { // MRN2's immediate release and the revoked hold
		t.Fatalf("feed has %d messages, want 2", n)
	}
}

func TestDeterminationBeforeAndAfterResult(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	// Before the result: the next result on the order is held.
	if _, err := s.PlaceDetermination(testutil.Ctx(t), PlaceRequest{Order: "F1", Issuer: "HOSP", By: "DRSMITH"}); !errors.Is(err, hold.ErrReasonRequired) {
		t.Fatalf("determination without reason: %v", err)
	}
	res, err := s.PlaceDetermination(testutil.Ctx(t), PlaceRequest{Order: "F1", Issuer: "HOSP", Reason: "risk of self-harm", By: "DRSMITH"})
	if err != nil || res.HoldState != "" {
		t.Fatalf("place before result: %+v, %v", res, err)
	}
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "CH"})
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)
	if !h.HasBasis(string(policy.BasisClinicianDetermination)) {
		t.Fatalf("bases = %+v", h.Bases)
	}
	// After the result: a held result gets the basis added.
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C2", filler: "F2", section: "SP"})
	h2 := e.waitState(s, holdOf("C2"), hold.StateHeld)
	if h2.HasBasis(string(policy.BasisClinicianDetermination)) {
		t.Fatalf("basis present before placing")
	}
	res, err = s.PlaceDetermination(testutil.Ctx(t), PlaceRequest{Order: "F2", Issuer: "HOSP", Reason: "discuss first", By: "DRSMITH"})
	if err != nil || res.HoldID != h2.ID || res.HoldState != hold.StateHeld {
		t.Fatalf("place after result: %+v, %v", res, err)
	}
	got, _ := s.GetHold(testutil.Ctx(t), h2.ID)
	if !got.HasBasis(string(policy.BasisClinicianDetermination)) || !got.HasBasis(string(policy.BasisPatientRequest)) {
		t.Fatalf("bases after placing = %+v", got.Bases)
	}
}
