package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/notify"
)

// deadNotices reads the on-call notices of kind dead-letter, with their raw
// bodies.
func deadNotices(t *testing.T, e *pipeEnv) ([]notify.TriageNotice, []string) {
	t.Helper()
	// The notice is published after the DEAD record and its audit event, so
	// a test that has just seen the record waits for it.
	var (
		out  []notify.TriageNotice
		raws []string
	)
	testutil.Eventually(t, 10*time.Second, "the on-call dead-letter notice", func() bool {
		out, raws = readDeadNotices(t, e)
		return len(out) > 0
	})
	return out, raws
}

// readDeadNotices reads the on-call dead-letter notices published so far.
func readDeadNotices(t *testing.T, e *pipeEnv) ([]notify.TriageNotice, []string) {
	t.Helper()
	var raws []string
	out, err := bus.ReadAll(testutil.Ctx(t), e.js.JS, bus.StreamNotify, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectNotifyOnCall}}, 1000,
		func(m jetstream.Msg, _ uint64) (notify.TriageNotice, error) {
			var n notify.TriageNotice
			if err := json.Unmarshal(m.Data(), &n); err != nil {
				return n, err
			}
			if n.Kind != bus.NotifyDeadLetter {
				return n, bus.ErrSkip
			}
			raws = append(raws, string(m.Data()))
			return n, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return out, raws
}

// partitionOf returns the partition token of the test patient pid.
func partitionOf(pid string) string {
	return hold.Partition(hold.PatientKey(pipeSecret, hold.PatientIdentity(pid, "HOSP")), testPartitions)
}

// A message whose processing never returns (the policy stalls without looking
// at any context, as CPU-bound work does) is dead-lettered with reason
// processing-timeout after max_deliver attempts of process_timeout each; the
// next message of its partition is processed right after; on-call gets one
// notice without content; the abandoned attempt, once it returns, writes
// nothing; and the record is replayed once the cause is removed.
func TestStalledMessageIsDeadLetteredWithinBound(t *testing.T) {
	const budget = 300 * time.Millisecond
	e := newPipeEnv(t, func(c *Config) {
		c.Holds.ProcessTimeout = budget
		c.Holds.MaxDeliver = 3
		c.Holds.RetryBackoff = []time.Duration{10 * time.Millisecond}
		c.Holds.DeadAfter = time.Minute
	})
	release := e.policy.stallOn(t, "SLOW")
	s := e.start().Service()
	ctx := testutil.Ctx(t)

	start := time.Now()
	slowSeq := e.send(msgSpec{ctrl: "SLOW1", filler: "FS1", section: "CH"})
	e.send(msgSpec{ctrl: "NEXT1", filler: "FN1", section: "CH"}) // same patient: same partition, behind it
	testutil.Eventually(t, 20*time.Second, "the next message of the partition released", func() bool {
		return len(e.portal("portal.hl7.>")) == 1
	})
	took := time.Since(start)
	// The bound: three budgets, two backoffs, and the writes of two messages;
	// the slack is for a loaded 2-core machine, far below one ack_wait (30s).
	if bound := 3*budget + 2*10*time.Millisecond + 3*time.Second; took > bound {
		t.Errorf("next message released after %s, want within %s", took, bound)
	}
	recs, err := s.DeadList(ctx, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("dead letters %+v, %v", recs, err)
	}
	rec := recs[0]
	if rec.Reason != bus.DeadProcessingTimeout || rec.InboundSeq != slowSeq || rec.Deliveries != 3 ||
		!strings.Contains(rec.Detail, "holds.process_timeout (300ms)") || !strings.Contains(rec.Detail, "3 deliveries (holds.max_deliver)") {
		t.Fatalf("dead record %+v", rec)
	}
	// Listed under its reason, as `resultgate dead list --reason
	// processing-timeout --open` asks for it.
	if open, err := s.DeadFind(ctx, dead.Query{Reason: bus.DeadProcessingTimeout, Open: true}); err != nil || len(open) != 1 || open[0].Seq != rec.Seq {
		t.Errorf("open processing-timeout records %+v, %v", open, err)
	}
	// One attempt ran; the redeliveries waited for it instead of starting a
	// second copy of the stalled computation beside it.
	if n := e.policy.stalled.Load(); n != 1 {
		t.Errorf("%d stalled Classify calls, want 1", n)
	}
	if m := s.Metrics(); m.Timeouts != 3 || m.Abandoned != 1 || m.Dead[bus.DeadProcessingTimeout] != 1 {
		t.Errorf("metrics: timeouts %d, abandoned %d, dead %v", m.Timeouts, m.Abandoned, m.Dead)
	}

	notices, raws := deadNotices(t, e)
	if len(notices) != 1 {
		t.Fatalf("%d dead-letter notices, want 1: %v", len(notices), raws)
	}
	n := notices[0]
	if n.Reason != bus.DeadProcessingTimeout || n.DeadSeq != rec.Seq || n.InboundSeq != slowSeq || n.Partition != partitionOf("MRN1") || n.Deliveries != 3 || n.ControlID != "SLOW1" {
		t.Errorf("notice %+v", n)
	}
	for _, phi := range []string{"MRN1", "Doe", "Jane", "benign"} {
		if strings.Contains(raws[0], phi) {
			t.Errorf("the notice carries message content %q: %s", phi, raws[0])
		}
	}

	// The abandoned attempt returns once the policy does: it writes no hold,
	// no decision and nothing on the feed.
	release()
	testutil.Eventually(t, 10*time.Second, "abandoned attempt returned", func() bool { return s.Metrics().Abandoned == 0 })
	if _, err := s.GetHold(ctx, holdOf("SLOW1")); err == nil {
		t.Errorf("the abandoned attempt created a hold")
	}
	evs, err := s.Audit(ctx, audit.Query{HoldID: holdOf("SLOW1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == bus.AuditDecision {
			t.Errorf("the abandoned attempt audited a decision: %+v", ev)
		}
	}
	if n := len(e.portal("portal.hl7.>")); n != 1 {
		t.Errorf("%d feed messages after the abandoned attempt returned, want 1", n)
	}

	// The cause is gone (the policy no longer stalls): the replay is released.
	if _, err := s.DeadReplay(ctx, rec.Seq, "ops"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "replayed result released", func() bool { return len(e.portal("portal.hl7.>")) == 2 })
	if notices, _ := deadNotices(t, e); len(notices) != 1 {
		t.Errorf("%d dead-letter notices after the replay, want still 1", len(notices))
	}
}

// holds.dead_after ends the retries before holds.max_deliver when it comes
// first: a message that times out every time holds its partition for at most
// dead_after.
func TestDeadAfterBoundsTheRetries(t *testing.T) {
	const budget, deadAfter = 200 * time.Millisecond, time.Second
	e := newPipeEnv(t, func(c *Config) {
		c.Holds.ProcessTimeout = budget
		c.Holds.MaxDeliver = 1000
		c.Holds.RetryBackoff = []time.Duration{10 * time.Millisecond}
		c.Holds.DeadAfter = deadAfter
	})
	e.policy.stallOn(t, "SLOW")
	s := e.start().Service()
	ctx := testutil.Ctx(t)

	start := time.Now()
	e.send(msgSpec{ctrl: "SLOW2", filler: "FS2", section: "CH"})
	e.send(msgSpec{ctrl: "NEXT2", filler: "FN2", section: "CH"})
	testutil.Eventually(t, 20*time.Second, "the next message of the partition released", func() bool {
		return len(e.portal("portal.hl7.>")) == 1
	})
	if took, bound := time.Since(start), deadAfter+3*time.Second; took > bound {
		t.Errorf("next message released after %s, want within %s", took, bound)
	}
	recs, err := s.DeadList(ctx, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("dead letters %+v, %v", recs, err)
	}
	// Attempts end at 0.2s, 0.41s, 0.62s, 0.83s; a fifth could not end within 1s.
	rec := recs[0]
	if rec.Reason != bus.DeadProcessingTimeout || rec.Deliveries < 2 || rec.Deliveries > 5 || !strings.Contains(rec.Detail, "(holds.dead_after 1s)") {
		t.Fatalf("dead record %+v", rec)
	}
	if notices, _ := deadNotices(t, e); len(notices) != 1 || notices[0].Deliveries != rec.Deliveries {
		t.Errorf("notices %+v", notices)
	}
}
