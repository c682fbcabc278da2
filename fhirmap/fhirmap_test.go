package fhirmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Options.Location in tests must not depend on the host's zoneinfo

	"github.com/resultgate/resultgate/hl7"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func testRelease() Release {
	return Release{
		HoldID:    "H-0001",
		Reason:    ReasonClinicianRelease,
		Actor:     "dr-test-1",
		ActorRole: "ordering-provider",
		Note:      "Your clinician has reviewed this result.",
		At:        time.Date(2026, 11, 23, 16, 15, 0, 0, time.UTC),
		Bases:     []string{"patient-request"},
		Notify:    "push",
	}
}

func testOptions(t testing.TB) Options {
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	return Options{PatientRef: "Patient/pk-0123abcd", Location: loc, IDPrefix: "rg-"}
}

func parseFile(t testing.TB, path string) *hl7.Message {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := hl7.Parse(data)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return m
}

func pretty(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		t.Fatalf("indenting: %v", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// TestGolden maps every synthetic fixture under testdata and compares the
// Bundle with testdata/golden/<name>.json (go test -run Golden -update
// rewrites them). Every Bundle must re-parse and validate with google/fhir/go.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.hl7")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hl7")
		t.Run(name, func(t *testing.T) {
			m := parseFile(t, f)
			out, err := bundleChecked(t, m, testRelease(), testOptions(t))
			if err != nil {
				t.Fatalf("Bundle: %v", err)
			}
			if err := Validate(out); err != nil {
				t.Fatalf("re-validating: %v", err)
			}
			got := pretty(t, out)
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file; run go test ./fhirmap -run Golden -update and review the diff", name)
			}
		})
	}
}

// TestDeterministic checks that the same input gives the same bytes, also
// when parsed afresh and mapped concurrently.
func TestDeterministic(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.hl7")
	for _, f := range files {
		a, err := Bundle(parseFile(t, f), testRelease(), testOptions(t))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan []byte, 4)
		for range 4 {
			go func() {
				b, err := Bundle(parseFile(t, f), testRelease(), testOptions(t))
				if err != nil {
					t.Error(err)
				}
				done <- b
			}()
		}
		for range 4 {
			if b := <-done; !bytes.Equal(a, b) {
				t.Fatalf("%s: output differs between runs", f)
			}
		}
	}
}

// bundleJSON decodes a Bundle for assertions.
type bundleJSON struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string         `json:"fullUrl"`
		Resource map[string]any `json:"resource"`
		Request  struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"request"`
	} `json:"entry"`
}

func decode(t testing.TB, data []byte) bundleJSON {
	t.Helper()
	var b bundleJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep decimals as written ("4.10")
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b bundleJSON) resources(typ string) []map[string]any {
	var out []map[string]any
	for _, e := range b.Entry {
		if e.Resource["resourceType"] == typ {
			out = append(out, e.Resource)
		}
	}
	return out
}

func mapFixture(t *testing.T, name string) bundleJSON {
	t.Helper()
	out, err := bundleChecked(t, parseFile(t, filepath.Join("testdata", name+".hl7")), testRelease(), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestMappingDecisions pins the choices documented in docs/FHIR.md that are
// easy to break and hard to see in a golden diff.
func TestMappingDecisions(t *testing.T) {
	t.Run("transaction of PUTs, references by urn:uuid, the Patient first under the keyed hash", func(t *testing.T) {
		b := mapFixture(t, "lab_panel_nm")
		if b.Type != "transaction" {
			t.Errorf("type = %q", b.Type)
		}
		for i, e := range b.Entry {
			if e.Request.Method != "PUT" || e.Request.URL != e.Resource["resourceType"].(string)+"/"+e.Resource["id"].(string) {
				t.Errorf("entry request %+v for %v/%v", e.Request, e.Resource["resourceType"], e.Resource["id"])
			}
			if !strings.HasPrefix(e.FullURL, "urn:uuid:") {
				t.Errorf("fullUrl %q", e.FullURL)
			}
			if (e.Resource["resourceType"] == "Patient") != (i == 0) {
				t.Errorf("entry %d is a %v; the Patient is the first entry and the only one", i, e.Resource["resourceType"])
			}
			if i == 0 {
				// The Patient keeps the keyed hash as its id (no IDPrefix),
				// so every subject reference names it.
				if e.Resource["id"] != "pk-0123abcd" {
					t.Errorf("Patient id = %v, want the PatientRef id", e.Resource["id"])
				}
				continue
			}
			if !strings.HasSuffix(e.Resource["id"].(string), strings.TrimPrefix(e.FullURL, "urn:uuid:")) {
				t.Errorf("fullUrl %q vs id %q", e.FullURL, e.Resource["id"])
			}
		}
		dr := b.resources("DiagnosticReport")[0]
		if got := jsonOf(dr["subject"]); got != `{"reference":"Patient/pk-0123abcd"}` {
			t.Errorf("subject = %s", got)
		}
		if got := len(dr["result"].([]any)); got != 5 {
			t.Errorf("result count = %d", got)
		}
	})
	t.Run("NM with UCUM units, normalised decimals, ranges and flags", func(t *testing.T) {
		obs := mapFixture(t, "lab_panel_nm").resources("Observation")
		if got := jsonOf(obs[0]["valueQuantity"]); got != `{"code":"mg/dL","system":"http://unitsofmeasure.org","unit":"mg/dL","value":112}` {
			t.Errorf("glucose value = %s", got)
		}
		if got := jsonOf(obs[1]["valueQuantity"]); !strings.Contains(got, `"value":4.10`) {
			t.Errorf("potassium keeps its precision: %s", got)
		}
		if got := jsonOf(obs[2]["valueQuantity"]); !strings.Contains(got, `"value":134`) {
			t.Errorf("sodium +0134 normalised: %s", got)
		}
		if got := jsonOf(obs[3]["valueQuantity"]); !strings.Contains(got, `"value":0.75`) {
			t.Errorf("GFR .75 normalised: %s", got)
		}
		if got := jsonOf(obs[4]["valueQuantity"]); got != `{"unit":"g/dL","value":4.5}` {
			t.Errorf("units without a UCUM system carry no code: %s", got)
		}
		if got := jsonOf(obs[0]["referenceRange"]); got != `[{"high":{"code":"mg/dL","system":"http://unitsofmeasure.org","unit":"mg/dL","value":99},"low":{"code":"mg/dL","system":"http://unitsofmeasure.org","unit":"mg/dL","value":70},"text":"70-99"}]` {
			t.Errorf("range = %s", got)
		}
		if got := jsonOf(obs[0]["interpretation"]); !strings.Contains(got, `"code":"H"`) || !strings.Contains(got, SystemV3Interp) {
			t.Errorf("interpretation = %s", got)
		}
		if got := jsonOf(obs[2]["note"]); got != `[{"text":"Specimen slightly hemolyzed.\nRepeat if clinically indicated."}]` {
			t.Errorf("notes = %s", got)
		}
		if got := obs[0]["effectiveDateTime"]; got != "2026-11-23T13:30:00Z" {
			t.Errorf("effective = %v", got)
		}
	})
	t.Run("pathology narrative joined, conclusion and presentedForm", func(t *testing.T) {
		b := mapFixture(t, "pathology_tx")
		obs := b.resources("Observation")
		if len(obs) != 3 {
			t.Fatalf("want 3 Observations (diagnosis, gross, sign-out), got %d", len(obs))
		}
		if got := obs[0]["valueString"]; got != "A. Skin, left forearm, shave biopsy:\n  - Basal cell carcinoma, nodular type.\n  - Margins free of tumor." {
			t.Errorf("diagnosis = %q", got)
		}
		dr := b.resources("DiagnosticReport")[0]
		if !strings.HasPrefix(dr["conclusion"].(string), "A. Skin") {
			t.Errorf("conclusion = %q", dr["conclusion"])
		}
		pf := dr["presentedForm"].([]any)[0].(map[string]any)
		if pf["contentType"] != "text/plain; charset=utf-8" {
			t.Errorf("presentedForm = %v", pf)
		}
		if got := jsonOf(dr["extension"]); !strings.Contains(got, ExtR5DiagnosticReportNote) {
			t.Errorf("order NTE as R5 note extension: %s", got)
		}
		if got := jsonOf(dr["category"]); got != "null" {
			t.Errorf("no OBR-24, no category: %s", got)
		}
	})
	t.Run("FT line breaks and imaging categories", func(t *testing.T) {
		b := mapFixture(t, "imaging_ft")
		obs := b.resources("Observation")
		if got := obs[0]["valueString"].(string); !strings.Contains(got, "contrast.\n\nFINDINGS") {
			t.Errorf("\\.br\\ is a newline: %q", got)
		}
		dr := b.resources("DiagnosticReport")[0]
		if dr["status"] != "preliminary" || obs[0]["status"] != "preliminary" {
			t.Errorf("status %v / %v", dr["status"], obs[0]["status"])
		}
		if got := jsonOf(dr["category"]); !strings.Contains(got, `"code":"RAD"`) || !strings.Contains(got, loincRadiology) {
			t.Errorf("category = %s", got)
		}
		if got := jsonOf(dr["effectivePeriod"]); got != `{"end":"2026-11-21T11:15:00Z","start":"2026-11-21T11:00:00Z"}` {
			t.Errorf("effectivePeriod = %s", got)
		}
		if got := obs[0]["category"]; !strings.Contains(jsonOf(got), `"imaging"`) {
			t.Errorf("observation category = %s", jsonOf(got))
		}
	})
	t.Run("SN per comparator and separator", func(t *testing.T) {
		obs := mapFixture(t, "sn_values").resources("Observation")
		want := []struct{ key, json string }{
			{"valueQuantity", `{"code":"mg/dL","comparator":"\u003c","system":"http://unitsofmeasure.org","unit":"mg/dL","value":0.5}`},
			{"valueRatio", `{"denominator":{"value":128},"numerator":{"value":1}}`},
			{"valueRange", `{"high":{"value":6},"low":{"value":5}}`},
			{"valueString", `"2 +"`},
			{"valueString", `"\u003e= 1 / 8"`},
			{"valueQuantity", `{"code":"m[IU]/mL","system":"http://unitsofmeasure.org","unit":"m[IU]/mL","value":5}`},
			{"valueString", `"\u003c\u003e 3"`},
		}
		for i, w := range want {
			if got := jsonOf(obs[i][w.key]); got != w.json {
				t.Errorf("OBX %d %s = %s, want %s", i+1, w.key, got, w.json)
			}
		}
	})
	t.Run("coded values", func(t *testing.T) {
		obs := mapFixture(t, "coded_cwe").resources("Observation")
		got := jsonOf(obs[0]["valueCodeableConcept"])
		if !strings.Contains(got, `"system":"http://snomed.info/sct"`) || !strings.Contains(got, `"code":"ECOLI"`) || !strings.Contains(got, `"text":"Escherichia coli"`) {
			t.Errorf("CWE = %s", got)
		}
		if got := jsonOf(obs[3]["valueCodeableConcept"]); got != `{"text":"Susceptible"}` {
			t.Errorf("text-only CWE = %s", got)
		}
		if got := jsonOf(obs[2]["valueCodeableConcept"]); !strings.Contains(got, SystemV2Prefix+"0078") {
			t.Errorf("HL70078 system = %s", got)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		b := mapFixture(t, "cancelled")
		dr := b.resources("DiagnosticReport")[0]
		ob := b.resources("Observation")[0]
		if dr["status"] != "cancelled" || ob["status"] != "cancelled" {
			t.Errorf("status %v / %v", dr["status"], ob["status"])
		}
		if got := jsonOf(ob["dataAbsentReason"]); !strings.Contains(got, "not-performed") {
			t.Errorf("dataAbsentReason = %s", got)
		}
	})
	t.Run("multiple OBRs, repetitions as components, specimen OBX skipped", func(t *testing.T) {
		b := mapFixture(t, "multi_obr")
		if n := len(b.resources("DiagnosticReport")); n != 2 {
			t.Fatalf("reports = %d", n)
		}
		obs := b.resources("Observation")
		if len(obs) != 4 {
			t.Fatalf("observations = %d (the OBX after SPM must not be mapped)", len(obs))
		}
		if got := len(obs[3]["component"].([]any)); got != 2 {
			t.Errorf("components = %d", got)
		}
		prov := b.resources("Provenance")[0]
		if got := len(prov["target"].([]any)); got != 2 {
			t.Errorf("provenance targets = %d", got)
		}
	})
	t.Run("SPM before the result OBX keeps the results", func(t *testing.T) {
		m, err := hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20261123||ORU^R01|1|P|2.5.1\rOBR|1||SP-1|11529-5^Surgical Pathology Study Report^LN||||||||||||||||||||F\rSPM|1|^S1||TISS^Tissue^HL70487\rOBX|1|TX|22637-3^Final diagnosis^LN||Benign.||||||F\r"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := bundleChecked(t, m, testRelease(), testOptions(t))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(decode(t, out).resources("Observation")); n != 1 {
			t.Errorf("observations = %d, want 1", n)
		}
	})
	t.Run("MDM document", func(t *testing.T) {
		b := mapFixture(t, "mdm_t02")
		dr := b.resources("DiagnosticReport")[0]
		if dr["status"] != "final" {
			t.Errorf("TXA-17 AU → final, got %v", dr["status"])
		}
		if len(b.resources("Observation")) != 1 || dr["presentedForm"] == nil {
			t.Errorf("MDM: one joined Observation and a presentedForm")
		}
	})
	t.Run("ED to presentedForm, RP to the R5 value extension", func(t *testing.T) {
		b := mapFixture(t, "ed_pdf")
		dr := b.resources("DiagnosticReport")[0]
		pf := jsonOf(dr["presentedForm"])
		if !strings.Contains(pf, `"contentType":"application/pdf"`) || !strings.Contains(pf, `"data":"JVBERi0xLjQKJSBzeW50aGV0aWMgdGVzdCBkb2N1bWVudAo="`) {
			t.Errorf("presentedForm = %s", pf)
		}
		obs := b.resources("Observation")
		if len(obs) != 1 || !strings.Contains(jsonOf(obs[0]["extension"]), ExtR5ObservationValue) {
			t.Errorf("RP observation = %s", jsonOf(obs))
		}
	})
	t.Run("timestamps keep their precision", func(t *testing.T) {
		b := mapFixture(t, "misc_types")
		dr := b.resources("DiagnosticReport")[0]
		if dr["effectiveDateTime"] != "2026-11-23T14:00:00Z" {
			t.Errorf("hour precision in Options.Location: %v", dr["effectiveDateTime"])
		}
		if _, ok := dr["issued"]; ok {
			t.Errorf("date-only OBR-22 cannot be an instant: %v", dr["issued"])
		}
		obs := b.resources("Observation")
		if obs[0]["valueDateTime"] != "2026-11-01" || obs[1]["valueTime"] != "08:30:00" {
			t.Errorf("DT/TM = %v / %v", obs[0]["valueDateTime"], obs[1]["valueTime"])
		}
		if obs[4]["valueString"] != "See comment" {
			t.Errorf("non-numeric NM falls back to valueString: %v", obs[4])
		}
		if obs[7]["status"] != "preliminary" {
			t.Errorf("empty OBX-11 takes the report's (derived) status: %v", obs[7]["status"])
		}
	})
	t.Run("provenance", func(t *testing.T) {
		prov := mapFixture(t, "lab_panel_nm").resources("Provenance")[0]
		got := jsonOf(prov)
		for _, want := range []string{
			`"recorded":"2026-11-23T16:15:00Z"`,
			`"code":"clinician-release"`,
			`"code":"patient-request"`,
			`"value":"H-0001"`,
			`"value":"CTL-LAB-0001"`,
			`"value":"dr-test-1"`,
			`"code":"ordering-provider"`,
			`"valueCode":"push"`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("provenance lacks %s: %s", want, got)
			}
		}
	})
}

// TestImmediateRelease checks the Provenance of a result that was never held.
func TestImmediateRelease(t *testing.T) {
	rel := Release{Reason: ReasonImmediate, At: time.Date(2026, 11, 23, 16, 15, 0, 123000000, time.UTC)}
	out, err := bundleChecked(t, parseFile(t, "testdata/lab_panel_nm.hl7"), rel, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(out); err != nil {
		t.Fatal(err)
	}
	prov := decode(t, out).resources("Provenance")[0]
	got := jsonOf(prov)
	for _, want := range []string{`"code":"immediate"`, `"who":{"display":"resultgate"}`, `"recorded":"2026-11-23T16:15:00.123Z"`} {
		if !strings.Contains(got, want) {
			t.Errorf("provenance lacks %s: %s", want, got)
		}
	}
	for _, absent := range []string{`"reason"`, SystemHoldID, ExtNotification, ExtPatientNote} {
		if strings.Contains(got, absent) {
			t.Errorf("provenance has %s: %s", absent, got)
		}
	}
}

// TestCorrectionUpdatesSameResources checks the identity rule: a correction
// of an order (new message, new control id) maps to the same DiagnosticReport
// and Observation ids, so a PUT replaces the earlier version in the portal.
func TestCorrectionUpdatesSameResources(t *testing.T) {
	orig := mapFixture(t, "lab_panel_nm")
	corr := mapFixture(t, "corrected")
	if a, b := orig.resources("DiagnosticReport")[0]["id"], corr.resources("DiagnosticReport")[0]["id"]; a != b {
		t.Errorf("report id changed across correction: %v vs %v", a, b)
	}
	if a, b := orig.resources("Observation")[0]["id"], corr.resources("Observation")[0]["id"]; a != b {
		t.Errorf("glucose id changed across correction: %v vs %v", a, b)
	}
	if a, b := orig.resources("Provenance")[0]["id"], corr.resources("Provenance")[0]["id"]; a == b {
		t.Errorf("each release has its own Provenance")
	}
	if s := corr.resources("DiagnosticReport")[0]["status"]; s != "corrected" {
		t.Errorf("status = %v", s)
	}
}

func TestErrors(t *testing.T) {
	lab, err := os.ReadFile("testdata/lab_panel_nm.hl7")
	if err != nil {
		t.Fatal(err)
	}
	msg := func(s string) *hl7.Message {
		m, err := hl7.Parse([]byte(s))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		return m
	}
	rel := testRelease()
	opts := testOptions(t)
	cases := []struct {
		name string
		m    *hl7.Message
		rel  func(*Release)
		opts func(*Options)
		want error
	}{
		{name: "ADT", m: msg("MSH|^~\\&|A|B|C|D|20261123||ADT^A01|1|P|2.5\rPID|1||X\r"), want: ErrUnsupportedMessage},
		{name: "ORU without OBR", m: msg("MSH|^~\\&|A|B|C|D|20261123||ORU^R01|1|P|2.5\rPID|1||X\r"), want: ErrNoResults},
		{name: "MDM without OBX", m: msg("MSH|^~\\&|A|B|C|D|20261123||MDM^T02|1|P|2.5\rTXA|1|CN\r"), want: ErrNoResults},
		{name: "two patients", m: msg("MSH|^~\\&|A|B|C|D|20261123||ORU^R01|1|P|2.5\rPID|1||X\rOBR|1||F1|C^T^L\rPID|2||Y\rOBR|1||F2|C^T^L\r"), want: ErrMultiplePatients},
		{name: "OBR-25 Z", m: msg("MSH|^~\\&|A|B|C|D|20261123||ORU^R01|1|P|2.5\rOBR|1||F1|C^T^L|||||||||||||||||||||Z\r"), want: ErrResultStatus},
		{name: "PatientRef with MRN-like text", opts: func(o *Options) { o.PatientRef = "Patient/123 456" }, want: ErrInvalidOptions},
		{name: "PatientRef not a Patient", opts: func(o *Options) { o.PatientRef = "Group/1" }, want: ErrInvalidOptions},
		{name: "IDPrefix", opts: func(o *Options) { o.IDPrefix = "bad prefix/" }, want: ErrInvalidOptions},
		{name: "Patient detail unknown", opts: func(o *Options) { o.Patient = "everything" }, want: ErrInvalidOptions},
		{name: "identifier system not a URI", opts: func(o *Options) { o.IdentifierSystems = map[string]string{"GENHOSP": "gen hosp"} }, want: ErrInvalidOptions},
		{name: "identifier system relative", opts: func(o *Options) { o.IdentifierSystems = map[string]string{"GENHOSP": "mrn"} }, want: ErrInvalidOptions},
		{name: "unknown reason", rel: func(r *Release) { r.Reason = "because" }, want: ErrInvalidRelease},
		{name: "zero time", rel: func(r *Release) { r.At = time.Time{} }, want: ErrInvalidRelease},
		{name: "notify not a code", rel: func(r *Release) { r.Notify = " push" }, want: ErrInvalidRelease},
		{name: "nil message", m: nil, want: ErrNoResults},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.m
			if m == nil && c.name != "nil message" {
				m = msg(string(lab))
			}
			r, o := rel, opts
			if c.rel != nil {
				c.rel(&r)
			}
			if c.opts != nil {
				c.opts(&o)
			}
			_, err := bundleChecked(t, m, r, o)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestParseDTM(t *testing.T) {
	utc := time.UTC
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"2026", "2026", true},
		{"202611", "2026-11", true},
		{"20261123", "2026-11-23", true},
		{"2026112310", "2026-11-23T10:00:00Z", true},
		{"202611231015", "2026-11-23T10:15:00Z", true},
		{"20261123101530", "2026-11-23T10:15:30Z", true},
		{"20261123101530.1", "2026-11-23T10:15:30.100Z", true},
		{"20261123101530.1234", "2026-11-23T10:15:30.123400Z", true},
		{"20261123101530-0500", "2026-11-23T10:15:30-05:00", true},
		{"202611231015+0530", "2026-11-23T10:15:00+05:30", true},
		{"20261123+0000", "2026-11-23", true},
		{"20260231", "", false},
		{"2026112", "", false},
		{"20261123251500", "", false},
		{"20261123101530+1500", "", false},
		{"2026-11-23", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		ht, ok := parseDTM(c.in, utc)
		if ok != c.ok {
			t.Errorf("%q: ok = %v", c.in, ok)
			continue
		}
		if !ok {
			continue
		}
		got := formatForTest(ht)
		if got != c.want {
			t.Errorf("%q = %q, want %q", c.in, got, c.want)
		}
	}
}

// formatForTest renders an hl7Time the way the FHIR marshaller does.
func formatForTest(ht hl7Time) string {
	t := ht.t
	zone := ht.zone()
	if zone == "Z" {
		t = t.UTC()
	}
	switch ht.prec {
	case precYear:
		return t.Format("2006")
	case precMonth:
		return t.Format("2006-01")
	case precDay:
		return t.Format("2006-01-02")
	case precMilli:
		return t.Format("2006-01-02T15:04:05.000") + zone
	case precMicro:
		return t.Format("2006-01-02T15:04:05.000000") + zone
	}
	return t.Format("2006-01-02T15:04:05") + zone
}

func TestDecimal(t *testing.T) {
	for in, want := range map[string]string{
		"5": "5", "+5": "5", "-5": "-5", "05": "5", ".5": "0.5", "5.": "5", "5.10": "5.10",
		"000": "0", "-0.0": "-0.0", " 7 ": "7",
	} {
		if got, ok := decimal(in); !ok || got != want {
			t.Errorf("decimal(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", ".", "+", "1e5", "1,5", "abc", "1.2.3", "--1"} {
		if got, ok := decimal(in); ok {
			t.Errorf("decimal(%q) = %q, want not a number", in, got)
		}
	}
}
