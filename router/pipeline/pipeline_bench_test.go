package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// BenchmarkClassify measures the classify step end to end (inbound stored →
// feed published or hold written) with the test policy, 16 partitions, one
// instance, durability os, 20 % of the results held. It reports msgs/s.
func BenchmarkClassify(b *testing.B) {
	e := newPipeEnv(b, func(c *Config) { c.Partitions = 16 })
	s := e.start().Service()
	const patients = 500
	for i := 0; i < patients; i += 5 {
		e.consent(s, fmt.Sprintf("MRN%d", i), "active", true, false)
	}
	raws := make([][]byte, patients)
	subjects := make([]string, patients)
	for i := range patients {
		pid := fmt.Sprintf("MRN%d", i)
		raws[i] = msgSpec{ctrl: "B", pid: pid, filler: "F", section: "SP"}.build()
		subjects[i] = bus.InSubject(hold.Partition(hold.PatientKey(pipeSecret, hold.PatientIdentity(pid, "HOSP")), 16))
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for n := range b.N {
		i := n % patients
		m := &nats.Msg{Subject: subjects[i], Data: raws[i]}
		if _, err := e.js.JS.PublishMsgAsync(m, jetstream.WithMsgID(fmt.Sprintf("bench-%d", n))); err != nil {
			b.Fatal(err)
		}
		if n%1000 == 999 {
			<-e.js.JS.PublishAsyncComplete()
		}
	}
	<-e.js.JS.PublishAsyncComplete()
	done := func() bool {
		snap := s.Metrics()
		return snap.Processed["acked"] >= uint64(b.N)
	}
	testutil.Eventually(b, 5*time.Minute, "all classified", done)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
