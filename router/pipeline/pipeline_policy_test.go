package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// realPolicyEnv is a pipeline with the production policy (bundled rule set,
// the given policy configuration) and the production FHIR mapping.
func realPolicyEnv(t *testing.T, policyYAML string) *pipeEnv {
	t.Helper()
	pc, err := policy.DecodeConfig([]byte(policyYAML))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := NewDefaultPolicy(pc)
	if err != nil {
		t.Fatal(err)
	}
	return newPipeEnv(t, func(c *Config) {
		c.Policy = pol
		c.FHIR = feed.NewFHIREncoder(time.UTC, "", true)
	})
}

func readTestdata(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publishRaw(t *testing.T, e *pipeEnv, id string, raw []byte) {
	t.Helper()
	m := &nats.Msg{Subject: bus.InSubject("p01"), Header: nats.Header{}, Data: raw}
	m.Header.Set(bus.HeaderReceivedAt, e.clock.Now().UTC().Format(time.RFC3339Nano))
	if _, err := e.js.JS.PublishMsg(testutil.Ctx(t), m, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
}

// TestRealPolicyEndToEnd runs the production policy and FHIR mapping: a
// routine blood count goes to the feed at once as HL7 and a FHIR Bundle; a
// surgical pathology report with a carcinoma under a patient's Consent is
// held on a patient-request basis and reaches the feed, with a Provenance,
// only when the ordering provider acknowledges it.
func TestRealPolicyEndToEnd(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()

	publishRaw(t, e, "OLDLAB|FAC1|V23-CTRL", readTestdata(t, "hl7/oru_r01_v23.hl7"))
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "routine result in the feed", func() bool { return len(e.portal("portal.fhir.>")) == 1 })
	var bundle map[string]any
	if err := json.Unmarshal(e.portal("portal.fhir.>")[0].Data, &bundle); err != nil || bundle["resourceType"] != "Bundle" {
		t.Fatalf("FHIR feed message is not a Bundle: %v", err)
	}

	put := ConsentPut{Consent: readTestdata(t, "consent/until-clinician-review.json"), Patient: "MRN0001", By: "patient"}
	if _, err := s.PutConsent(testutil.Ctx(t), put); err != nil {
		t.Fatalf("PutConsent: %v", err)
	}
	publishRaw(t, e, "LABSYS|SYNTH LAB|CTRL-0001", readTestdata(t, "hl7/oru_r01_v251.hl7"))
	e.waitSettled()
	id := hold.HoldID(pipeSecret, "LABSYS|SYNTH LAB|CTRL-0001")
	h := e.waitState(s, id, hold.StateHeld)
	if !h.HasBasis(string(policy.BasisPatientRequest)) {
		t.Fatalf("bases = %+v", h.Bases)
	}
	names := h.TagNames()
	if !contains(names, policy.TagPathology) || !contains(names, policy.TagMalignancy) {
		t.Fatalf("tags = %v", names)
	}
	if n := len(e.portal("portal.>")); n != 2 {
		t.Fatalf("feed has %d messages; the held result must not be there", n)
	}
	if _, err := s.Acknowledge(testutil.Ctx(t), id, AckRequest{By: h.ProviderID, Note: "We will call you to discuss."}); err != nil {
		t.Fatalf("acknowledge by %s: %v", h.ProviderID, err)
	}
	testutil.Eventually(t, 5*time.Second, "released result in the feed", func() bool { return len(e.portal("portal.fhir.>")) == 2 })
	var b2 struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(e.portal("portal.fhir.>")[1].Data, &b2); err != nil {
		t.Fatal(err)
	}
	prov := false
	for _, en := range b2.Entry {
		if en.Resource["resourceType"] == "Provenance" {
			prov = true
		}
	}
	if !prov {
		t.Fatalf("released Bundle has no Provenance")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
