package fhirmap

import (
	"os"
	"testing"

	"github.com/resultgate/resultgate/hl7"
)

// BenchmarkBundle maps the synthetic lab panel (about 2 KB of ORU^R01: one
// OBR, five NM OBX with units, ranges and notes), marshalling and validating
// the Bundle with google/fhir/go as Bundle always does.
func BenchmarkBundle(b *testing.B) {
	data, err := os.ReadFile("testdata/lab_panel_nm.hl7")
	if err != nil {
		b.Fatal(err)
	}
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	rel, opts := testRelease(), testOptions(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Bundle(m, rel, opts); err != nil {
			b.Fatal(err)
		}
	}
}
