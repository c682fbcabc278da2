package audit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// BenchmarkRecord measures one audit append (a transition event of ~400
// bytes) on a real embedded server: serial (one writer) and parallel (8
// goroutines, as the classify consumers, the API and the scheduler append
// at once), with fsync and os durability.
func BenchmarkRecord(b *testing.B) {
	for _, d := range []config.Durability{config.DurabilityFsync, config.DurabilityOS} {
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/writers=%d", d, par), func(b *testing.B) {
				tj := testutil.StartJS(b, d)
				tr := NewTrail(tj.JS, zerolog.Nop())
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				ev := Event{
					Kind: bus.AuditTransition, HoldID: "h0123456789abcdef01234567", PatientKey: "pk0123456789abcdef0123",
					OrderKey: "ok0123456789abcdef0123", MsgID: "LIS|HOSP|CTRL-000001", ControlID: "CTRL-000001", InboundSeq: 4711,
					From: hold.StateHeld, To: hold.StateReleased, Path: hold.PathAcknowledged, Actor: "D001", Role: "clinician",
					Reason: "reviewed with the patient", RulesetVersion: "2026.12.0", Deadline: time.Date(2026, 12, 10, 9, 0, 0, 0, time.UTC),
				}
				var n atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(par / 2) // GOMAXPROCS 2
				b.ResetTimer()
				if par == 1 {
					for i := 0; b.Loop(); i++ {
						if err := tr.Record(ctx, fmt.Sprintf("bench-%d", i), ev); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := tr.Record(ctx, fmt.Sprintf("bench-%d", n.Add(1)), ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
