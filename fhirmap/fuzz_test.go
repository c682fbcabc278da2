package fhirmap

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/hostile"
)

// FuzzBundle feeds arbitrary bytes through hl7.Parse and Bundle. Bundle must
// never panic, and must either produce a Bundle (which it has validated) or
// refuse the input with a named input error: a fuzz input that makes the
// mapping emit invalid FHIR (ErrInvalidBundle) is a mapping bug.
func FuzzBundle(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.hl7")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"MSH|^~\\&|A|B|C|D|2026||ORU^R01|1|P|2.5\rOBR|1||F|X^Y^L\rOBX|1|SN|C^T^L||<^1^:^2|u^u^UCUM|1-2|H~L|||F|||20261301\r",
		"MSH|^~\\&|A|B|C|D|2026||ORU^R01|1|P|2.5\rOBR|1||F|X^Y^L|||2026022914+1400||||||||||||||2026\rOBX|1|NM|C^^LN||-.5e3|\\F\\^u|>=7|AA|||W\rNTE|1||\x01\x02\r",
		"MSH|^~\\&|A|B|C|D|2026||MDM^T02|1|P|2.5\rTXA|1|CN^^HL70270|TX|||||||||\"\"||||XX\rOBX|1|FT|^^^&IMP||line\\.br\\next\\X0D\\||||||\r",
		"MSH|^~\\&|A|B|C|D|2026||ORU^R01|1|P|2.5\rOBR|1||F|X\rOBX|1|ED|P^^L||^AP^PDF^Base64^!!!!||||||F\rOBX|2|DR|P||2026^2025~1999|\rOBX|3|TM|T||2460\r",
	} {
		f.Add([]byte(s))
	}
	for _, s := range hostile.Shapes() {
		f.Add(s.Message(4 << 10))
	}
	rel := testRelease()
	opts := testOptions(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := hl7.Parse(data)
		if err != nil {
			return
		}
		out, err := bundleChecked(t, m, rel, opts)
		if err != nil {
			if errors.Is(err, ErrInvalidBundle) || !isNamed(err) {
				t.Fatalf("Bundle: %v", err)
			}
			return
		}
		if err := Validate(out); err != nil {
			t.Fatalf("output does not re-parse: %v", err)
		}
	})
}

// fuzzValueTypes are the OBX-2 value types FuzzEncoderMatchesJSONFormat
// draws from: every type the mapping treats apart, and one it does not know.
var fuzzValueTypes = []string{"NM", "SN", "ST", "TX", "FT", "CE", "CWE", "CNE", "IS", "ID", "DT", "DTM", "TS", "TM", "DR", "NR", "RP", "ED", "EI", "XX", ""}

// fuzzSections are OBR-24 values: laboratory, imaging, pathology, unknown.
var fuzzSections = []string{"", "CH", "HM", "RAD", "SP", "CP", "EC", "ZZ"}

// FuzzEncoderMatchesJSONFormat generates ORU^R01 messages from fuzzed field
// values (a PID, an OBR, then OBX of fuzzed value types with values, units,
// reference ranges, flags, statuses, times and NTEs) and holds Bundle's
// encoder to google/fhir/go's jsonformat output byte for byte, and every
// Bundle to google/fhir/go's validating unmarshaller (bundleChecked). Where
// FuzzBundle starts from raw bytes, this target reaches the value mappings
// of every OBX-2 type with structured input.
func FuzzEncoderMatchesJSONFormat(f *testing.F) {
	f.Add(uint8(0), uint8(1), "PL-1^EHR", "24323-8^Panel^LN", "20261123083000-0500", "F", "5.10", "mg/dL^^UCUM", "3.5-5.1", "H", "note")
	f.Add(uint8(1), uint8(2), "", "X^Y^L", "2026", "C", "<^0.5", "u", ">10", "HH~LL", "")
	f.Add(uint8(4), uint8(4), "P1^NS^1.2.3^ISO", "&IMP", "202611231015.12", "P", "line\\.br\\next~second", "", "", "", "\x01 bad \xff")
	f.Add(uint8(6), uint8(0), "", "", "", "", "POS^Positive^HL70078^P^Pos^L^^^Text", "", "<=7", "POS", "\u2028")
	f.Add(uint8(15), uint8(3), "F^NS^urn:uuid:AB^UUID", "11529-5^Path^LN", "20261123101530.1234+1400", "X", "^1^-^8", "%^percent^UCUM", "1 to 2", "N", "a\"b\\c")
	f.Add(uint8(16), uint8(5), "", "", "", "", "https://example.org/x^^IM^PNG", "", "", "", "")
	f.Add(uint8(17), uint8(6), "", "", "", "", "^AP^PDF^Base64^JVBERi0=", "", "", "", "")
	rel := testRelease()
	opts := testOptions(f)
	f.Fuzz(func(t *testing.T, vt, sec uint8, ids, svc, ts, status, value, units, rng, flags, note string) {
		typ := fuzzValueTypes[int(vt)%len(fuzzValueTypes)]
		other := fuzzValueTypes[(int(vt)/len(fuzzValueTypes)+int(sec))%len(fuzzValueTypes)]
		// The PID draws on the same values: identifiers with assigning
		// authorities, names, a birth date and a sex for the Patient.
		msg := "MSH|^~\\&|LAB|FAC|PORTAL|FAC|20261123083000||ORU^R01|C-1|P|2.5.1\r" +
			"PID|1||" + ids + "~" + value + "||" + svc + "~" + value + "||" + ts + "|" + status + "\r" +
			"OBR|1|" + ids + "|" + ids + "|" + svc + "|||" + ts + "|" + ts + "||||||||||||||" + ts + "||" + fuzzSections[int(sec)%len(fuzzSections)] + "|" + status + "\r" +
			"NTE|1||" + note + "\r" +
			"OBX|1|" + typ + "|" + svc + "||" + value + "|" + units + "|" + rng + "|" + flags + "|||" + status + "|||" + ts + "||" + ids + "|" + svc + "|||" + svc + "|" + ids + "|||" + ids + "\r" +
			"NTE|1||" + note + "\r" +
			"OBX|2|" + typ + "|" + svc + "||" + value + "~" + value + "|" + units + "|" + rng + "||||" + status + "\r" +
			"OBX|3|" + other + "|" + svc + "||" + value + "|" + units + "|" + rng + "|" + flags + "|||" + status + "\r"
		m, err := hl7.Parse([]byte(msg))
		if err != nil {
			return
		}
		if _, err := bundleChecked(t, m, rel, opts); err != nil && !isNamed(err) {
			t.Fatalf("Bundle: %v", err)
		}
	})
}
