package fhirmap

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/hostile"
)

// fanOut names the shapes whose every few bytes become a FHIR element (an
// Observation, a component, an interpretation): their cost is linear, but
// the google/fhir JSON encoding and validation of hundreds of thousands of
// elements is too heavy for a 16 MiB run in every test.
var fanOut = map[string]bool{
	"OBX-segments": true, "OBR-segments": true, "NTE-segments": true,
	"OBX5-coded-reps": true, "OBX5-numeric-reps": true, "OBX8-flags": true,
}

// tooLongForFHIR reports whether err is the validation's refusal of a value
// longer than FHIR allows a string (1 MB): a 16 MiB OBX-5 or MSH-10 cannot
// be mapped, and the pipeline dead-letters it with that reason.
func tooLongForFHIR(err error) bool {
	return errors.Is(err, ErrInvalidBundle) && strings.Contains(err.Error(), "exceeds maximum size")
}

// TestHostileShapes maps every adversarial shape to a Bundle at 1 MiB and
// at 16 MiB (but fanOut), each within a CPU-time bound two orders of
// magnitude below what an 80 KB PID-3 of repetitions cost before (2 s in the
// intake alone; days at 16 MiB). The fanOut shapes cost about 9 µs of CPU a
// byte (linear: BenchmarkHostile) and get 30 s at 1 MiB. Bundle
// either maps the message or refuses it with a named input error; it never
// emits invalid FHIR.
func TestHostileShapes(t *testing.T) {
	rel, opts := testRelease(), testOptions(t)
	for _, hb := range []struct {
		size  int
		bound time.Duration
	}{{1 << 20, 10 * time.Second}, {16 << 20, 60 * time.Second}} {
		if testing.Short() && hb.size > 1<<20 {
			continue
		}
		for _, s := range hostile.Shapes() {
			t.Run(fmt.Sprintf("%s/%dMiB", s.Name, hb.size>>20), func(t *testing.T) {
				if hb.size > 1<<20 && fanOut[s.Name] {
					t.Skip("one FHIR element per few input bytes: the JSON encoding costs about 1 µs of CPU and 250 bytes of memory per input byte here (4 GB at 16 MiB); BenchmarkHostile shows it linear up to 1 MiB")
				}
				m, err := hl7.Parse(s.Message(hb.size))
				if err != nil {
					t.Fatalf("%s: %v", s.Field, err)
				}
				bound := hb.bound
				if fanOut[s.Name] {
					bound = 30 * time.Second
				}
				hostile.Within(t, bound, func() {
					out, err := Bundle(m, rel, opts)
					if err != nil && !isNamed(err) && !tooLongForFHIR(err) {
						t.Errorf("%s: %v", s.Field, err)
					}
					t.Logf("%d bytes of Bundle, error %v", len(out), err)
				})
			})
		}
	}
}

// BenchmarkHostile maps each adversarial shape from 1 KiB to 16 MiB (MB/s
// flat across sizes: linear cost).
func BenchmarkHostile(b *testing.B) {
	rel, opts := testRelease(), testOptions(b)
	for _, s := range hostile.Shapes() {
		for _, size := range hostile.BenchSizes {
			b.Run(fmt.Sprintf("%s/%dKiB", s.Name, size>>10), func(b *testing.B) {
				m, err := hl7.Parse(s.Message(size))
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(m.Raw())))
				defer hostile.ReportCPU(b)()
				for b.Loop() {
					if _, err := Bundle(m, rel, opts); err != nil && !isNamed(err) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
