package hl7

import (
	"fmt"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/hostile"
)

// Hostile-input bounds. Before the repetitions were read in one pass, a PID-3
// of 40,000 repetitions (80 KB) took 2 s in PrimaryIdentifierField alone and
// a 16 MiB one would have taken days; these bounds are two orders of
// magnitude below the 80 KB figure, in CPU time (hostile.Within), and leave
// a noisy, shared 2-core machine a wide margin (the measured cost is in
// BenchmarkHostile).
var hostileBounds = []struct {
	size  int
	bound time.Duration
}{
	{1 << 20, 2 * time.Second},
	{16 << 20, 20 * time.Second},
}

// readEverything reads m the ways the intake, the classifier and the mapper
// do: header, typed views of every group (OBX-5 and NTE-3 text with every
// repetition), the primary identifier and the ACK; with explain, also the annotated tree that
// `resultgate explain` prints (an allocation per node, so only for the
// smaller sizes: the CLI reads a file, not the network).
func readEverything(t *testing.T, m *Message, explain bool) {
	_ = m.MSH()
	_, _ = m.CheckHeaderBounds()
	if p := m.First("PID"); p != nil {
		_, _ = PrimaryIdentifierField(p)
	}
	o := m.Group()
	for _, pg := range o.Patients {
		_ = pg.Patient()
		_ = pg.Visit()
		for _, og := range pg.Orders {
			_ = og.Request()
			_ = og.Common()
			_ = og.Notes()
			for _, ob := range og.Observations {
				r := ob.Result()
				_ = r.Text()
				_ = r.Coded()
				_ = ob.Notes()
			}
		}
	}
	for _, s := range m.Segments() {
		if s.Name() == "DG1" {
			_ = ReadDG1(s)
		}
	}
	ack, err := Parse(BuildACK(m, AR))
	if err != nil {
		t.Errorf("ACK does not parse: %v", err)
	} else if len(ack.Raw()) > 4096 {
		t.Errorf("ACK is %d bytes", len(ack.Raw()))
	}
	if explain {
		_ = Describe(m)
	}
}

// TestHostileShapes parses and reads every adversarial shape at 1 MiB and at
// 16 MiB (the largest MLLP frame), each within its bound.
func TestHostileShapes(t *testing.T) {
	for _, hb := range hostileBounds {
		if testing.Short() && hb.size > 1<<20 {
			continue
		}
		for _, s := range hostile.Shapes() {
			t.Run(fmt.Sprintf("%s/%dMiB", s.Name, hb.size>>20), func(t *testing.T) {
				data := s.Message(hb.size)
				hostile.Within(t, hb.bound, func() {
					m, err := Parse(data)
					if err != nil {
						t.Errorf("%s: %v", s.Field, err)
						return
					}
					readEverything(t, m, hb.size <= 1<<20)
				})
			})
		}
	}
}

// BenchmarkHostile parses and reads each adversarial shape from 1 KiB to
// 16 MiB; with b.SetBytes, MB/s flat across sizes shows cost linear in the
// message's size.
func BenchmarkHostile(b *testing.B) {
	for _, s := range hostile.Shapes() {
		for _, size := range hostile.BenchSizes {
			b.Run(fmt.Sprintf("%s/%dKiB", s.Name, size>>10), func(b *testing.B) {
				data := s.Message(size)
				b.SetBytes(int64(len(data)))
				defer hostile.ReportCPU(b)()
				t := &testing.T{}
				for b.Loop() {
					m, err := Parse(data)
					if err != nil {
						b.Fatal(err)
					}
					readEverything(t, m, false)
				}
			})
		}
	}
}
