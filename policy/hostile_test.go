package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/hostile"
)

// TestHostileShapes runs FromHL7 and Classify (the classify step's work on
// every message) over every adversarial shape at 1 MiB and at 16 MiB, each
// within a bound two orders of magnitude below the seconds a PID-3 of
// 40,000 repetitions (80 KB) used to take; an OBX-8 of 100,000 "~" held a
// partition's classify consumer for 85 s.
func TestHostileShapes(t *testing.T) {
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	for _, hb := range []struct {
		size  int
		bound time.Duration
	}{{1 << 20, 3 * time.Second}, {16 << 20, 30 * time.Second}} {
		if testing.Short() && hb.size > 1<<20 {
			continue
		}
		for _, s := range hostile.Shapes() {
			t.Run(fmt.Sprintf("%s/%dMiB", s.Name, hb.size>>20), func(t *testing.T) {
				m, err := hl7.Parse(s.Message(hb.size))
				if err != nil {
					t.Fatalf("%s: %v", s.Field, err)
				}
				hostile.Within(t, hb.bound, func() {
					r, err := FromHL7(m, nil)
					if err != nil {
						t.Errorf("FromHL7: %v", err)
						return
					}
					if cl := c.Classify(r, nil); len(cl.Tags) == 0 {
						t.Errorf("%s: no tag, though every shape is a surgical pathology result", s.Field)
					}
				})
			})
		}
	}
}

// BenchmarkHostile runs FromHL7 and Classify over each adversarial shape
// from 1 KiB to 16 MiB (MB/s flat across sizes: linear cost).
func BenchmarkHostile(b *testing.B) {
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		b.Fatal(err)
	}
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
					r, err := FromHL7(m, nil)
					if err != nil {
						b.Fatal(err)
					}
					_ = c.Classify(r, nil)
				}
			})
		}
	}
}
