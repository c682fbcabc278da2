package pipeline

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/notify"
)

// routineORU is a synthetic routine haemoglobin result (released at once by
// the production policy) with the given PID segment ("" for none).
func routineORU(ctrl, pid string) []byte {
	segs := []string{"MSH|^~\\&|LIS|HOSP|PORTAL|HOSP|20260302080000||ORU^R01^ORU_R01|" + ctrl + "|P|2.5.1"}
	if pid != "" {
		segs = append(segs, pid)
	}
	segs = append(segs,
		"OBR|1|PL-"+ctrl+"|FL-"+ctrl+"|718-7^Hemoglobin^LN|||20260301120000|||||||||DRSMITH^Smith^Ann||||||20260302080000|||F",
		"OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|12.0-16.0|N|||F")
	return []byte(strings.Join(segs, "\r") + "\r")
}

// publishInbound stores raw on partition p01 as the intake would and returns
// its inbound sequence.
func publishInbound(t *testing.T, e *pipeEnv, ctrl string, raw []byte) uint64 {
	t.Helper()
	m := &nats.Msg{Subject: bus.InSubject("p01"), Header: nats.Header{}, Data: raw}
	m.Header.Set(bus.HeaderReceivedAt, e.clock.Now().UTC().Format(time.RFC3339Nano))
	m.Header.Set(bus.HeaderHL7ControlID, ctrl)
	ack, err := e.js.JS.PublishMsg(testutil.Ctx(t), m, jetstream.WithMsgID("LIS|HOSP|"+ctrl))
	if err != nil {
		t.Fatal(err)
	}
	e.noteSeq("p01", ack.Sequence)
	return ack.Sequence
}

// triageNotices reads the triage notices on notify.oncall.
func triageNotices(t *testing.T, e *pipeEnv) []notify.TriageNotice {
	t.Helper()
	out, err := bus.ReadAll(testutil.Ctx(t), e.js.JS, bus.StreamNotify, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectNotifyOnCall}}, 1000,
		func(m jetstream.Msg, _ uint64) (notify.TriageNotice, error) {
			var n notify.TriageNotice
			if err := json.Unmarshal(m.Data(), &n); err != nil {
				return n, err
			}
			if n.Kind != bus.NotifyTriage {
				return n, bus.ErrSkip
			}
			return n, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Which identifiers are usable: a result is unattributed when the identifier
// PID.PrimaryIdentifier reads (PID-3, PID-2 when PID-3 is empty) has no ID
// number. Those go to triage (DEAD, reason unattributed) with an on-call
// notice and an audit event, and never reach the feed or a hold; the others,
// including a bare MRN without an assigning authority and a v2.1-style PID-2,
// are released as before.
func TestUnattributedResultsGoToTriage(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)

	cases := []struct {
		name, ctrl, pid string
		unattributed    bool
	}{
		{"no PID segment", "NOPID", "", true},
		{"PID-3 and PID-2 empty", "EMPTY", "PID|1|||||Doe^Jane||19800101|F", true},
		{"PID-3 with only an assigning authority", "AUTHONLY", "PID|1||^^^HOSP^MR||Doe^Jane||19800101|F", true},
		{"PID-3 ID number blank", "BLANK", "PID|1||   ^^^HOSP^MR||Doe^Jane||19800101|F", true},
		{"PID-3 HL7 null", "NULL", "PID|1||\"\"||Doe^Jane||19800101|F", true},
		{"MRN with an assigning authority", "FULL", "PID|1||MRN7001^^^HOSP^MR||Doe^Jane||19800101|F", false},
		{"MRN without an assigning authority", "BARE", "PID|1||MRN7002||Doe^Jane||19800101|F", false},
		{"PID-2 in the stead of an empty PID-3", "PID2", "PID|1|MRN7003^^^HOSP||||Doe^Jane||19800101|F", false},
		{"second repetition has the ID", "REP2", "PID|1||^^^HOSP^MR~MRN7004^^^HOSP^PI||Doe^Jane||19800101|F", false},
	}
	seqs := map[string]uint64{}
	for _, c := range cases {
		seqs[c.ctrl] = publishInbound(t, e, c.ctrl, routineORU(c.ctrl, c.pid))
	}
	e.waitSettled()

	recs, err := s.DeadFind(ctx, dead.Query{Reason: bus.DeadUnattributed})
	if err != nil {
		t.Fatal(err)
	}
	byInbound := map[uint64]dead.Record{}
	for _, r := range recs {
		byInbound[r.InboundSeq] = r
	}
	all, err := s.DeadList(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	notices := triageNotices(t, e)
	noticeOf := map[uint64]notify.TriageNotice{}
	for _, n := range notices {
		noticeOf[n.InboundSeq] = n
	}
	deadEvents, err := s.Audit(ctx, audit.Query{Kinds: []string{bus.AuditDead}})
	if err != nil {
		t.Fatal(err)
	}
	auditOf := map[uint64]audit.Event{}
	for _, ev := range deadEvents {
		auditOf[ev.InboundSeq] = ev
	}
	released := map[string]bool{}
	for _, m := range e.portal("portal.hl7.>") {
		released[m.Header.Get(bus.HeaderControlID)] = true
	}
	want := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seq := seqs[c.ctrl]
			r, isDead := byInbound[seq]
			_, holdErr := s.GetHold(ctx, hold.HoldID(pipeSecret, "LIS|HOSP|"+c.ctrl))
			if !c.unattributed {
				if isDead || !released[c.ctrl] {
					t.Fatalf("attributed result: dead %t, released %t; want released", isDead, released[c.ctrl])
				}
				if _, ok := noticeOf[seq]; ok {
					t.Errorf("on-call notified of an attributed result")
				}
				return
			}
			if !isDead {
				t.Fatalf("unattributed result not in DEAD under reason %s (records: %+v)", bus.DeadUnattributed, all)
			}
			if released[c.ctrl] {
				t.Errorf("unattributed result reached the portal feed")
			}
			if !errors.Is(holdErr, hold.ErrHoldNotFound) {
				t.Errorf("a hold exists for an unattributed result (err %v)", holdErr)
			}
			if r.Detail != dead.ErrUnattributed.Error() || r.Subject != bus.InSubject("p01") || r.Stage != "" {
				t.Errorf("record %+v", r)
			}
			n, ok := noticeOf[seq]
			if !ok {
				t.Fatalf("no triage notice on %s", bus.SubjectNotifyOnCall)
			}
			if n.DeadSeq != r.Seq || n.Reason != bus.DeadUnattributed || n.ControlID != c.ctrl || !n.At.Equal(e.clock.Now()) {
				t.Errorf("notice %+v for record %d", n, r.Seq)
			}
			ev, ok := auditOf[seq]
			if !ok || ev.DeadSeq != r.Seq || !strings.HasPrefix(ev.Reason, bus.DeadUnattributed+": ") {
				t.Errorf("dead audit event %+v (found %t)", ev, ok)
			}
		})
		if c.unattributed {
			want++
		}
	}
	if len(recs) != want || len(notices) != want {
		t.Errorf("%d triage records and %d notices, want %d of each", len(recs), len(notices), want)
	}
	if len(all) != want {
		t.Errorf("%d DEAD records in all, want %d (only the unattributed)", len(all), want)
	}
	for _, m := range e.portal("portal.>") {
		if m.Header.Get(bus.HeaderPatientKey) == "" {
			t.Errorf("feed message %s without a patient key", m.Header.Get(bus.HeaderControlID))
		}
	}
}

// The operator's side: the triage list shows what waits; a replay of the same
// bytes is refused with the remedy; a discard needs who and why, is audited
// once, and takes the record off the open list while DEAD keeps it.
func TestTriageDiscard(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)

	inA := publishInbound(t, e, "TRIAGE-A", routineORU("TRIAGE-A", "PID|1||^^^HOSP^MR||Doe^Jane"))
	inB := publishInbound(t, e, "TRIAGE-B", routineORU("TRIAGE-B", ""))
	e.waitSettled()
	open, err := s.Triage(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 || open[0].InboundSeq != inA || open[1].InboundSeq != inB {
		t.Fatalf("triage list %+v, want the records of inbound %d and %d", open, inA, inB)
	}
	a := open[0]

	if _, err := s.DeadReplay(ctx, a.Seq, "ops"); !errors.Is(err, hold.ErrBadRequest) || !strings.Contains(err.Error(), "dead discard") {
		t.Errorf("replay of an unattributed record: %v, want a refusal naming dead discard", err)
	}
	if _, err := s.DeadDiscard(ctx, dead.DiscardRequest{Seq: a.Seq, By: "ops"}); !errors.Is(err, hold.ErrReasonRequired) {
		t.Errorf("discard without a reason: %v", err)
	}
	if _, err := s.DeadDiscard(ctx, dead.DiscardRequest{Seq: a.Seq, Reason: "resent"}); !errors.Is(err, hold.ErrBadRequest) {
		t.Errorf("discard without by: %v", err)
	}
	if _, err := s.DeadDiscard(ctx, dead.DiscardRequest{Seq: 999, By: "ops", Reason: "resent"}); !errors.Is(err, dead.ErrNotFound) {
		t.Errorf("discard of a missing record: %v", err)
	}

	const why = "corrected by the LIS and resent as TRIAGE-A2"
	got, err := s.DeadDiscard(ctx, dead.DiscardRequest{Seq: a.Seq, By: "ops-anna", Role: hold.RoleOnCall, Reason: why})
	if err != nil {
		t.Fatal(err)
	}
	if got.Discarded == nil || got.Discarded.By != "ops-anna" || got.Discarded.Reason != why || !got.Discarded.At.Equal(e.clock.Now()) {
		t.Fatalf("discarded record %+v", got)
	}
	e.clock.Advance(time.Minute)
	again, err := s.DeadDiscard(ctx, dead.DiscardRequest{Seq: a.Seq, By: "ops-ben", Reason: "again"})
	if err != nil || again.Discarded == nil || again.Discarded.By != "ops-anna" {
		t.Fatalf("second discard: %v %+v, want the first discard unchanged", err, again)
	}

	evs, err := s.Audit(ctx, audit.Query{Kinds: []string{bus.AuditDiscard}})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].DeadSeq != a.Seq || evs[0].Actor != "ops-anna" || evs[0].Role != hold.RoleOnCall ||
		evs[0].Reason != why || evs[0].InboundSeq != inA {
		t.Fatalf("discard audit events %+v", evs)
	}

	open, err = s.Triage(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].InboundSeq != inB {
		t.Fatalf("triage list after the discard %+v, want only inbound %d", open, inB)
	}
	kept, err := s.DeadFind(ctx, dead.Query{Reason: bus.DeadUnattributed})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 2 || kept[0].Discarded == nil || kept[1].Discarded != nil {
		t.Fatalf("all unattributed records %+v: want both, the first marked discarded", kept)
	}

	// The sender's correction is a new message: it is released as usual.
	publishInbound(t, e, "TRIAGE-A2", routineORU("TRIAGE-A2", "PID|1||MRN7100^^^HOSP^MR||Doe^Jane"))
	e.waitSettled()
	if n := len(e.portal("portal.hl7.>")); n != 1 {
		t.Errorf("%d feed messages after the corrected resend, want 1", n)
	}
}

// A hold without a patient key (a data-error hold written by a build before
// triage) is never published: its release is recorded as unpublishable with
// the reason unattributed.
func TestGateRefusesHoldWithoutPatient(t *testing.T) {
	e := newPipeEnv(t)
	s := e.start().Service()
	ctx := testutil.Ctx(t)
	e.consent(s, "MRN1", "active", true, false)
	e.send(msgSpec{ctrl: "OLD1", filler: "F1", section: "SP"})
	e.waitSettled()
	h := e.waitState(s, holdOf("OLD1"), hold.StateHeld)
	if _, err := s.holds.Mutate(ctx, h.ID, func(c *hold.Hold) error { c.PatientKey = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acknowledge(ctx, h.ID, AckRequest{By: "DRSMITH"}); err != nil {
		t.Fatal(err)
	}
	var cur *hold.Hold
	testutil.Eventually(t, 5*time.Second, "publish error recorded", func() bool {
		var err error
		cur, err = s.GetHold(ctx, h.ID)
		return err == nil && cur.PublishError != ""
	})
	if cur.Published || !strings.HasPrefix(cur.PublishError, bus.DeadUnattributed+": ") {
		t.Errorf("published %t, publish error %q", cur.Published, cur.PublishError)
	}
	if n := len(e.portal("portal.>")); n != 0 {
		t.Errorf("%d feed messages for a hold without a patient", n)
	}
}

// When the on-call notice cannot be written the inbound message is not let
// go: it is redelivered until the notice is stored, and the redeliveries add
// no second dead letter, audit event or notice.
func TestTriageNoticeSurvivesAFailedPublish(t *testing.T) {
	e := realPolicyEnv(t, "time_zone: UTC\n")
	s := e.start().Service()
	ctx := testutil.Ctx(t)
	if err := e.js.JS.DeleteStream(ctx, bus.StreamNotify); err != nil {
		t.Fatal(err)
	}
	in := publishInbound(t, e, "NOTIFY-DOWN", routineORU("NOTIFY-DOWN", ""))
	c, err := e.js.JS.Consumer(ctx, bus.StreamHL7In, consumerName("p01"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "redelivered while NOTIFY is missing", func() bool {
		info, err := c.Info(ctx)
		recs, _ := s.DeadFind(ctx, dead.Query{Reason: bus.DeadUnattributed})
		return err == nil && info.NumRedelivered > 0 && info.NumAckPending == 1 && len(recs) == 1
	})
	if err := bus.EnsureStreams(ctx, e.js.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	e.waitSettled()
	recs, err := s.DeadFind(ctx, dead.Query{Reason: bus.DeadUnattributed})
	if err != nil {
		t.Fatal(err)
	}
	notices := triageNotices(t, e)
	evs, err := s.Audit(ctx, audit.Query{Kinds: []string{bus.AuditDead}})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(notices) != 1 || len(evs) != 1 {
		t.Fatalf("%d dead letters, %d notices, %d dead audit events; want one of each", len(recs), len(notices), len(evs))
	}
	if notices[0].DeadSeq != recs[0].Seq || notices[0].InboundSeq != in || evs[0].DeadSeq != recs[0].Seq {
		t.Errorf("notice %+v, event %+v, record %+v", notices[0], evs[0], recs[0])
	}
}
