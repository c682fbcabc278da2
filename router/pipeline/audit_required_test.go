package pipeline

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
)

// inboundCount returns how many messages HL7_IN holds.
func inboundCount(t *testing.T, e *pipeEnv) uint64 {
	t.Helper()
	st, err := e.js.JS.Stream(testutil.Ctx(t), bus.StreamHL7In)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(testutil.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestAuditRequiredForDeadLetterAndReplay takes the AUDIT stream away: a
// message that cannot be processed stays on its consumer (not terminated)
// until its dead letter can be audited, and a replay that cannot be audited
// is not made. With AUDIT back, the redelivery audits and settles it, and the
// replay goes through, each once.
func TestAuditRequiredForDeadLetterAndReplay(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	ctx := testutil.Ctx(t)
	var auditCfg jetstream.StreamConfig
	for _, c := range bus.StreamConfigs(bus.StreamsConfig{}) {
		if c.Name == bus.StreamAudit {
			auditCfg = c
		}
	}
	if err := e.js.JS.DeleteStream(ctx, bus.StreamAudit); err != nil {
		t.Fatal(err)
	}
	e.sendRaw("garbage-1", []byte("not HL7"))
	testutil.Eventually(t, 10*time.Second, "dead record written", func() bool {
		recs, err := s.DeadList(testutil.Ctx(t), 0)
		return err == nil && len(recs) == 1
	})
	// Without AUDIT the message is nak'ed again and again, never terminated.
	testutil.Eventually(t, 10*time.Second, "audit append retried", func() bool { return s.Metrics().AuditRetries >= 2 })
	if got := s.Metrics().Processed["dead"]; got != 0 {
		t.Fatalf("message settled as dead (%d) without its audit event", got)
	}
	recs, _ := s.DeadList(ctx, 0)
	before := inboundCount(t, e)
	if _, err := s.DeadReplay(ctx, recs[0].Seq, "ops"); err == nil {
		t.Fatal("replay without an audit trail succeeded")
	}
	if n := inboundCount(t, e); n != before {
		t.Fatalf("HL7_IN went from %d to %d messages: an unaudited replay was made", before, n)
	}

	if _, err := e.js.JS.CreateStream(ctx, auditCfg); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "dead letter settled once audited", func() bool { return s.Metrics().Processed["dead"] == 1 })
	if _, err := s.DeadReplay(ctx, recs[0].Seq, "ops"); err != nil {
		t.Fatalf("replay with the trail back: %v", err)
	}
	if n := inboundCount(t, e); n != before+1 {
		t.Fatalf("HL7_IN has %d messages after the replay, want %d", n, before+1)
	}
	evs, err := s.Audit(ctx, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	// The replayed copy (not HL7 either) is dead-lettered again under its
	// own inbound sequence; the original's events are one each.
	kinds := map[string]int{}
	for _, ev := range evs {
		if ev.InboundSeq == recs[0].InboundSeq {
			kinds[ev.Kind]++
		}
	}
	if kinds[bus.AuditDead] != 1 || kinds[bus.AuditReplay] != 1 {
		t.Fatalf("audit events of inbound seq %d: %v, want one dead and one replay", recs[0].InboundSeq, kinds)
	}
}

// TestDecidedButNotDelivered: a result decided for release whose FHIR
// mapping is refused is dead-lettered; the audit trail links the decision
// and the dead letter by hold ID and control ID, and says not delivered.
func TestDecidedButNotDelivered(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	e.send(msgSpec{ctrl: "ND1", filler: "F1", section: "CH", status: "Z"}) // OBR-25 Z: no FHIR status
	e.waitSettled()
	testutil.Eventually(t, 10*time.Second, "dead letter", func() bool { return s.Metrics().Processed["dead"] == 1 })
	evs, err := s.Audit(testutil.Ctx(t), audit.Query{HoldID: holdOf("ND1")})
	if err != nil {
		t.Fatal(err)
	}
	var decided, notDelivered bool
	for _, ev := range evs {
		switch {
		case ev.Kind == bus.AuditDecision && ev.Action == "release" && ev.ControlID == "ND1":
			decided = true
		case ev.Kind == bus.AuditDead && ev.Action == audit.ActionNotDelivered && ev.ControlID == "ND1" && ev.HoldID == holdOf("ND1"):
			notDelivered = true
		}
	}
	if !decided || !notDelivered {
		t.Fatalf("audit of %s: decided %t, not delivered %t: %+v", holdOf("ND1"), decided, notDelivered, evs)
	}
	if n := len(e.portal("portal.>")); n != 0 {
		t.Fatalf("feed has %d messages", n)
	}
}
