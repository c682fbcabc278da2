package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

func TestAuditBucket(t *testing.T) {
	seen := map[string]int{}
	for i := range 100000 {
		b := auditBucket(fmt.Sprintf("h%023x", i*7919))
		if len(b) != 3 || !bus.ValidToken(b) {
			t.Fatalf("bucket %q is not a three-character token", b)
		}
		seen[b]++
	}
	// 100,000 keys over 4,096 buckets: every bucket used, none far above the mean (~24).
	if len(seen) != auditBuckets {
		t.Errorf("%d buckets used, want %d", len(seen), auditBuckets)
	}
	for b, n := range seen {
		if n > 70 {
			t.Errorf("bucket %s holds %d of 100,000 keys", b, n)
		}
	}
}

// TestAuditSubjectsBounded records events for many holds and checks that the
// AUDIT stream's subjects stay within kinds × buckets, that a query for one hold
// returns exactly its events (none of the other holds sharing its bucket) in
// order, and that events filed under a hold's own ID by earlier builds are
// still found.
func TestAuditSubjectsBounded(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := NewTrail(tj.JS, zerolog.Nop())
	const holds = 6000
	// Two holds forced into one bucket, with interleaved events.
	target := "htarget0001"
	var twin string
	for i := 0; twin == ""; i++ {
		if k := fmt.Sprintf("htwin%06d", i); auditBucket(k) == auditBucket(target) {
			twin = k
		}
	}
	// An event as an earlier build filed it: audit.<kind>.<hold ID>.
	legacy, _ := json.Marshal(Event{Kind: bus.AuditDecision, HoldID: target, Action: "hold", At: time.Now().UTC()})
	if _, err := tj.JS.PublishMsg(ctx, &nats.Msg{Subject: "audit.decision." + target, Data: legacy}); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{target, twin, target, twin} {
		if err := a.Record(ctx, fmt.Sprintf("pair-%d", i), Event{Kind: bus.AuditTransition, HoldID: id, Reason: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range holds {
		id := fmt.Sprintf("h%023x", i)
		if err := a.Record(ctx, "many-"+id, Event{Kind: bus.AuditDecision, HoldID: id, Action: "release"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Record(ctx, "consent-1", Event{Kind: bus.AuditConsent, PatientKey: "pk0001"}); err != nil {
		t.Fatal(err)
	}
	s, err := tj.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("audit.>"))
	if err != nil {
		t.Fatal(err)
	}
	// decision: ≤ 4,096 buckets + the legacy subject; transition: ≤ 2; consent: 1.
	if n := len(info.State.Subjects); n > auditBuckets+4 || n < 3000 {
		t.Errorf("AUDIT has %d subjects for %d holds, want at most %d", n, holds+2, auditBuckets+4)
	}
	evs, err := a.Query(ctx, Query{HoldID: target})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Kind != bus.AuditDecision || evs[1].Reason != "0" || evs[2].Reason != "2" {
		t.Fatalf("query for %s: %+v, want the legacy decision and transitions 0 and 2", target, evs)
	}
	for _, e := range evs {
		if e.HoldID != target || e.Seq == 0 {
			t.Errorf("query for %s returned %+v", target, e)
		}
	}
	evs, err = a.Query(ctx, Query{HoldID: twin})
	if err != nil || len(evs) != 2 || evs[0].Reason != "1" || evs[1].Reason != "3" {
		t.Fatalf("query for %s: %+v, %v", twin, evs, err)
	}
	evs, err = a.Query(ctx, Query{HoldID: fmt.Sprintf("h%023x", 4321)})
	if err != nil || len(evs) != 1 || evs[0].Action != "release" {
		t.Fatalf("query for one of many: %+v, %v", evs, err)
	}
	if evs, err := a.Query(ctx, Query{HoldID: "hnosuchhold"}); err != nil || len(evs) != 0 {
		t.Fatalf("query for an unknown hold: %+v, %v", evs, err)
	}
	if _, err := a.Query(ctx, Query{HoldID: "bad.token"}); err == nil {
		t.Error("query with a dotted hold ID accepted")
	}
}
