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
		out, err := Bundle(m, rel, opts)
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
