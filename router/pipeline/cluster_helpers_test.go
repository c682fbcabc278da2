package pipeline

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// feedMsg is one HL7 portal feed message as the cluster tests check it.
type feedMsg struct {
	holdID, path string
	inboundSeq   uint64
}

// readFeed reads the HL7 portal feed, retrying while the PORTAL stream elects
// a leader, and returns its messages by hold ID.
func readFeed(t *testing.T, js jetstream.JetStream) map[string][]feedMsg {
	t.Helper()
	var out map[string][]feedMsg
	testutil.Eventually(t, 30*time.Second, "PORTAL readable", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		msgs, err := bus.ReadAll(ctx, js, bus.StreamPortal, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectPortalHL7Prefix + ">"}}, 100000,
			func(m jetstream.Msg, _ uint64) (feedMsg, error) {
				seq, _ := strconv.ParseUint(m.Headers().Get(bus.HeaderInboundSeq), 10, 64)
				return feedMsg{holdID: m.Headers().Get(bus.HeaderHoldID), path: m.Headers().Get(bus.HeaderReleasePath), inboundSeq: seq}, nil
			})
		if err != nil {
			return false
		}
		out = map[string][]feedMsg{}
		for _, m := range msgs {
			out[m.holdID] = append(out[m.holdID], m)
		}
		return true
	})
	return out
}

// releaseCount counts the transitions of h into released.
func releaseCount(h *hold.Hold) int {
	n := 0
	for _, tr := range h.Transitions {
		if tr.To == hold.StateReleased {
			n++
		}
	}
	return n
}

// newClusterPipeEnv creates the R3 streams and buckets on a fresh cluster
// through nc (retrying while the cluster settles) and returns the environment
// the cluster tests share: a fake clock, the test policy, a fast scheduler and
// reconciler, redelivery after 2 s, everything R3.
func newClusterPipeEnv(t *testing.T, nc *nats.Conn) *pipeEnv {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "R3 streams and buckets", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return bus.EnsureStreams(ctx, js, bus.StreamsConfig{Replicas: 3}) == nil && EnsureBuckets(ctx, js, 3) == nil
	})
	e := &pipeEnv{t: t, js: &testutil.JS{NC: nc, JS: js}, clock: newFakeClock(), policy: &testPolicy{}}
	hc := DefaultHoldsConfig()
	hc.SchedulerTick, hc.ReconcileEvery = 10*time.Millisecond, 200*time.Millisecond
	hc.AckWait, hc.MaxDeliver, hc.RetryBackoff = 2*time.Second, 100, []time.Duration{100 * time.Millisecond}
	e.cfg = Config{Holds: hc, Partitions: testPartitions, Secret: pipeSecret, Policy: e.policy, FHIR: feed.NewFHIREncoder(time.UTC, "", true), Clock: e.clock, Replicas: 3, Logger: zerolog.Nop()}
	return e
}

// startClusterPipeline starts a pipeline with cfg on nc and stops it (within
// 3 s) when the test ends.
func startClusterPipeline(t *testing.T, nc *nats.Conn, cfg Config) *Pipeline {
	t.Helper()
	p, err := New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return p
}
