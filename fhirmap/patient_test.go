package fhirmap

import (
	"strings"
	"testing"

	"github.com/resultgate/resultgate/hl7"
)

// patientOf maps msg with opts (through bundleChecked: jsonformat's bytes
// and google/fhir/go's validation) and returns the Bundle's Patient.
func patientOf(t *testing.T, msg string, opts Options) map[string]any {
	t.Helper()
	m, err := hl7.Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	out, err := bundleChecked(t, m, testRelease(), opts)
	if err != nil {
		t.Fatalf("Bundle: %v", err)
	}
	b := decode(t, out)
	pats := b.resources("Patient")
	if len(pats) != 1 {
		t.Fatalf("Bundle has %d Patient resources, want 1", len(pats))
	}
	if b.Entry[0].Request.URL != "Patient/pk-0123abcd" {
		t.Errorf("Patient entry request url = %q", b.Entry[0].Request.URL)
	}
	return pats[0]
}

const patientMSH = "MSH|^~\\&|LIS|GENHOSP|PORTAL|GENHOSP|20261123083000||ORU^R01|C-1|P|2.5.1\r"
const patientOrder = "OBR|1||F1|X^Y^L|||20261123\rOBX|1|NM|A^B^L||1||||||F\r"

// TestPatientIdentifiers pins how PID-3 becomes Patient.identifier: every
// repetition, in order, then the keyed hash; the system from the
// configuration, else from the authority's OID, UUID or URI, else the
// documented default; the type from CX-5.
func TestPatientIdentifiers(t *testing.T) {
	pid := "PID|1||" + strings.Join([]string{
		"TEST0002^^^GENHOSP^MR",
		"TEST-ENT-77^^^RGENT&2.16.840.1.113883.3.9999.1&ISO^PI",
		"TEST-U^^^&F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6&UUID",
		"TEST-URI^^^&https://ids.example.org/mrn&URI",
		"ZZ0000001^^^^SS",
		"TEST-LOCAL^^^CLINIC 2^XX",
		"^^^GENHOSP^MR", // no value: left out
		"TEST-BY-OID^^^&1.2.3.4&ISO^MR",
	}, "~") + "||ZZTEST^BETA||19850217|F\r"
	opts := testOptions(t)
	opts.IdentifierSystems = map[string]string{
		"GENHOSP": "urn:oid:2.16.840.1.113883.3.9999.2",
		"1.2.3.4": "https://example.org/fhir/sid/by-oid",
	}
	p := patientOf(t, patientMSH+pid+patientOrder, opts)
	want := []string{
		`{"assigner":{"display":"GENHOSP"},"system":"urn:oid:2.16.840.1.113883.3.9999.2","type":{"coding":[{"code":"MR","system":"http://terminology.hl7.org/CodeSystem/v2-0203"}]},"value":"TEST0002"}`,
		`{"assigner":{"display":"RGENT"},"system":"urn:oid:2.16.840.1.113883.3.9999.1","type":{"coding":[{"code":"PI","system":"http://terminology.hl7.org/CodeSystem/v2-0203"}]},"value":"TEST-ENT-77"}`,
		`{"system":"urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6","value":"TEST-U"}`,
		`{"system":"https://ids.example.org/mrn","value":"TEST-URI"}`,
		`{"type":{"coding":[{"code":"SS","system":"http://terminology.hl7.org/CodeSystem/v2-0203"}]},"value":"ZZ0000001"}`,
		`{"assigner":{"display":"CLINIC 2"},"system":"` + SystemAssigningAuthority + `/CLINIC%202","type":{"text":"XX"},"value":"TEST-LOCAL"}`,
		`{"system":"https://example.org/fhir/sid/by-oid","type":{"coding":[{"code":"MR","system":"http://terminology.hl7.org/CodeSystem/v2-0203"}]},"value":"TEST-BY-OID"}`,
		`{"system":"` + SystemPatientKey + `","value":"pk-0123abcd"}`,
	}
	got, _ := p["identifier"].([]any)
	if len(got) != len(want) {
		t.Fatalf("%d identifiers, want %d: %s", len(got), len(want), jsonOf(got))
	}
	for i := range want {
		if g := jsonOf(got[i]); g != want[i] {
			t.Errorf("identifier %d =\n %s\nwant\n %s", i, g, want[i])
		}
	}
}

// TestPatientDetail checks fhir.patient: demographics (the default) carries
// name, birth date and sex; identifiers carries none of them, and no
// message text other than the identifiers.
func TestPatientDetail(t *testing.T) {
	pid := "PID|1||TEST0002^^^GENHOSP^MR||ZZTEST^BETA^Q^JR^DR^PHD^L~ZZALIAS^BEE^^^^^N||19850217093000+0100|F\r"
	msg := patientMSH + pid + patientOrder
	for _, detail := range []string{"", PatientDemographics} {
		opts := testOptions(t)
		opts.Patient = detail
		p := patientOf(t, msg, opts)
		if got, want := jsonOf(p["name"]), `[{"family":"ZZTEST","given":["BETA","Q"],"prefix":["DR"],"suffix":["JR","PHD"],"use":"official"},{"family":"ZZALIAS","given":["BEE"],"use":"nickname"}]`; got != want {
			t.Errorf("%q: name = %s, want %s", detail, got, want)
		}
		if p["birthDate"] != "1985-02-17" {
			t.Errorf("%q: birthDate = %v (the calendar date as sent, not shifted by its offset)", detail, p["birthDate"])
		}
		if p["gender"] != "female" {
			t.Errorf("%q: gender = %v", detail, p["gender"])
		}
	}
	opts := testOptions(t)
	opts.Patient = PatientIdentifiers
	m, err := hl7.Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	out, err := bundleChecked(t, m, testRelease(), opts)
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, out).resources("Patient")[0]
	for _, k := range []string{"name", "birthDate", "gender"} {
		if _, ok := p[k]; ok {
			t.Errorf("identifiers only: Patient has %s", k)
		}
	}
	for _, s := range []string{"ZZTEST", "BETA", "ZZALIAS", "1985"} {
		if strings.Contains(string(out), s) {
			t.Errorf("identifiers only: Bundle contains %q", s)
		}
	}
	if got := len(p["identifier"].([]any)); got != 2 {
		t.Errorf("identifiers only: %d identifiers, want PID-3 and the keyed hash", got)
	}
}

// TestPatientDemographicValues pins PID-7 and PID-8 edge cases: precision
// kept, malformed dates left out, table 0001 mapped, unknown codes left out.
func TestPatientDemographicValues(t *testing.T) {
	cases := []struct {
		birth, sex      string
		wantBirth, want any
	}{
		{"1985", "M", "1985", "male"},
		{"198502", "O", "1985-02", "other"},
		{"19850231", "A", nil, "other"}, // 31 February
		{"19851301", "U", nil, "unknown"},
		{"85", "N", nil, nil},
		{"00000101", "X", nil, nil},
		{"20000229", "f", "2000-02-29", "female"},
		{"", "", nil, nil},
	}
	for _, c := range cases {
		pid := "PID|1||TEST0002^^^GENHOSP^MR||ZZTEST^BETA||" + c.birth + "|" + c.sex + "\r"
		p := patientOf(t, patientMSH+pid+patientOrder, testOptions(t))
		if p["birthDate"] != c.wantBirth {
			t.Errorf("PID-7 %q: birthDate = %v, want %v", c.birth, p["birthDate"], c.wantBirth)
		}
		if p["gender"] != c.want {
			t.Errorf("PID-8 %q: gender = %v, want %v", c.sex, p["gender"], c.want)
		}
	}
}

// TestPatientWithoutPID: an MDM (or ORU) without a PID still names its
// subject: the Patient carries the keyed hash alone.
func TestPatientWithoutPID(t *testing.T) {
	p := patientOf(t, patientMSH+patientOrder, testOptions(t))
	if got, want := jsonOf(p), `{"id":"pk-0123abcd","identifier":[{"system":"`+SystemPatientKey+`","value":"pk-0123abcd"}],"resourceType":"Patient"}`; got != want {
		t.Errorf("Patient = %s, want %s", got, want)
	}
}
