package pipeline

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/feed"
)

// TestFHIRFeedIdentifiesPatient runs a routine result through the pipeline
// with the production policy and NewFHIREncoderOptions as app configures it
// (fhir.patient, fhir.identifier_systems), and reads the published Bundle:
// its Patient is the resource every subject names (the patient key of the
// feed's headers), carries PID-3 with the configured system and the keyed
// hash, and carries the demographics only when configured to.
func TestFHIRFeedIdentifiesPatient(t *testing.T) {
	pc, err := policy.DecodeConfig([]byte("time_zone: UTC\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := NewDefaultPolicy(pc)
	if err != nil {
		t.Fatal(err)
	}
	const system = "urn:oid:2.16.840.1.113883.3.9999.7"
	for _, detail := range []string{fhirmap.PatientDemographics, fhirmap.PatientIdentifiers} {
		t.Run(detail, func(t *testing.T) {
			enc, err := feed.NewFHIREncoderOptions(fhirmap.Options{
				Location: time.UTC, Validate: true, Patient: detail,
				IdentifierSystems: map[string]string{"FAC1": system},
			})
			if err != nil {
				t.Fatal(err)
			}
			e := newPipeEnv(t, func(c *Config) {
				c.Policy = pol
				c.FHIR = enc
			})
			e.start()
			publishRaw(t, e, "OLDLAB|FAC1|V23-CTRL", readTestdata(t, "hl7/oru_r01_v23.hl7"))
			e.waitSettled()
			testutil.Eventually(t, 5*time.Second, "routine result in the FHIR feed", func() bool { return len(e.portal("portal.fhir.>")) == 1 })
			msg := e.portal("portal.fhir.>")[0]
			if err := fhirmap.Validate(msg.Data); err != nil {
				t.Fatalf("published Bundle does not validate: %v", err)
			}
			key := msg.Header.Get(bus.HeaderPatientKey)
			if key == "" {
				t.Fatal("feed message has no patient key header")
			}
			var b struct {
				Entry []struct {
					Request struct {
						URL string `json:"url"`
					} `json:"request"`
					Resource map[string]any `json:"resource"`
				} `json:"entry"`
			}
			if err := json.Unmarshal(msg.Data, &b); err != nil {
				t.Fatal(err)
			}
			var patient map[string]any
			for _, en := range b.Entry {
				switch en.Resource["resourceType"] {
				case "Patient":
					patient = en.Resource
					if en.Request.URL != "Patient/"+key {
						t.Errorf("Patient PUT to %q, want Patient/<patient key>", en.Request.URL)
					}
				case "DiagnosticReport", "Observation":
					if got := jsonOfAny(en.Resource["subject"]); got != `{"reference":"Patient/`+key+`"}` {
						t.Errorf("%v subject = %s, want the Bundle's Patient", en.Resource["resourceType"], got)
					}
				}
			}
			if patient == nil {
				t.Fatal("Bundle has no Patient")
			}
			ids := jsonOfAny(patient["identifier"])
			want := `[{"assigner":{"display":"FAC1"},"system":"` + system + `","type":{"coding":[{"code":"MR","system":"http://terminology.hl7.org/CodeSystem/v2-0203"}]},"value":"PAT23"},` +
				`{"system":"` + fhirmap.SystemPatientKey + `","value":"` + key + `"}]`
			if ids != want {
				t.Errorf("Patient identifiers =\n %s\nwant\n %s", ids, want)
			}
			_, hasName := patient["name"]
			_, hasBirth := patient["birthDate"]
			_, hasGender := patient["gender"]
			if demo := detail == fhirmap.PatientDemographics; hasName != demo || hasBirth != demo || hasGender != demo {
				t.Errorf("%s: name %v, birthDate %v, gender %v", detail, hasName, hasBirth, hasGender)
			}
			if detail == fhirmap.PatientDemographics && (patient["birthDate"] != "1980-02-02" || patient["gender"] != "male") {
				t.Errorf("demographics: birthDate %v, gender %v", patient["birthDate"], patient["gender"])
			}
		})
	}
}

func jsonOfAny(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
