package pipeline

import (
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// TestTestTrafficNeverReachesPatients: MSH-11 T (training) and D (debugging)
// results are classified and decided as production ones, but released to the
// test feed only; a held T result released by its clinician goes there too.
// Production results reach the patient feed, each message carrying its
// processing ID.
func TestTestTrafficNeverReachesPatients(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "T1", filler: "F1", section: "CH", procID: "T"})
	e.send(msgSpec{ctrl: "D1", filler: "F2", section: "CH", procID: "D"})
	e.send(msgSpec{ctrl: "P1", filler: "F3", section: "CH"})
	e.send(msgSpec{ctrl: "T2", filler: "F4", section: "SP", procID: "T"}) // held: the patient asked for review
	e.waitSettled()
	h := e.waitState(s, holdOf("T2"), hold.StateHeld)
	if _, err := s.Acknowledge(testutil.Ctx(t), h.ID, AckRequest{By: "DRSMITH"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "test feed has the three test results", func() bool {
		return len(e.portal(bus.SubjectTestPortalHL7Prefix+">")) == 3 && len(e.portal(bus.SubjectTestPortalFHIRPrefix+">")) == 3
	})
	feed := e.portal("portal.>")
	if len(feed) != 2 {
		t.Fatalf("patient feed has %d messages, want the production result's 2", len(feed))
	}
	for _, m := range feed {
		if m.Header.Get(bus.HeaderProcessingID) != "P" || m.Header.Get(bus.HeaderControlID) != "P1" {
			t.Errorf("patient feed message %s (processing ID %q)", m.Header.Get(bus.HeaderControlID), m.Header.Get(bus.HeaderProcessingID))
		}
	}
	for _, m := range e.portal(bus.SubjectTestPortalAll) {
		if id := m.Header.Get(bus.HeaderProcessingID); id != "T" && id != "D" {
			t.Errorf("test feed message with processing ID %q", id)
		}
	}
}

// TestTrainingFeedConfigured: a test installation that lists T in
// holds.patient_feed_processing_ids sends T results to the patient feed; D
// still goes to the test feed.
func TestTrainingFeedConfigured(t *testing.T) {
	e := newPipeEnv(t, func(c *Config) { c.Holds.PatientFeedProcessingIDs = []string{"P", "T"} })
	e.start()
	e.send(msgSpec{ctrl: "T1", filler: "F1", section: "CH", procID: "T"})
	e.send(msgSpec{ctrl: "D1", filler: "F2", section: "CH", procID: "D"})
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "both released", func() bool {
		return len(e.portal("portal.hl7.>")) == 1 && len(e.portal(bus.SubjectTestPortalHL7Prefix+">")) == 1
	})
	if got := e.portal("portal.hl7.>")[0].Header.Get(bus.HeaderControlID); got != "T1" {
		t.Errorf("patient feed has %s, want T1", got)
	}
}
