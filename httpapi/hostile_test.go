package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/hostile"
)

// TestResultViewHostile builds and encodes the clinician's result view (GET
// /api/holds/{id}/result) of every adversarial shape at 1 MiB and 16 MiB,
// each within a CPU-time bound two orders of magnitude below the 2 s an
// 80 KB PID-3 of repetitions once cost; OBX-5 repetitions used to be read
// with a Rep(i) loop, quadratic in their number.
func TestResultViewHostile(t *testing.T) {
	for _, hb := range []struct {
		size  int
		bound time.Duration
	}{{1 << 20, 3 * time.Second}, {16 << 20, 30 * time.Second}} {
		if testing.Short() && hb.size > 1<<20 {
			continue
		}
		for _, s := range hostile.Shapes() {
			t.Run(fmt.Sprintf("%s/%dMiB", s.Name, hb.size>>10>>10), func(t *testing.T) {
				m, err := hl7.Parse(s.Message(hb.size))
				if err != nil {
					t.Fatalf("%s: %v", s.Field, err)
				}
				hostile.Within(t, hb.bound, func() {
					d := resultView(m)
					if len(d.Orders) == 0 {
						t.Errorf("%s: no order in the view", s.Field)
					}
					if err := json.NewEncoder(io.Discard).Encode(d); err != nil {
						t.Errorf("encoding: %v", err)
					}
				})
			})
		}
	}
}
