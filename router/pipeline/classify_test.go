package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// fetchInbound returns the inbound message at seq through a consumer of its
// own, as the classify consumer would deliver it (with metadata).
func fetchInbound(t *testing.T, e *pipeEnv, seq uint64) jetstream.Msg {
	t.Helper()
	ctx := testutil.Ctx(t)
	c, err := e.js.JS.OrderedConsumer(ctx, bus.StreamHL7In, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func runInbound(t *testing.T, s *Service, m jetstream.Msg) {
	t.Helper()
	meta, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.processInbound(testutil.Ctx(t), m, meta); err != nil {
		t.Fatalf("processInbound: %v", err)
	}
}

// TestRerunCreatesNoDuplicates runs the classify step on the same inbound
// messages again, whole and after "crashes" that lost the last writes, and
// checks that nothing is duplicated downstream.
func TestRerunCreatesNoDuplicates(t *testing.T) {
	e := newPipeEnv(t, func(c *Config) { c.NoClassify = true })
	s := e.start().Service()
	e.consent(s, "MRN1", "active", true, false)
	heldSeq := e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	relSeq := e.send(msgSpec{ctrl: "C2", filler: "F2", section: "CH"})
	held, rel := fetchInbound(t, e, heldSeq), fetchInbound(t, e, relSeq)

	for i := range 3 {
		runInbound(t, s, held)
		runInbound(t, s, rel)
		if i == 1 {
			// A crash after the first writes: the order index (written last)
			// is lost, so the re-run redoes every step.
			for _, f := range []string{"F1", "F2"} {
				if err := s.orders.Delete(testutil.Ctx(t), hold.OrderKey(pipeSecret, "HOSP", f)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if n := len(e.portal("portal.hl7.>")); n != 1 {
		t.Fatalf("feed has %d HL7 messages, want 1", n)
	}
	if n := len(e.portal("portal.fhir.>")); n != 1 {
		t.Fatalf("feed has %d FHIR messages, want 1", n)
	}
	h, err := s.GetHold(testutil.Ctx(t), holdOf("C1"))
	if err != nil || h.State != hold.StateHeld || len(h.Transitions) != 1 {
		t.Fatalf("hold = %+v, %v", h, err)
	}
	if n := len(e.notifications("notify.>")); n != 1 {
		t.Fatalf("%d notifications, want 1", n)
	}
	for _, id := range []string{holdOf("C1"), holdOf("C2")} {
		evs, err := s.Audit(testutil.Ctx(t), audit.Query{HoldID: id})
		if err != nil || len(evs) != 1 {
			t.Fatalf("audit of %s: %d events, %v; want 1 decision", id, len(evs), err)
		}
	}
}

// TestReleaseCrashBeforePublishIsReconciled leaves a hold released but not
// published (a crash between the compare-and-set and the publish); the
// reconciler of a new instance publishes it, once.
func TestReleaseCrashBeforePublishIsReconciled(t *testing.T) {
	e := newPipeEnv(t)
	p := e.start()
	s := p.Service()
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "SP"})
	h := e.waitState(s, holdOf("C1"), hold.StateHeld)
	if err := p.Stop(testutil.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if _, err := s.holds.Mutate(testutil.Ctx(t), h.ID, func(c *hold.Hold) error {
		c.Transitions = append(c.Transitions, hold.Transition{From: hold.StateHeld, To: hold.StateReleased, Path: hold.PathAcknowledged, Actor: "DRSMITH", Role: hold.RoleClinician, At: now})
		c.State, c.Release, c.Published = hold.StateReleased, &hold.ReleaseInfo{Path: hold.PathAcknowledged, Actor: "DRSMITH", Role: hold.RoleClinician, At: now}, false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s2 := e.start().Service()
	e.start() // a second instance reconciles too
	testutil.Eventually(t, 5*time.Second, "published", func() bool {
		got, err := s2.GetHold(testutil.Ctx(t), h.ID)
		return err == nil && got.Published
	})
	if err := s2.gate.Reconcile(testutil.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.portal("portal.hl7.>")); n != 1 {
		t.Fatalf("feed has %d messages, want 1", n)
	}
}

// TestPerPatientOrderAcrossInstances sends each patient's result and its
// correction back to back to two instances: every correction must find its
// original held (and supersede it), never overtake it.
func TestPerPatientOrderAcrossInstances(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.start()
	const patients = 12
	for i := range patients {
		e.consent(s, fmt.Sprintf("MRN%d", i), "active", true, false)
	}
	for i := range patients {
		pid, f := fmt.Sprintf("MRN%d", i), fmt.Sprintf("F%d", i)
		e.send(msgSpec{ctrl: "O" + pid, pid: pid, filler: f, section: "SP"})
		e.send(msgSpec{ctrl: "X" + pid, pid: pid, filler: f, section: "SP", status: "C"})
	}
	e.waitSettled()
	for i := range patients {
		pid := fmt.Sprintf("MRN%d", i)
		orig, err := s.GetHold(testutil.Ctx(t), holdOf("O"+pid))
		if err != nil {
			dead, _ := s.DeadList(testutil.Ctx(t), 0)
			t.Fatalf("patient %d: %v (dead letters %+v, metrics %+v)", i, err, dead, s.Metrics())
		}
		corr, err := s.GetHold(testutil.Ctx(t), holdOf("X"+pid))
		if err != nil {
			t.Fatal(err)
		}
		if orig.State != hold.StateSuperseded || corr.State != hold.StateHeld || corr.Supersedes != orig.ID || !corr.Deadline.Equal(orig.Deadline) {
			t.Fatalf("patient %d: original %s, correction %s supersedes %q", i, orig.State, corr.State, corr.Supersedes)
		}
	}
	if n := len(e.portal("portal.>")); n != 0 {
		t.Fatalf("feed has %d messages", n)
	}
}

func TestDeadLetterAndReplay(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.sendRaw("garbage-1", []byte("this is not HL7 at all: Jane Doe MRN 12345"))
	e.policy.failReport.Store(true)
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "CH"})
	e.waitSettled()
	recs, err := s.DeadList(testutil.Ctx(t), 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("dead list = %+v, %v", recs, err)
	}
	byReason := map[string]dead.Record{}
	for _, r := range recs {
		byReason[r.Reason] = r
	}
	if _, ok := byReason[bus.DeadParse]; !ok || byReason[bus.DeadPolicy].Seq == 0 {
		t.Fatalf("reasons %q, %q; want parse and policy", recs[0].Reason, recs[1].Reason)
	}
	for _, r := range recs {
		if strings.Contains(r.Detail, "Jane") || strings.Contains(r.Detail, "12345") || strings.Contains(r.Detail, "refuses") {
			t.Fatalf("dead detail carries content: %q", r.Detail)
		}
	}
	if got := s.Metrics().Dead; got[bus.DeadParse] != 1 || got[bus.DeadPolicy] != 1 {
		t.Fatalf("dead metrics = %v", got)
	}
	e.policy.failReport.Store(false)
	if _, err := s.DeadReplay(testutil.Ctx(t), byReason[bus.DeadPolicy].Seq, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeadReplay(testutil.Ctx(t), byReason[bus.DeadPolicy].Seq, "ops"); err != nil { // replaying twice queues once
		t.Fatal(err)
	}
	e.waitSettled()
	testutil.Eventually(t, 5*time.Second, "replayed result released", func() bool { return len(e.portal("portal.hl7.>")) == 1 })
	if _, err := s.DeadReplay(testutil.Ctx(t), 999, "ops"); !errors.Is(err, dead.ErrNotFound) {
		t.Fatalf("replaying a missing record: %v", err)
	}
}

// TestTransientFailuresDeadLetterAfterMaxDeliver breaks the orders bucket so
// every attempt fails transiently: after MaxDeliver attempts the message is in
// DEAD (reason retries), not silently dropped; once repaired, a replay works.
func TestTransientFailuresDeadLetterAfterMaxDeliver(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	if err := e.js.JS.DeleteKeyValue(testutil.Ctx(t), bus.KVOrders); err != nil {
		t.Fatal(err)
	}
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "CH"})
	testutil.Eventually(t, 10*time.Second, "dead letter after retries", func() bool {
		recs, err := s.DeadList(testutil.Ctx(t), 0)
		return err == nil && len(recs) == 1
	})
	recs, _ := s.DeadList(testutil.Ctx(t), 0)
	if recs[0].Reason != bus.DeadRetries || recs[0].Deliveries != e.cfg.Holds.MaxDeliver {
		t.Fatalf("dead record = %+v", recs[0])
	}
	// On-call is told once, with the reason, the records and the count.
	notices, _ := deadNotices(t, e)
	if len(notices) != 1 || notices[0].Reason != bus.DeadRetries || notices[0].DeadSeq != recs[0].Seq ||
		notices[0].Partition != partitionOf("MRN1") || notices[0].Deliveries != e.cfg.Holds.MaxDeliver {
		t.Fatalf("on-call notices %+v", notices)
	}
	if err := EnsureBuckets(testutil.Ctx(t), e.js.JS, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeadReplay(testutil.Ctx(t), recs[0].Seq, "ops"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "replayed result released", func() bool { return len(e.portal("portal.hl7.>")) == 1 })
}

// TestRefusedAuditTrailNeverDeadLetters: with AUDIT deleted (the trail then
// refuses every append until an operator restores it), a result is retried
// far past holds.max_deliver and holds.dead_after but never dead-lettered:
// the trail's state is no fault of the message, and dead-lettering every
// result would empty the intake into DEAD. It waits in HL7_IN, unacked.
func TestRefusedAuditTrailNeverDeadLetters(t *testing.T) {
	e := newPipeEnv(t, func(c *Config) { c.Holds.ProcessTimeout, c.Holds.DeadAfter = 3*time.Second, 4*time.Second })
	s := e.start().Service()
	ctx := testutil.Ctx(t)
	if err := e.js.JS.DeleteStream(ctx, bus.StreamAudit); err != nil {
		t.Fatal(err)
	}
	e.send(msgSpec{ctrl: "C1", filler: "F1", section: "CH"})
	cons, err := e.js.JS.Consumer(ctx, bus.StreamHL7In, consumerName(partitionOf("MRN1")))
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(e.cfg.Holds.MaxDeliver + 3)
	testutil.Eventually(t, 30*time.Second, "retried past max_deliver", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Consumer >= want
	})
	if recs, err := s.DeadList(ctx, 0); err != nil || len(recs) != 0 {
		t.Fatalf("dead letters with the audit trail refused: %v %+v", err, recs)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending+int(info.NumPending) != 1 {
		t.Errorf("the result is no longer waiting in HL7_IN: ack pending %d, pending %d", info.NumAckPending, info.NumPending)
	}
}
