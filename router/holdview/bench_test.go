package holdview

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/bus"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
)

// BenchmarkHoldView100k stores 100,000 open holds (500 providers), then
// measures what a restart costs: loading the view from the bucket, listing one
// provider's holds (p99), and a scheduler tick with nothing due. Run with
// -bench HoldView100k -benchtime 1x.
func BenchmarkHoldView100k(b *testing.B) {
	const holds, providers = 100000, 500
	tj := testutil.StartJS(b, config.DurabilityOS)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kv, err := tj.JS.KeyValue(ctx, bus.KVHolds)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range holds {
		h := &hold.Hold{
			ID: fmt.Sprintf("h%023d", i), State: hold.StateHeld, Inbound: hold.InboundRef{Stream: bus.StreamHL7In, Seq: uint64(i + 1), MsgID: fmt.Sprintf("LIS|HOSP|%d", i), Partition: "p01"},
			PatientKey: fmt.Sprintf("%032x", i), ProviderID: fmt.Sprintf("DR%04d", i%providers), ProviderKey: "cprov",
			Tags:     []policy.Tag{{Tag: policy.TagPathology, Evidence: []policy.Evidence{{Segment: "OBR", Field: "OBR-24", Rule: "svc.sp", Match: "SP"}}}},
			Bases:    []hold.Basis{{Kind: string(policy.BasisPatientRequest), Detail: json.RawMessage(`{"kind":"patient-request","until":"clinician-review","deadline":"2030-01-01T00:00:00Z","review_ends":true}`)}},
			Deadline: now.Add(time.Duration(i%1000+1) * time.Hour), CreatedAt: now,
			Transitions: []hold.Transition{{To: hold.StateHeld, Actor: "resultgate", Role: hold.RoleSystem, At: now}},
		}
		data, _ := json.Marshal(h)
		if _, err := tj.JS.PublishMsgAsync(&nats.Msg{Subject: "$KV." + bus.KVHolds + "." + h.ID, Data: data}); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			<-tj.JS.PublishAsyncComplete()
		}
	}
	<-tj.JS.PublishAsyncComplete()
	b.ResetTimer()
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		v := New(zerolog.Nop())
		vctx, vcancel := context.WithCancel(ctx)
		go func() { _ = v.Run(vctx, kv) }()
		<-v.Ready()
		load := time.Since(start)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		var lat []time.Duration
		for p := range 1000 {
			t0 := time.Now()
			l := v.List(Filter{Provider: fmt.Sprintf("DR%04d", p%providers), State: hold.StateHeld})
			lat = append(lat, time.Since(t0))
			if len(l) != holds/providers {
				b.Fatalf("listed %d holds, want %d", len(l), holds/providers)
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		t0 := time.Now()
		due := v.Due(now)
		tick := time.Since(t0)
		vcancel()
		if len(due) != 0 {
			b.Fatalf("%d due", len(due))
		}
		b.ReportMetric(load.Seconds(), "load-s")
		b.ReportMetric(float64(lat[989].Microseconds()), "list-p99-us")
		b.ReportMetric(float64(tick.Microseconds()), "tick-us")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "view-MiB")
	}
}
