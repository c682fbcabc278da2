package feed

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/router/hold"
)

// TestFHIRReasonEveryPath pins the one release-path → Provenance-reason
// mapping. Production and tests once used two copies that disagreed on
// PathReevaluated (a re-evaluation after a clinician placed a determination
// read as the patient revoking their request in production); every path must
// be listed here, so a new path cannot fall through to a default unnoticed.
func TestFHIRReasonEveryPath(t *testing.T) {
	want := map[hold.ReleasePath]string{
		hold.PathImmediate:         fhirmap.ReasonImmediate,
		hold.PathAcknowledged:      fhirmap.ReasonClinicianRelease,
		hold.PathOverride:          fhirmap.ReasonOnCallOverride,
		hold.PathDeadline:          fhirmap.ReasonDeadline,
		hold.PathPatientRevoked:    fhirmap.ReasonPatientRevoked,
		hold.PathCorrection:        fhirmap.ReasonCorrection,
		hold.PathReevaluated:       fhirmap.ReasonClinicianRelease,
		hold.PathPatientDelayEnded: fhirmap.ReasonPatientDelay,
		hold.PathRetraction:        fhirmap.ReasonCorrection,
	}
	for _, p := range hold.ReleasePaths {
		w, ok := want[p]
		if !ok {
			t.Errorf("release path %q has no expected FHIR reason in this table", p)
			continue
		}
		if got := FHIRReason(p); got != w {
			t.Errorf("FHIRReason(%q) = %q, want %q", p, got, w)
		}
	}
	if len(want) != len(hold.ReleasePaths) {
		t.Errorf("table has %d paths, hold.ReleasePaths %d", len(want), len(hold.ReleasePaths))
	}
}

// TestFHIREncoderReevaluatedProvenance runs the production encoder on a
// release by re-evaluation and reads the reason back from the Bundle's
// Provenance: the check that would have caught the two adapters disagreeing.
func TestFHIREncoderReevaluatedProvenance(t *testing.T) {
	raw := "MSH|^~\\&|LIS|HOSP|PORTAL|HOSP|20260302080000||ORU^R01^ORU_R01|C1|P|2.5.1\r" +
		"PID|1||MRN1^^^HOSP^MR||Doe^Jane\r" +
		"OBR|1|PL-F1|F1|88305^Surgical pathology^LN|||20260301120000||||||||DRSMITH^Smith^Ann||||||20260302080000|||F\r" +
		"OBX|1|TX|22634-0^Pathology report^LN||benign||||||F\r"
	m, err := hl7.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	enc := NewFHIREncoder(time.UTC, "", true)
	at := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	data, err := enc(m, "h0123", hold.ReleaseInfo{Path: hold.PathReevaluated, Actor: "DRSMITH", Role: hold.RoleClinician, At: at}, nil, strings.Repeat("a", hold.PatientKeyLen))
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range b.Entry {
		var r struct {
			ResourceType string `json:"resourceType"`
		}
		_ = json.Unmarshal(e.Resource, &r)
		if r.ResourceType != "Provenance" {
			continue
		}
		found = true
		if !strings.Contains(string(e.Resource), fhirmap.ReasonClinicianRelease) || strings.Contains(string(e.Resource), fhirmap.ReasonPatientRevoked) {
			t.Errorf("Provenance of a re-evaluated release does not name the clinician release: %s", e.Resource)
		}
	}
	if !found {
		t.Fatal("no Provenance in the Bundle")
	}
}

// TestNewFHIREncoderOptionsRefusesBadOptions: options fhirmap would refuse
// on every release are refused once, when the encoder is built.
func TestNewFHIREncoderOptionsRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]fhirmap.Options{
		"relative system": {IdentifierSystems: map[string]string{"GENHOSP": "mrn"}},
		"unknown detail":  {Patient: "everything"},
		"bad id prefix":   {IDPrefix: "no spaces"},
	} {
		if _, err := NewFHIREncoderOptions(o); !errors.Is(err, fhirmap.ErrInvalidOptions) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions", name, err)
		}
	}
	if _, err := NewFHIREncoderOptions(fhirmap.Options{Patient: fhirmap.PatientIdentifiers, IdentifierSystems: map[string]string{"GENHOSP": "urn:oid:1.2.3"}}); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}
