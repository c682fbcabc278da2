package pipeline

import (
	"encoding/json"
	"testing"
	"time"

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
	e.start()
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
}
