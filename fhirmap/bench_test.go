package fhirmap

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/resultgate/resultgate/hl7"
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
// ranges, flags and NTEs), including the marshal and the validating
// unmarshal with google/fhir/go that Bundle always does. Besides wall time it
// reports process CPU time per op (cpu-ns/op), which is steadier on a shared
// machine.
func BenchmarkBundle(b *testing.B) {
	data := benchMessage(b)
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	rel, opts := testRelease(), testOptions(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		if _, err := Bundle(m, rel, opts); err != nil {
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
