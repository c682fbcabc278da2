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

// BenchmarkRecordInstances appends from one and from two Trails (two
// instances of serve on one trail, as pipeline instances across machines
// are) with eight writers in all: every append of one instance is
// serialised on its chain head, and two instances race for the same head —
// each lost race costs a head read before the append is linked again.
// conflicts/op is the share of appends that lost a race.
func BenchmarkRecordInstances(b *testing.B) {
	for _, instances := range []int{1, 2} {
		b.Run(fmt.Sprintf("instances=%d", instances), func(b *testing.B) {
			tj := testutil.StartJS(b, config.DurabilityOS)
			trails := make([]*Trail, instances)
			for i := range trails {
				trails[i] = NewTrail(tj.JS, zerolog.Nop())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			ev := Event{Kind: bus.AuditDecision, HoldID: "h0123456789abcdef01234567", PatientKey: "pk0123456789abcdef0123",
				MsgID: "LIS|HOSP|CTRL-000001", ControlID: "CTRL-000001", Action: "release", Actor: "resultgate", Role: "system"}
			var n atomic.Int64
			b.SetParallelism(4) // 8 writers at GOMAXPROCS 2
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if err := trails[int(i)%instances].Record(ctx, fmt.Sprintf("bench-%d", i), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			var conflicts uint64
			for _, tr := range trails {
				conflicts += tr.Conflicts()
			}
			b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/op")
		})
	}
}
