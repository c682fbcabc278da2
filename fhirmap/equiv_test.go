package fhirmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/fhir/go/jsonformat/fhirvalidate"

	"github.com/resultgate/resultgate/hl7"

	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcr "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	obspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// referenceBundle is the reflective path Bundle took before its own encoder:
// the same mapping, google/fhir/go's fhirvalidate on the proto, then its
// jsonformat marshaller. The encoder's output is held to it byte for byte.
func referenceBundle(m *hl7.Message, rel Release, opts Options) ([]byte, error) {
	bundle, err := buildBundle(m, rel, opts)
	if err != nil {
		return nil, err
	}
	cr := &bcr.ContainedResource{OneofResource: &bcr.ContainedResource_Bundle{Bundle: bundle}}
	if err := fhirvalidate.Validate(cr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	return marshalReference(bundle)
}

// marshalReference marshals bundle with google/fhir/go's jsonformat
// marshaller, the reference the encoder is held to in the tests.
func marshalReference(bundle *bcr.Bundle) ([]byte, error) {
	mar, _, err := codecs()
	if err != nil {
		return nil, err
	}
	cr := &bcr.ContainedResource{OneofResource: &bcr.ContainedResource_Bundle{Bundle: bundle}}
	out, err := mar.Marshal(cr)
	if err != nil {
		return nil, fmt.Errorf("%w: marshalling: %v", ErrInvalidBundle, err)
	}
	return out, nil
}

// bundleChecked is Bundle as every test calls it: besides returning Bundle's
// result it checks that the reference path (referenceBundle) succeeds or
// fails alike, that both give the same bytes, and that the output parses and
// validates with google/fhir/go's validating unmarshaller.
func bundleChecked(t testing.TB, m *hl7.Message, rel Release, opts Options) ([]byte, error) {
	t.Helper()
	out, err := Bundle(m, rel, opts)
	ref, refErr := referenceBundle(m, rel, opts)
	switch {
	case err != nil && refErr != nil:
		return nil, err
	case err != nil:
		t.Errorf("Bundle failed (%v) where jsonformat succeeded", err)
		return nil, err
	case refErr != nil:
		t.Errorf("jsonformat path failed (%v) where Bundle succeeded", refErr)
		return out, nil
	}
	if !bytes.Equal(out, ref) {
		t.Errorf("encoder output differs from jsonformat's: %s", firstDiff(out, ref))
	}
	if verr := Validate(out); verr != nil {
		t.Errorf("output does not validate with google/fhir/go: %v", verr)
	}
	return out, nil
}

// firstDiff shows where got and want part, with some context.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-80)
	return fmt.Sprintf("at byte %d:\n got: …%s\nwant: …%s", i, got[from:min(len(got), i+80)], want[from:min(len(want), i+80)])
}

// TestEncoderStrings holds the string escaping to encoding/json's (what
// jsonformat uses): control characters, quotes, backslashes, HTML
// characters left as they are, invalid UTF-8, U+2028/2029 and non-ASCII.
func TestEncoderStrings(t *testing.T) {
	var all strings.Builder
	for b := 0; b < 0x80; b++ {
		all.WriteByte(byte(b))
	}
	for _, s := range []string{
		"", "plain", all.String(), "<b>&amp;</b>", "a\u2028b\u2029c", "\xff\xfe bad \xc3", "é, 中文, 🙂",
		"\\\"quoted\\\"", "tab\tnl\nlf\rff\fbs\b", "\x00\x1f\x7f",
	} {
		var e encoder
		got := e.str(nil, s)
		want, err := jsonStringReference(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

// TestEncoderMatchesJSONFormat maps messages that exercise the edges of
// each value type and element (beyond the golden fixtures, which the golden
// test checks the same way) and holds the encoder to jsonformat's bytes.
func TestEncoderMatchesJSONFormat(t *testing.T) {
	const msh = "MSH|^~\\&|LAB|FAC|PORTAL|FAC|20261123083000||ORU^R01|C-1|P|2.5.1\rPID|1||X\r"
	cases := map[string]string{
		"every value type": msh + "OBR|1|PL-1^EHR^1.2.3^ISO|FL-1^LIS^urn:uuid:AB^UUID|24323-8^Panel^LN^P1^Local^L|||20261123083000.1234-0500|20261123093000.12||||||||||||||20261123101530.123+0100||CH|F\r" +
			"OBX|1|NM|1^A^LN||-.5|mg/dL^^UCUM|<5|HH~N|||F|||202611231015\r" +
			"OBX|2|SN|2^B^LN||>=^7|u|>=10|||F\r" +
			"OBX|3|SN|3^C^LN||^1^:^8||||F\r" +
			"OBX|4|SN|4^D^LN||^1^-^8|%^percent^UCUM|||F\r" +
			"OBX|5|CWE|5^E^LN||POS^Positive^HL70078^P^Pos^L^^^Original text|||||F\r" +
			"OBX|6|DT|6^F^LN||2026||||||F\r" +
			"OBX|7|TS|7^G^LN||202611231015.1||||||F\r" +
			"OBX|8|TM|8^H^LN||1015.123||||||F\r" +
			"OBX|9|DR|9^I^LN||20261101^20261130||||||F\r" +
			"OBX|10|NR|10^J^LN||1^2|mmol/L^^UCUM|||||F\r" +
			"OBX|11|RP|11^K^LN||https://example.org/img/1^^IM^JPEG||||||F\r" +
			"OBX|12|ED|12^L^LN||^TX^PLAIN^A^hello||||||F\r" +
			"OBX|13|ED|13^M^LN||^AP^PDF^HEX^zz||||||F\r" +
			"OBX|14|IS|14^N^LN||Q||||||F\r" +
			"OBX|15|NM|15^O^LN||1~2~x|u|||||F\r" +
			"OBX|16|EI|16^P^LN||E1^NS||||||F||||||1001^Smith^John^^^Dr|MTH^Method^L|||BS^Site^L|OID-1^NS^2.16.840^ISO|||Lab Org^^ORG-1\r" +
			"NTE|1||quote \" backslash \\E\\ tab\tand <html> & \u2028 sep\r" +
			"OBX|17|XX|17^Q^LN||a^b^c||||||X\r" +
			"OBX|18|ST|18^R^LN||||||||N\r",
		"narrative with headers and conclusion": msh + "OBR|1||F1|11529-5^Path^LN||||||||||||||||||||SP|F\r" +
			"OBX|1|TX|22637-3^Final diagnosis^LN||Line one~Line two||||||F\r" +
			"OBX|2|TX|22637-3^Final diagnosis^LN||Line three||||||F\r" +
			"OBX|3|FT|22634-0^Gross^LN||a\\.br\\b\\X0D\\c||||||F\r" +
			"OBX|4|ST|&IMP^Impression||Impressive.||||||C\r" +
			"NTE|1||note\r",
		"corrected, no OBR-25, empty status": msh + "OBR|1||F2|X^Y^L\rOBX|1|NM|A^B^L||1||||||C\rOBX|2|NM|A^B^L||2||||||\r",
		"two orders, same key":               msh + "OBR|1||F3|X^Y^L|||2026\rOBX|1|NM|A^B^L||1||||||F\rOBR|2||F3|X^Y^L|||202611\rOBX|1|NM|A^B^L||1||||||P\r",
		"MDM":                                "MSH|^~\\&|A|B|C|D|2026||MDM^T02|1|P|2.5\rTXA|1|CN^Note^HL70270|TX|20261123||20261123101500|||1001^Doe^Jane||||DOC-1^NS||P-1|F-1||AU\rOBX|1|TX|^^^&IMP||text \\F\\ more||||||\r",
		"Patient with every identifier and name element": "MSH|^~\\&|LAB|FAC|PORTAL|FAC|20261123083000||ORU^R01|C-1|P|2.5.1\r" +
			"PID|1||A1^^^NS^MR~A2^^^NS2&1.2.3&ISO^PI~A3^^^&urn:x:y&URI^ZZ~A4~\"\"||F\\S\\m&Own^Giv \"en\"^Mid^Sfx^Pfx^Deg^M~^Only^^^^^D~Alias^^^^^^A||200002|U\r" +
			"OBR|1||F1|X^Y^L\rOBX|1|NM|A^B^L||1||||||F\r",
		"MDM no TXA": "MSH|^~\\&|A|B|C|D|2026||MDM^T02|1|P|2.5\rOBX|1|FT|||x||||||\r",
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := hl7.Parse([]byte(msg))
			if err != nil {
				t.Fatal(err)
			}
			for _, rel := range []Release{testRelease(), {Reason: ReasonImmediate, At: testRelease().At.Add(123456789)}, {Reason: ReasonOnCallOverride, Actor: "resultgate", ActorRole: "On Call", At: testRelease().At.Add(1000), Bases: []string{"", "state-law", " data error "}}} {
				if _, err := bundleChecked(t, m, rel, testOptions(t)); err != nil {
					t.Fatalf("Bundle: %v", err)
				}
			}
		})
	}
}

// jsonStringReference encodes s the way jsonformat's renderer does.
func jsonStringReference(s string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// TestValidateOption checks Options.Validate: the same bytes as without it
// for every fixture, and the check it runs refuses a Bundle that google/fhir/go
// finds invalid.
func TestValidateOption(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.hl7")
	for _, f := range files {
		m := parseFile(t, f)
		opts := testOptions(t)
		plain, err := Bundle(m, testRelease(), opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.Validate = true
		validated, err := Bundle(m, testRelease(), opts)
		if err != nil {
			t.Fatalf("%s: with Validate: %v", f, err)
		}
		if !bytes.Equal(plain, validated) {
			t.Errorf("%s: Validate changed the output", f)
		}
	}
	out, err := Bundle(parseFile(t, "testdata/lab_panel_nm.hl7"), testRelease(), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(out, []byte(`"status":"final"`), []byte(`"status":"finished"`), 1)
	if bytes.Equal(bad, out) {
		t.Fatal("fixture has no final status to corrupt")
	}
	if err := Validate(bad); !errors.Is(err, ErrInvalidBundle) {
		t.Errorf("Validate(unknown status) = %v, want ErrInvalidBundle", err)
	}
}

// TestEncoderRefusesUnknownElements checks the encoder's safety net: an
// element the mapping does not build (here an Observation effectivePeriod)
// fails the encoding with ErrInvalidBundle instead of being dropped.
func TestEncoderRefusesUnknownElements(t *testing.T) {
	bundle, err := buildBundle(parseFile(t, "testdata/lab_panel_nm.hl7"), testRelease(), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := encodeBundle(bundle); err != nil {
		t.Fatalf("unchanged Bundle: %v", err)
	}
	ob := bundle.GetEntry()[2].GetResource().GetObservation() // after the Patient and the DiagnosticReport
	if ob == nil {
		t.Fatal("entry 2 is not an Observation")
	}
	ob.Effective = &obspb.Observation_EffectiveX{Choice: &obspb.Observation_EffectiveX_Period{Period: &d4.Period{}}}
	if _, err := encodeBundle(bundle); !errors.Is(err, ErrInvalidBundle) {
		t.Errorf("encodeBundle with an effectivePeriod = %v, want ErrInvalidBundle", err)
	}
}
