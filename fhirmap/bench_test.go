package fhirmap

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/resultgate/resultgate/hl7"

	bcr "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// benchMessage returns the synthetic lab panel (testdata/lab_panel_nm.hl7)
// grown with more NM OBX (units, range, flag) to at least 2 KB.
func benchMessage(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/lab_panel_nm.hl7")
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.TrimRight(data, "\r")
	for i := 6; len(data) < 2048; i++ {
		data = append(data, fmt.Sprintf("\rOBX|%d|NM|9%04d-%d^Synthetic analyte %d [Moles/volume] in Serum or Plasma^LN||%d.%d|mmol/L^millimole per liter^UCUM|3.5-5.1|N|||F|||20261123083000-0500", i, i, i%10, i, i%7+1, i%10)...)
	}
	return append(data, '\r')
}

// BenchmarkBundle maps a 2 KB ORU^R01 (one OBR, NM OBX with UCUM units,
// ranges, flags and NTEs) to its Bundle as the pipeline does: the mapping and
// the encoder, without runtime validation (Options.Validate off, the
// default). Besides wall time it reports process CPU time per op
// (cpu-ns/op), which is steadier on a shared machine.
func BenchmarkBundle(b *testing.B) {
	benchBundle(b, Bundle, Options{})
}

// BenchmarkBundleValidate is BenchmarkBundle with the opt-in full runtime
// validation (Options.Validate, config fhir.validate): each Bundle is parsed
// back with google/fhir/go's validating unmarshaller.
func BenchmarkBundleValidate(b *testing.B) {
	benchBundle(b, Bundle, Options{Validate: true})
}

// BenchmarkBundleJSONFormat is the reflective path Bundle took before its own
// encoder (the same mapping, fhirvalidate on the proto, jsonformat's
// marshaller): the baseline the encoder is measured against in the same run.
func BenchmarkBundleJSONFormat(b *testing.B) {
	benchBundle(b, referenceBundle, Options{})
}

func benchBundle(b *testing.B, bundle func(*hl7.Message, Release, Options) ([]byte, error), extra Options) {
	data := benchMessage(b)
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	rel, opts := testRelease(), testOptions(b)
	opts.Validate = extra.Validate
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		if _, err := bundle(m, rel, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkBundleMapping is the mapping alone (HL7 to the R4 protos) as
// Bundle runs it, with a pooled builder: the part of BenchmarkBundle before
// the encoder.
func BenchmarkBundleMapping(b *testing.B) {
	m, err := hl7.Parse(benchMessage(b))
	if err != nil {
		b.Fatal(err)
	}
	rel, opts := testRelease(), testOptions(b)
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		bu := builderPool.Get().(*builder)
		if _, err := bu.run(m, rel, opts); err != nil {
			b.Fatal(err)
		}
		bu.release()
	}
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// BenchmarkBundleMappingNewBuilder is the mapping with a new builder each
// time (buildBundle, the tests' reference path): what Bundle costs when the
// pool has no builder to give, e.g. after two garbage collections with no
// Bundle.
func BenchmarkBundleMappingNewBuilder(b *testing.B) {
	m, err := hl7.Parse(benchMessage(b))
	if err != nil {
		b.Fatal(err)
	}
	rel, opts := testRelease(), testOptions(b)
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		if _, err := buildBundle(m, rel, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// BenchmarkBundleEncode is the encoder alone on the benchmark's Bundle
// proto, against BenchmarkBundleMarshal, jsonformat's marshaller on the same
// proto.
func BenchmarkBundleEncode(b *testing.B) {
	benchEncode(b, encodeBundle)
}

// BenchmarkBundleMarshal is google/fhir/go's jsonformat marshaller on the
// benchmark's Bundle proto.
func BenchmarkBundleMarshal(b *testing.B) {
	benchEncode(b, marshalReference)
}

func benchEncode(b *testing.B, encode func(*bcr.Bundle) ([]byte, error)) {
	m, err := hl7.Parse(benchMessage(b))
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := buildBundle(m, testRelease(), testOptions(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		out, err := encode(bundle)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}
