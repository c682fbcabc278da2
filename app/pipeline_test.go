package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// Synthetic messages: a routine chemistry panel and a surgical pathology report
// with a malignant diagnosis. OBR-22 is set so the state-law clock is defined.
const (
	labORU = "MSH|^~\\&|LIS|SYNLAB|PORTAL|GENHOSP|20261120090000-0500||ORU^R01^ORU_R01|%s|P|2.5.1\r" +
		"PID|1||MRN-E2E-%s^^^GENHOSP^MR||TESTPATIENT^E2E||19700101|F\r" +
		"ORC|RE|PL-%s|FL-%s||CM||||20261120080000|||D001^DOCTOR^DELTA\r" +
		"OBR|1|PL-%s|FL-%s|24323-8^Comprehensive metabolic panel^LN|||20261120080000|||||||||D001^DOCTOR^DELTA||||||20261120085500||CH|F\r" +
		"OBX|1|NM|2951-2^Sodium^LN||140|mmol/L^^UCUM|136-145|N|||F\r" +
		"OBX|2|NM|2823-3^Potassium^LN||4.1|mmol/L^^UCUM|3.5-5.1|N|||F\r"
	pathORU = "MSH|^~\\&|APLIS|SYNPATH|PORTAL|GENHOSP|20261120090000-0500||ORU^R01^ORU_R01|%s|P|2.5.1\r" +
		"PID|1||MRN-E2E-%s^^^GENHOSP^MR||TESTPATIENT^E2E||19700101|F\r" +
		"ORC|RE|PL-%s|FL-%s||CM||||20261120080000|||D001^DOCTOR^DELTA\r" +
		"OBR|1|PL-%s|FL-%s|60567-5^Comprehensive pathology report panel^LN|||20261119100000|||||||||D001^DOCTOR^DELTA||||||20261120085500||SP|F\r" +
		"OBX|1|TX|22637-3^Pathology report final diagnosis^LN||Left breast, core biopsy: invasive ductal carcinoma, grade 2.||||||F\r" +
		"OBX|2|TX|22634-0^Pathology report gross description^LN||Two cores of tan tissue.||||||F\r"
)

// obr22At is the results-reported time (OBR-22) of every message msg builds:
// an hour before the tests started, so a 72-hour statute hold is still open
// whatever the date. The templates carry a fixed date that msg replaces.
var obr22At = time.Now().Add(-time.Hour).Truncate(time.Minute)

// obr22Text is obr22At as the messages write it: without an offset, in the
// policy's zone (America/New_York) as the Kentucky tests configure it.
var obr22Text = func() string {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	return obr22At.In(loc).Format("20060102150405")
}()

// templateOBR22 is the OBR-22 written in the templates.
const templateOBR22 = "20261120085500"

func msg(tmpl, id string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(tmpl, id, id, id, id, id, id), templateOBR22, obr22Text))
}

// feedCount returns how many messages with control ID id are on the portal
// subject prefix ("portal.hl7." or "portal.fhir.") and the last one's headers.
func feed(t *testing.T, js jetstream.JetStream, prefix, id string) (int, map[string]string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamPortal)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	hdr := map[string]string{}
	var data []byte
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if strings.HasPrefix(m.Subject, prefix) && m.Header.Get(bus.HeaderControlID) == id {
			n++
			data = m.Data
			for k := range m.Header {
				hdr[k] = m.Header.Get(k)
			}
		}
	}
	return n, hdr, data
}

// unescape decodes a percent-encoded feed header (notes may hold any text).
func unescape(s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		return "undecodable: " + s
	}
	return u
}

func sendAll(t *testing.T, addr string, msgs ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, m := range msgs {
		ack, err := cl.Send(ctx, m)
		if err != nil || loadgen.AckCode(ack) != "AA" {
			t.Fatalf("send: %q %v", ack, err)
		}
	}
}

func TestPipelineEndToEnd(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	// Kentucky's KRS 333.152 preset: pathology likely to show malignancy is held
	// 72 h after finalisation unless the provider releases it earlier.
	var err error
	cfg, err = config.Parse([]byte(`
policy:
  time_zone: America/New_York
  jurisdiction: US-KY
  jurisdictions:
    US-KY:
      statute: US-KY-KRS-333.152
fhir:
  identifier_systems:
    GENHOSP: "urn:oid:2.16.840.1.113883.3.9999.2"
`))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, t.TempDir())
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	a := New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	js := a.JetStream()

	sendAll(t, a.MLLPAddr().String(), msg(labORU, "LAB1"), msg(pathORU, "PATH1"))

	// The routine panel goes to the feed at once, as HL7 and as FHIR.
	testutil.Eventually(t, 15*time.Second, "lab result in the portal feed", func() bool {
		n, _, _ := feed(t, js, "portal.fhir.", "LAB1")
		return n == 1
	})
	n, hdr, data := feed(t, js, "portal.hl7.", "LAB1")
	if n != 1 || !strings.Contains(string(data), "OBX|1|NM|2951-2") {
		t.Fatalf("HL7 feed has %d copies of LAB1: %q", n, data)
	}
	if hdr[bus.HeaderReleasePath] != string(hold.PathImmediate) || hdr[bus.HeaderNotify] != "push" {
		t.Errorf("lab feed headers: %v", hdr)
	}
	_, fhirHdr, fhir := feed(t, js, "portal.fhir.", "LAB1")
	// The Bundle names the patient as the portal knows them: a Patient with
	// the PID-3 identifier under the configured system, the keyed hash,
	// and the default demographics; every subject references it.
	if err := fhirmap.Validate(fhir); err != nil {
		t.Fatalf("FHIR feed Bundle does not validate: %v", err)
	}
	var bundle struct {
		Entry []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(fhir, &bundle); err != nil {
		t.Fatal(err)
	}
	var patient map[string]any
	for _, en := range bundle.Entry {
		if en.Resource["resourceType"] == "Patient" {
			patient = en.Resource
		}
	}
	if patient == nil {
		t.Fatalf("FHIR feed Bundle has no Patient: %.300s", fhir)
	}
	ids, _ := json.Marshal(patient["identifier"])
	key := fhirHdr[bus.HeaderPatientKey]
	wantIDs := `[{"assigner":{"display":"GENHOSP"},"system":"urn:oid:2.16.840.1.113883.3.9999.2","type":{"coding":[{"code":"MR","system":"http://terminology.hl7.org/CodeSystem/v2-0203"}]},"value":"MRN-E2E-LAB1"},` +
		`{"system":"` + fhirmap.SystemPatientKey + `","value":"` + key + `"}]`
	if key == "" || patient["id"] != key || string(ids) != wantIDs {
		t.Errorf("Patient id %v, identifiers\n %s\nwant id %q, identifiers\n %s", patient["id"], ids, key, wantIDs)
	}
	if names, _ := json.Marshal(patient["name"]); string(names) != `[{"family":"TESTPATIENT","given":["E2E"]}]` || patient["birthDate"] != "1970-01-01" || patient["gender"] != "female" {
		t.Errorf("Patient demographics: name %s, birthDate %v, gender %v", names, patient["birthDate"], patient["gender"])
	}
	if want := `"subject":{"reference":"Patient/` + key + `"}`; strings.Count(string(fhir), want) != 3 {
		t.Errorf("the DiagnosticReport and its two Observations must reference the Patient (%s)", want)
	}

	// The pathology report with a carcinoma is held on the state-law basis.
	svc := a.Service()
	var holdID string
	testutil.Eventually(t, 15*time.Second, "pathology hold", func() bool {
		hs, _ := svc.ListHolds(ctx, holdview.Filter{Provider: "D001"})
		if len(hs) == 1 {
			holdID = hs[0].ID
			return true
		}
		return false
	})
	h, err := svc.GetHold(ctx, holdID)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, tg := range h.Tags {
		tags = append(tags, tg.Tag)
	}
	joined := strings.Join(tags, ",")
	if !strings.Contains(joined, "pathology") || !strings.Contains(joined, "malignancy") {
		t.Errorf("hold tags = %v, want pathology and malignancy", tags)
	}
	if len(h.Bases) == 0 || h.Bases[0].Kind != "state-law" {
		t.Errorf("hold bases = %+v, want state-law", h.Bases)
	}
	want := obr22At.Add(72 * time.Hour)
	if !h.Deadline.Equal(want) {
		t.Errorf("deadline %s, want 72 h after OBR-22 = %s", h.Deadline, want)
	}
	if n, _, _ := feed(t, js, "portal.hl7.", "PATH1"); n != 0 {
		t.Fatalf("held result is in the portal feed (%d copies)", n)
	}

	// Another clinician may not release it; the ordering provider may, once.
	if _, err := svc.Acknowledge(ctx, holdID, pipeline.AckRequest{By: "D999"}); err == nil {
		t.Fatal("a clinician who is not the ordering provider released the hold")
	}
	if _, err := svc.Acknowledge(ctx, holdID, pipeline.AckRequest{By: "D001", Note: "Dr Delta will call you today."}); err != nil {
		t.Fatalf("ordering provider release: %v", err)
	}
	if _, err := svc.Acknowledge(ctx, holdID, pipeline.AckRequest{By: "D001"}); err == nil {
		t.Fatal("second release succeeded")
	}
	testutil.Eventually(t, 15*time.Second, "released pathology result in the feed", func() bool {
		n, _, _ := feed(t, js, "portal.hl7.", "PATH1")
		return n == 1
	})
	_, hdr, _ = feed(t, js, "portal.hl7.", "PATH1")
	if hdr[bus.HeaderHoldID] != holdID || hdr[bus.HeaderReleasePath] != string(hold.PathAcknowledged) ||
		unescape(hdr[bus.HeaderNote]) != "Dr Delta will call you today." || hdr[bus.HeaderNotify] != "quiet" {
		t.Errorf("release headers: %v", hdr)
	}
}
