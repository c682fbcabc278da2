package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// TestClusterLeaderAndInstanceLoss runs two resultgate instances on a
// three-node JetStream cluster (R3 streams and buckets), kills the HL7_IN
// stream leader and one instance in the middle of the traffic, and checks
// that every stored message ends exactly once in a hold or in the feed, and
// that deadlines still fire (on the surviving instance).
func TestClusterLeaderAndInstanceLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	srvs := testutil.StartJSCluster(t, 3, "S", nil, nil)
	env := newClusterPipeEnv(t, testutil.ClusterConn(t, srvs))
	js, clock := env.js.JS, env.clock
	ncA, ncB := testutil.ClusterConn(t, srvs), testutil.ClusterConn(t, srvs)
	a := startClusterPipeline(t, ncA, env.cfg)
	b := startClusterPipeline(t, ncB, env.cfg)
	s := b.Service()
	for i := 0; i < 10; i += 2 {
		env.consent(s, fmt.Sprintf("MRN%d", i), "active", true, false)
	}

	// The publisher retries like the intake's sender would resend: same
	// Msg-Id, so a retry after a lost PubAck stores once.
	publish := func(m msgSpec) {
		raw := m.build()
		part := hold.Partition(hold.PatientKey(pipeSecret, hold.PatientIdentity(m.pid, "HOSP")), testPartitions)
		testutil.Eventually(t, 30*time.Second, "inbound stored", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: bus.InSubject(part), Data: raw}, jetstream.WithMsgID("LIS|HOSP|"+m.ctrl))
			if err == nil {
				env.noteSeq(part, ack.Sequence)
			}
			return err == nil
		})
	}
	sent := map[string]bool{}
	const total = 120
	for n := range total {
		i := n % 10
		pid, ctrl := fmt.Sprintf("MRN%d", i), fmt.Sprintf("Q%d", n)
		section := "CH"
		if n%3 == 0 {
			section = "SP"
		}
		publish(msgSpec{ctrl: ctrl, pid: pid, filler: ctrl, section: section})
		sent[holdOf(ctrl)] = i%2 == 0 && section == "SP"
		switch n {
		case total / 3:
			st, err := js.Stream(context.Background(), bus.StreamHL7In)
			if err != nil {
				t.Fatal(err)
			}
			leader := st.CachedInfo().Cluster.Leader
			for _, srv := range srvs {
				if srv.Name() == leader {
					srv.Shutdown() // the HL7_IN stream leader dies
				}
			}
		case total / 2:
			ncA.Close() // instance A dies
			_ = a
		}
	}
	testutil.Eventually(t, 60*time.Second, "every result decided", env.settled)
	// Reads retry: a stream may be electing a new leader.
	portal := func() []*nats.Msg {
		t.Helper()
		var lastErr error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			msgs, err := bus.ReadAll(ctx, js, bus.StreamPortal, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"portal.hl7.>"}}, 10000,
				func(m jetstream.Msg, _ uint64) (*nats.Msg, error) {
					return &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}, nil
				})
			cancel()
			if err == nil {
				return msgs
			}
			lastErr = err
			time.Sleep(50 * time.Millisecond) // polling a failing read, not synchronising
		}
		t.Fatalf("portal not readable for 30s: %v", lastErr)
		return nil
	}
	check := func(wantHeld bool) {
		t.Helper()
		feed := map[string]int{}
		msgs := portal()
		for _, m := range msgs {
			feed[m.Header.Get(bus.HeaderHoldID)]++
		}
		for id, sensitive := range sent {
			switch {
			case sensitive && wantHeld && feed[id] != 0:
				t.Errorf("held result %s in the feed", id)
			case (!sensitive || !wantHeld) && feed[id] != 1:
				t.Errorf("result %s in the feed %d times, want 1", id, feed[id])
			}
		}
		if len(msgs) != len(feed) {
			t.Errorf("feed has %d messages for %d results", len(msgs), len(feed))
		}
	}
	testutil.Eventually(t, 30*time.Second, "released results in the feed", func() bool {
		clock.Tick() // a reconciler round for releases whose publish met the election
		want := 0
		for _, sens := range sent {
			if !sens {
				want++
			}
		}
		return len(portal()) >= want
	})
	check(true)
	// Deadlines fire on the surviving instance.
	clock.Advance(100 * time.Hour)
	testutil.Eventually(t, 60*time.Second, "deadlines released every hold", func() bool {
		clock.Advance(time.Second) // past any scheduler retry (scheduleRetry) a lost leader caused
		return len(portal()) >= len(sent)
	})
	check(false)
}
