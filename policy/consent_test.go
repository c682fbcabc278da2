package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/hostile"
)

func readConsent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "consent", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseConsentExamples(t *testing.T) {
	day := 24 * time.Hour
	recorded := time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC)
	tests := []struct {
		file string
		want Preference
	}{
		{"release-immediately.json", Preference{
			ConsentID: "rg-immediately", PatientReference: "Patient/example-1", Status: "active",
			Provisions: []Provision{},
		}},
		{"until-clinician-review.json", Preference{
			ConsentID: "rg-clinician-review", PatientReference: "Patient/example-1", Status: "active", Recorded: recorded,
			Provisions: []Provision{{
				Path:  "Consent.provision.provision[0]",
				Codes: []Coding{{SystemLOINC, LOINCPartPathology}, {SystemLOINC, LOINCPartRadiology}},
				Until: UntilClinicianReview, Max: 14 * day,
			}},
		}},
		{"hours.json", Preference{
			ConsentID: "rg-hours", PatientReference: "Patient/example-1", Status: "active", Recorded: recorded,
			Provisions: []Provision{{
				Path:  "Consent.provision.provision[0]",
				Codes: []Coding{{TagCodeSystem, TagMalignancy}, {TagCodeSystem, TagSuspectedMalignancy}},
				Until: UntilElapsed, Delay: 72 * time.Hour,
			}},
		}},
		{"earlier-of.json", Preference{
			ConsentID: "rg-earlier-of", PatientReference: "Patient/example-1", Status: "active", Recorded: recorded,
			Provisions: []Provision{{
				Path:  "Consent.provision.provision[0]",
				Codes: []Coding{{SystemV2_0074, "SP"}, {SystemV2_0074, "CP"}},
				Until: UntilEarlierOf, Delay: 48 * time.Hour, Max: 7 * day,
			}},
		}},
		{"later-of.json", Preference{
			ConsentID: "rg-later-of", PatientReference: "Patient/example-1", Status: "active", Recorded: recorded,
			Provisions: []Provision{{
				Path: "Consent.provision.provision[0]", Codes: []Coding{{TagCodeSystem, TagGenetic}},
				Until: UntilLaterOf, Delay: day, Max: 10 * day,
			}},
		}},
		{"all-results.json", Preference{
			ConsentID: "rg-all", PatientReference: "Patient/example-1", Status: "active", Recorded: recorded,
			Provisions: []Provision{{Path: "Consent.provision.provision[0]", Until: UntilClinicianReview, Max: 14 * day}},
		}},
		{"loinc-code.json", Preference{
			ConsentID: "rg-loinc", PatientReference: "Patient/example-1", Status: "active", Recorded: recorded,
			Provisions: []Provision{{
				Path: "Consent.provision.provision[0]", Codes: []Coding{{SystemLOINC, "60567-5"}, {SystemLOINC, "51969-4"}},
				Until: UntilClinicianReview,
			}},
		}},
		{"revoked.json", Preference{
			ConsentID: "rg-revoked", PatientReference: "Patient/example-1", Status: "inactive", Recorded: recorded,
			Provisions: []Provision{{
				Path: "Consent.provision.provision[0]", Codes: []Coding{{SystemLOINC, LOINCPartPathology}},
				Until: UntilClinicianReview,
			}},
		}},
		{"identifier-period.json", Preference{
			ConsentID: "rg-identifier", PatientIdentifier: "MRN12345", PatientIdentifierSystem: "urn:oid:2.16.840.1.113883.3.999.1",
			Status: "active", Recorded: recorded,
			Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			Provisions: []Provision{
				{Path: "Consent.provision.provision[0]", Codes: []Coding{{SystemLOINC, LOINCPartRadiology}}, Until: UntilClinicianReview, Max: 5 * day},
				{Path: "Consent.provision.provision[1]", Codes: []Coding{{TagCodeSystem, TagTumorMarker}}, Until: UntilElapsed, Delay: 24 * time.Hour},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			got, err := ParseConsent(readConsent(t, tt.file))
			if err != nil {
				t.Fatalf("ParseConsent: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// mutate decodes the clinician-review example, applies f and re-encodes it.
func mutateConsent(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readConsent(t, "until-clinician-review.json"), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func consentProv(m map[string]any) map[string]any { return m["provision"].(map[string]any) }

func consentDeny0(m map[string]any) map[string]any {
	return consentProv(m)["provision"].([]any)[0].(map[string]any)
}

func consentExt(url string, value map[string]any) map[string]any {
	out := map[string]any{"url": url}
	for k, v := range value {
		out[k] = v
	}
	return out
}

func consentDur(v any, code string) map[string]any {
	return map[string]any{"valueDuration": map[string]any{"value": v, "system": "http://unitsofmeasure.org", "code": code}}
}

func TestParseConsentRejects(t *testing.T) {
	const p0 = "Consent.provision.provision[0]"
	setExt := func(exts ...map[string]any) func(map[string]any) {
		return func(m map[string]any) {
			var list []any
			for _, e := range exts {
				list = append(list, e)
			}
			consentDeny0(m)["extension"] = list
		}
	}
	condExt := func(c string) map[string]any { return consentExt(ExtReleaseCondition, map[string]any{"valueCode": c}) }
	setCode := func(system, code string) func(map[string]any) {
		return func(m map[string]any) {
			consentDeny0(m)["code"] = []any{map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}}
		}
	}
	tests := []struct {
		name string
		raw  []byte
		mut  func(m map[string]any)
		want string
	}{
		{name: "not JSON", raw: []byte("{"), want: "consent: invalid JSON"},
		{name: "JSON array", raw: []byte("[]"), want: "consent: invalid JSON"},
		{name: "missing resourceType", raw: []byte(`{"id":"x"}`), want: `consent: missing required field "resourceType"`},
		{name: "another resource", raw: []byte(`{"resourceType":"Patient","id":"p1"}`), want: "consent: resourceType: must be Consent"},
		{name: "unknown field", mut: func(m map[string]any) { m["colour"] = "blue" }, want: `consent: Consent: unknown field "colour"`},
		{name: "missing scope and category (FHIR validation)", mut: func(m map[string]any) { delete(m, "scope"); delete(m, "category") },
			want: `consent: Consent: missing required field "scope"; Consent: missing required field "category"`},
		{name: "status not a code", mut: func(m map[string]any) { m["status"] = "revoked" }, want: "consent: Consent.status: code type mismatch"},
		{name: "status draft", mut: func(m map[string]any) { m["status"] = "draft" },
			want: "consent: Consent.status: must be active or inactive (revoked), got draft"},
		{name: "status entered-in-error", mut: func(m map[string]any) { m["status"] = "entered-in-error" },
			want: "consent: Consent.status: must be active or inactive (revoked), got entered-in-error"},
		{name: "research scope", mut: func(m map[string]any) {
			m["scope"] = map[string]any{"coding": []any{map[string]any{"system": SystemConsentScope, "code": "research"}}}
		}, want: "consent: Consent.scope: must be http://terminology.hl7.org/CodeSystem/consentscope#patient-privacy"},
		{name: "no patient", mut: func(m map[string]any) { delete(m, "patient") }, want: "consent: Consent.patient: required"},
		{name: "patient is a practitioner", mut: func(m map[string]any) { m["patient"] = map[string]any{"reference": "Practitioner/7"} },
			want: "consent: Consent.patient: invalid reference to a Practitioner resource, want Patient"},
		{name: "patient by display only", mut: func(m map[string]any) { m["patient"] = map[string]any{"display": "Jane"} },
			want: "consent: Consent.patient: must reference a Patient or carry an identifier"},
		{name: "patient identifier without value", mut: func(m map[string]any) {
			m["patient"] = map[string]any{"identifier": map[string]any{"system": "urn:x"}}
		}, want: "consent: Consent.patient.identifier.value: required"},
		{name: "modifier extension", mut: func(m map[string]any) {
			m["modifierExtension"] = []any{map[string]any{"url": "http://example.org/x", "valueBoolean": true}}
		}, want: "consent: Consent.modifierExtension: not supported"},
		{name: "no provision", mut: func(m map[string]any) { delete(m, "provision") }, want: "consent: Consent.provision: required"},
		{name: "base provision deny", mut: func(m map[string]any) { consentProv(m)["type"] = "deny" },
			want: "consent: Consent.provision.type: must be permit (the base provision permits; nested deny provisions hold)"},
		{name: "base provision with code", mut: func(m map[string]any) {
			consentProv(m)["code"] = []any{map[string]any{"coding": []any{map[string]any{"system": SystemLOINC, "code": "LP7839-6"}}}}
		}, want: "consent: Consent.provision.code: not supported by the resultgate Consent profile"},
		{name: "base provision actor", mut: func(m map[string]any) {
			consentProv(m)["actor"] = []any{map[string]any{
				"role":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}}},
				"reference": map[string]any{"reference": "Organization/1"},
			}}
		}, want: "consent: Consent.provision.actor: not supported by the resultgate Consent profile"},
		{name: "period ends before it starts", mut: func(m map[string]any) {
			consentProv(m)["period"] = map[string]any{"start": "2026-05-01", "end": "2026-04-01"}
		}, want: "consent: Consent.provision.period: end must be after start"},
		{name: "nested permit", mut: func(m map[string]any) { consentDeny0(m)["type"] = "permit" },
			want: "consent: " + p0 + ".type: nested provisions must be deny"},
		{name: "nested provision inside deny", mut: func(m map[string]any) {
			consentDeny0(m)["provision"] = []any{map[string]any{"type": "deny"}}
		}, want: "consent: " + p0 + ".provision: not supported by the resultgate Consent profile"},
		{name: "nested period", mut: func(m map[string]any) { consentDeny0(m)["period"] = map[string]any{"start": "2026-01-01"} },
			want: "consent: " + p0 + ".period: not supported by the resultgate Consent profile"},
		{name: "nested purpose", mut: func(m map[string]any) {
			consentDeny0(m)["purpose"] = []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}}
		}, want: "consent: " + p0 + ".purpose: not supported by the resultgate Consent profile"},
		{name: "no release condition", mut: setExt(consentExt(ExtReleaseMaximum, consentDur(3, "d"))),
			want: "consent: " + p0 + ".extension: release-condition (" + ExtReleaseCondition + ") required"},
		{name: "unknown release condition", mut: setExt(condExt("forever")),
			want: "consent: " + p0 + `.extension[0].valueCode: must be clinician-review, elapsed, earlier-of or later-of, got "forever"`},
		{name: "release condition not a code", mut: setExt(consentExt(ExtReleaseCondition, map[string]any{"valueString": "elapsed"})),
			want: "consent: " + p0 + ".extension[0].valueCode: required for release-condition"},
		{name: "release condition twice", mut: setExt(condExt("clinician-review"), condExt("elapsed")),
			want: "consent: " + p0 + ".extension[1]: release-condition given twice"},
		{name: "elapsed without delay", mut: setExt(condExt("elapsed")),
			want: "consent: " + p0 + ".extension: release-delay required for elapsed"},
		{name: "later-of without delay", mut: setExt(condExt("later-of"), consentExt(ExtReleaseMaximum, consentDur(3, "d"))),
			want: "consent: " + p0 + ".extension: release-delay required for later-of"},
		{name: "clinician-review with delay", mut: setExt(condExt("clinician-review"), consentExt(ExtReleaseDelay, consentDur(3, "h"))),
			want: "consent: " + p0 + ".extension: release-delay not allowed with clinician-review (use earlier-of or later-of)"},
		{name: "maximum shorter than delay", mut: setExt(condExt("later-of"), consentExt(ExtReleaseDelay, consentDur(3, "d")), consentExt(ExtReleaseMaximum, consentDur(48, "h"))),
			want: "consent: " + p0 + ".extension: release-maximum (2d) is shorter than release-delay (3d)"},
		{name: "delay in months", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, consentDur(1, "mo"))),
			want: "consent: " + p0 + `.extension[1].valueDuration.code: must be UCUM min, h, d or wk, got "mo"`},
		{name: "delay without unit code", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, map[string]any{"valueDuration": map[string]any{"value": 3}})),
			want: "consent: " + p0 + ".extension[1].valueDuration.code: required (UCUM min, h, d or wk)"},
		{name: "delay zero", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, consentDur(0, "h"))),
			want: "consent: " + p0 + ".extension[1].valueDuration.value: must be > 0, got 0"},
		{name: "delay negative", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, consentDur(-2, "h"))),
			want: "consent: " + p0 + ".extension[1].valueDuration.value: must be > 0, got -2"},
		{name: "delay under a minute", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, consentDur(0.5, "min"))),
			want: "consent: " + p0 + ".extension[1].valueDuration: must be at least 1 minute"},
		{name: "delay with a huge exponent", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, consentDur(json.Number("1e300"), "h"))),
			want: "consent: " + p0 + ".extension[1].valueDuration: must be at most 365 days"},
		{name: "delay over a year", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, consentDur(53, "wk"))),
			want: "consent: " + p0 + ".extension[1].valueDuration: must be at most 365 days"},
		{name: "delay with comparator", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, map[string]any{"valueDuration": map[string]any{"value": 3, "comparator": "<", "code": "h"}})),
			want: "consent: " + p0 + ".extension[1].valueDuration.comparator: not supported"},
		{name: "delay in another unit system", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, map[string]any{"valueDuration": map[string]any{"value": 3, "system": "http://example.org/units", "code": "h"}})),
			want: "consent: " + p0 + `.extension[1].valueDuration.system: must be http://unitsofmeasure.org, got "http://example.org/units"`},
		{name: "delay as a string", mut: setExt(condExt("elapsed"), consentExt(ExtReleaseDelay, map[string]any{"valueString": "3 days"})),
			want: "consent: " + p0 + ".extension[1].valueDuration: required"},
		{name: "unknown resultgate extension", mut: setExt(condExt("clinician-review"), consentExt(FHIRBase+"/StructureDefinition/release-mood", map[string]any{"valueCode": "calm"})),
			want: "consent: " + p0 + `.extension[1]: unknown resultgate extension "http://resultgate.org/fhir/StructureDefinition/release-mood"`},
		{name: "unsupported LOINC part", mut: setCode(SystemLOINC, "LP7785-1"),
			want: "consent: " + p0 + `.code[0].coding[0].code: unsupported LOINC part "LP7785-1" (supported: LP7839-6 pathology, LP29684-5 radiology)`},
		{name: "unknown v2-0074 code", mut: setCode(SystemV2_0074, "ZZ"),
			want: "consent: " + p0 + `.code[0].coding[0].code: not an HL7 table 0074 code: "ZZ"`},
		{name: "SNOMED code", mut: setCode("http://snomed.info/sct", "363346000"),
			want: "consent: " + p0 + `.code[0].coding[0].system: unsupported code system "http://snomed.info/sct"`},
		{name: "coding without system", mut: setCode("", "LP7839-6"),
			want: "consent: " + p0 + ".code[0].coding[0].system: required"},
		{name: "bad tag name", mut: setCode(TagCodeSystem, "Malignancy"),
			want: "consent: " + p0 + `.code[0].coding[0].code: not a resultgate tag name: "Malignancy"`},
		{name: "code with text only", mut: func(m map[string]any) { consentDeny0(m)["code"] = []any{map[string]any{"text": "my biopsy"}} },
			want: "consent: " + p0 + ".code[0]: needs at least one coding (text alone cannot be matched)"},
		{name: "too large", raw: []byte(`{"resourceType":"Consent","text":"` + strings.Repeat("x", MaxConsentBytes) + `"}`),
			want: "consent: larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if tt.mut != nil {
				raw = mutateConsent(t, tt.mut)
			}
			p, err := ParseConsent(raw)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
			if !errors.Is(err, ErrConsent) {
				t.Errorf("error does not wrap ErrConsent")
			}
		})
	}
}

func TestPreferenceMatchesPatient(t *testing.T) {
	p := &Preference{PatientIdentifier: "MRN12345"}
	if !p.MatchesPatient("MRN12345^^^HOSP^MR") || p.MatchesPatient("MRN99999^^^HOSP^MR") {
		t.Error("identifier matching wrong")
	}
	ref := &Preference{PatientReference: "Patient/1"}
	if !ref.MatchesPatient("anything") {
		t.Error("reference-only preference must be trusted to the caller")
	}
}

func FuzzParseConsent(f *testing.F) {
	entries, _ := os.ReadDir(filepath.Join("..", "testdata", "consent"))
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("..", "testdata", "consent", e.Name())); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Consent"}`))
	for _, b := range hostile.Structures(4 << 10) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseConsent(data)
		if err != nil {
			if p != nil {
				t.Fatal("preference returned with an error")
			}
			if !errors.Is(err, ErrConsent) {
				t.Fatalf("error does not wrap ErrConsent: %v", err)
			}
			return
		}
		if p.Status != "active" && p.Status != "inactive" {
			t.Fatalf("status %q accepted", p.Status)
		}
		for _, pv := range p.Provisions {
			switch pv.Until {
			case UntilClinicianReview, UntilElapsed, UntilEarlierOf, UntilLaterOf:
			default:
				t.Fatalf("end condition %q accepted", pv.Until)
			}
			if pv.Delay < 0 || pv.Max < 0 || pv.Delay > maxConsentDuration || pv.Max > maxConsentDuration {
				t.Fatalf("duration out of range: %+v", pv)
			}
		}
	})
}
