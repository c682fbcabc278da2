package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// A held result whose FHIR mapping is refused at release: the release stands,
// nothing partial reaches the feed, the hold records why (without content),
// the audit trail says so once, and the reconciler stops retrying it.
func TestReleaseOfUnmappableResult(t *testing.T) {
	e := newPipeEnv(t)
	p := e.start()
	s := p.Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "BAD1", filler: "F1", section: "SP", status: "Z"}) // OBR-25 Z: no FHIR status
	e.waitSettled()
	h := e.waitState(s, holdOf("BAD1"), hold.StateHeld)

	got, err := s.Acknowledge(testutil.Ctx(t), h.ID, AckRequest{By: "DRSMITH"})
	if err != nil || got.State != hold.StateReleased {
		t.Fatalf("release: %v %+v", err, got)
	}
	var cur *hold.Hold
	testutil.Eventually(t, 5*time.Second, "publish error recorded", func() bool {
		cur, err = s.GetHold(testutil.Ctx(t), h.ID)
		return err == nil && cur.PublishError != ""
	})
	if cur.Published || cur.PublishError != "fhir: fhirmap: result status cannot be mapped" || strings.Contains(cur.PublishError, "TESTPATIENT") {
		t.Errorf("hold after release: published %t, publish error %q", cur.Published, cur.PublishError)
	}
	// Several reconciler rounds later: still nothing on the feed, one audit event.
	rounds := s.Metrics().ReconcileRounds
	testutil.Eventually(t, 5*time.Second, "three more reconciler rounds", func() bool {
		e.clock.Tick()
		return s.Metrics().ReconcileRounds >= rounds+3
	})
	if n := len(e.portal("portal.>")); n != 0 {
		t.Errorf("%d feed messages for an unmappable result", n)
	}
	evs, err := s.Audit(testutil.Ctx(t), audit.Query{HoldID: h.ID})
	if err != nil {
		t.Fatal(err)
	}
	dead := 0
	for _, ev := range evs {
		if ev.Kind == bus.AuditDead {
			dead++
			if !strings.HasPrefix(ev.Reason, "fhir: ") {
				t.Errorf("audit reason %q", ev.Reason)
			}
		}
	}
	if dead != 1 {
		t.Errorf("%d unpublishable audit events, want 1", dead)
	}
	if n := s.Metrics().Dead["unpublishable"]; n != 1 {
		t.Errorf("dead_letters_total{reason=unpublishable} = %d, want 1", n)
	}
	if hs := p.Service().gate.View.Unpublished(); len(hs) != 0 {
		t.Errorf("the reconciler still has %d holds to publish", len(hs))
	}
}
