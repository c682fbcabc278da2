package dead

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// Put stores one record per inbound message and returns its DEAD sequence
// again on a repeat (a redelivery after a failed audit or notification), so
// what names the record (the audit event, the on-call notice) names it once
// and correctly. ListReason reads one reason; Lookup reads a record whether or
// not it can be replayed.
func TestPutRepeatReturnsTheFirstRecord(t *testing.T) {
	js := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	l := New(js.JS, nil)
	// Something else on DEAD first, so the sequences differ from the counts.
	for _, id := range []string{"in-1", "in-2"} {
		if _, err := js.JS.PublishMsg(ctx, &nats.Msg{Subject: bus.InSubject("p00"), Data: []byte("MSH|" + id)}, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := js.JS.OrderedConsumer(ctx, bus.StreamHL7In, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(2)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 {
		t.Fatalf("fetched %d inbound messages", len(msgs))
	}
	first, err := l.Put(ctx, msgs[0], bus.DeadParse, "parse failed")
	if err != nil {
		t.Fatal(err)
	}
	seq, err := l.Put(ctx, msgs[1], bus.DeadUnattributed, ErrUnattributed.Error())
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Put(ctx, msgs[1], bus.DeadUnattributed, ErrUnattributed.Error())
	if err != nil {
		t.Fatal(err)
	}
	if seq == first || again != seq {
		t.Fatalf("sequences: first record %d, record %d, repeat %d", first, seq, again)
	}
	recs, err := l.ListReason(ctx, bus.DeadUnattributed, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Seq != seq || recs[0].InboundSeq != 2 || recs[0].Reason != bus.DeadUnattributed {
		t.Fatalf("unattributed records %+v", recs)
	}
	if _, err := l.ListReason(ctx, "a.b", 0); err == nil {
		t.Errorf("a reason that is not one subject token was accepted")
	}
	if _, err := l.Get(ctx, seq); err == nil {
		t.Errorf("Get of an unattributed record says it can be replayed")
	}
	rec, err := l.Lookup(ctx, seq)
	if err != nil || rec.Seq != seq {
		t.Errorf("Lookup: %+v, %v", rec, err)
	}
}
