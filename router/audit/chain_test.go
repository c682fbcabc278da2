package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

var testKey = CheckpointKey([]byte("0123456789abcdef0123456789abcdef"))

// errAny stands for "any error" in a test case.
var errAny = errors.New("any error")

// recordN appends n events through tr with IDs prefix-0 … prefix-(n-1).
func recordN(t *testing.T, ctx context.Context, tr *Trail, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := tr.Record(ctx, fmt.Sprintf("%s-%d", prefix, i), Event{Kind: bus.AuditDecision, HoldID: fmt.Sprintf("h%s%04d", prefix, i), Action: "hold"}); err != nil {
			t.Fatalf("record %s-%d: %v", prefix, i, err)
		}
	}
}

// kinds returns the kinds of r's findings, in order.
func kinds(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Kind)
	}
	return out
}

// hasKind reports whether r has a finding of kind k.
func hasKind(r *Report, k string) bool {
	for _, f := range r.Findings {
		if f.Kind == k {
			return true
		}
	}
	return false
}

func mustCheck(t *testing.T, ctx context.Context, js jetstream.JetStream, verify bool) *Report {
	t.Helper()
	f := Check
	if verify {
		f = Verify
	}
	r, err := f(ctx, js, CheckOptions{Key: testKey})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return r
}

func auditStream(t *testing.T, ctx context.Context, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChainConcurrentWriters: two Trails (two instances) and several
// goroutines each append concurrently; every event is stored once, linked to
// its predecessor, and Verify finds nothing. A re-run of an event (same ID)
// adds nothing and does not break the chain.
func TestChainConcurrentWriters(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// As serve does at start, before its first event.
	if _, err := WriteCheckpoint(ctx, tj.JS, testKey, nil); err != nil {
		t.Fatal(err)
	}
	a, b := NewTrail(tj.JS, zerolog.Nop()), NewTrail(tj.JS, zerolog.Nop())
	var wg sync.WaitGroup
	for w := range 4 {
		tr := a
		if w%2 == 1 {
			tr = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			recordN(t, ctx, tr, fmt.Sprintf("w%d", w), 40)
		}()
	}
	wg.Wait()
	recordN(t, ctx, a, "w1", 3) // re-run: duplicates
	r := mustCheck(t, ctx, tj.JS, true)
	if len(r.Findings) != 0 {
		t.Fatalf("findings on an intact trail: %v", r.Findings)
	}
	if r.Msgs != 160 || r.Chained != 160 || r.Legacy != 0 {
		t.Fatalf("msgs %d chained %d legacy %d, want 160, 160, 0", r.Msgs, r.Chained, r.Legacy)
	}
	if a.Conflicts()+b.Conflicts() == 0 {
		t.Log("no write conflict between the two trails in this run")
	}
	// serve's monitor checks the 160 events since the first checkpoint and
	// checkpoints the trail at its end.
	mon := NewMonitor(tj.JS, testKey, zerolog.Nop())
	if rep, err := mon.Round(ctx); err != nil || len(rep.Findings) != 0 {
		t.Fatalf("monitor round: %v, %v", rep, err)
	}
	if err := mon.Ready(ctx); err != nil {
		t.Fatalf("monitor Ready: %v", err)
	}
	cp, err := LoadCheckpoint(ctx, tj.JS)
	if err != nil || cp == nil || cp.Seq != 160 || cp.Msgs != 160 || !cp.Valid(testKey) {
		t.Fatalf("checkpoint after the round: %+v, %v", cp, err)
	}
	// Every event's header is the link of the one before.
	s := auditStream(t, ctx, tj.JS)
	prev := bus.AuditGenesis
	for seq := uint64(1); seq <= 160; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(bus.HeaderAuditPrev); got != prev {
			t.Fatalf("event %d prev %q, want %q", seq, got, prev)
		}
		prev = Link(seq, m.Subject, m.Data, m.Header.Get(bus.HeaderAuditPrev))
	}
}

// TestChainContinuesLegacyTrail: events written before the chain have no
// header; the first chained event links to the last of them, and Verify
// counts them as legacy, not as findings.
func TestChainContinuesLegacyTrail(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	for i := range 3 {
		if _, err := tj.JS.Publish(ctx, bus.AuditSubject(bus.AuditDecision, "abc"), []byte(fmt.Sprintf(`{"kind":"decision","reason":"%d"}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	// The upgraded serve's first start: a checkpoint of the legacy trail.
	if _, err := WriteCheckpoint(ctx, tj.JS, testKey, nil); err != nil {
		t.Fatal(err)
	}
	recordN(t, ctx, NewTrail(tj.JS, zerolog.Nop()), "new", 4)
	r := mustCheck(t, ctx, tj.JS, true)
	if len(r.Findings) != 0 || r.Legacy != 3 || r.Chained != 4 {
		t.Fatalf("findings %v, legacy %d, chained %d; want none, 3, 4", r.Findings, r.Legacy, r.Chained)
	}
}

// tamperEnv is a trail of 30 events with a checkpoint after the first 20.
func tamperEnv(t *testing.T) (*testutil.JS, context.Context, *Trail) {
	t.Helper()
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	tr := NewTrail(tj.JS, zerolog.Nop())
	if _, err := WriteCheckpoint(ctx, tj.JS, testKey, nil); err != nil {
		t.Fatal(err)
	}
	recordN(t, ctx, tr, "a", 20)
	if _, err := WriteCheckpoint(ctx, tj.JS, testKey, nil); err != nil {
		t.Fatal(err)
	}
	recordN(t, ctx, tr, "b", 10)
	if r := mustCheck(t, ctx, tj.JS, true); len(r.Findings) != 0 {
		t.Fatalf("findings before tampering: %v", r.Findings)
	}
	return tj, ctx, tr
}

// TestTamperDetected runs each way an administrator with every NATS right
// (the service credentials) can damage AUDIT, and checks that Check (start,
// /readyz) and Verify (audit verify) report it by kind.
func TestTamperDetected(t *testing.T) {
	update := func(f func(*jetstream.StreamConfig)) func(*testing.T, *testutil.JS, context.Context, *Trail) {
		return func(t *testing.T, tj *testutil.JS, ctx context.Context, _ *Trail) {
			cfg := auditStream(t, ctx, tj.JS).CachedInfo().Config
			f(&cfg)
			if _, err := tj.JS.UpdateStream(ctx, cfg); err != nil {
				t.Fatalf("UpdateStream: %v", err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		do   func(*testing.T, *testutil.JS, context.Context, *Trail)
		// check and verify: the finding kinds each must report.
		check, verify []string
		// refused is the error a later append gets from the running trail
		// and from a restarted one (errAny: any error; nil: appends go on).
		refused error
	}{
		{
			name: "delete interior events by a per-subject limit",
			do: func(t *testing.T, tj *testutil.JS, ctx context.Context, tr *Trail) {
				// Two events of one hold (one subject), then more.
				for i := range 2 {
					if err := tr.Record(ctx, fmt.Sprintf("same-%d", i), Event{Kind: bus.AuditDecision, HoldID: "hsame"}); err != nil {
						t.Fatal(err)
					}
				}
				recordN(t, ctx, tr, "c", 2)
				update(func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 1; c.Discard = jetstream.DiscardOld })(t, tj, ctx, tr)
			},
			check:   []string{FindingReconfigured, FindingGap},
			verify:  []string{FindingReconfigured, FindingGap},
			refused: ErrTrailReconfigured,
		},
		{
			name: "truncate the start by a message limit",
			do: update(func(c *jetstream.StreamConfig) {
				c.MaxMsgs = 5
				c.Discard = jetstream.DiscardOld
			}),
			check:   []string{FindingReconfigured, FindingTruncated},
			verify:  []string{FindingReconfigured, FindingTruncated},
			refused: ErrTrailReconfigured,
		},
		{
			name:    "block every new event (the probe: MaxMsgs=1)",
			do:      update(func(c *jetstream.StreamConfig) { c.MaxMsgs = 1 }),
			check:   []string{FindingReconfigured},
			verify:  []string{FindingReconfigured},
			refused: ErrTrailReconfigured,
		},
		{
			name: "delete the stream",
			do: func(t *testing.T, tj *testutil.JS, ctx context.Context, _ *Trail) {
				if err := tj.JS.DeleteStream(ctx, bus.StreamAudit); err != nil {
					t.Fatal(err)
				}
			},
			check:   []string{FindingMissing},
			verify:  []string{FindingMissing},
			refused: errAny,
		},
		{
			name: "delete the stream and recreate it empty",
			do: func(t *testing.T, tj *testutil.JS, ctx context.Context, _ *Trail) {
				cfg := auditStream(t, ctx, tj.JS).CachedInfo().Config
				if err := tj.JS.DeleteStream(ctx, bus.StreamAudit); err != nil {
					t.Fatal(err)
				}
				if _, err := tj.JS.CreateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			},
			check:   []string{FindingTruncated},
			verify:  []string{FindingTruncated},
			refused: ErrTrailTruncated,
		},
		{
			name: "rewrite the trail with one event edited and the chain recomputed",
			do: func(t *testing.T, tj *testutil.JS, ctx context.Context, _ *Trail) {
				s := auditStream(t, ctx, tj.JS)
				cfg := s.CachedInfo().Config
				var msgs []*jetstream.RawStreamMsg
				for seq := uint64(1); seq <= 30; seq++ {
					m, err := s.GetMsg(ctx, seq)
					if err != nil {
						t.Fatal(err)
					}
					msgs = append(msgs, m)
				}
				if err := tj.JS.DeleteStream(ctx, bus.StreamAudit); err != nil {
					t.Fatal(err)
				}
				if _, err := tj.JS.CreateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				prev := bus.AuditGenesis
				for i, m := range msgs {
					data := m.Data
					if i == 7 {
						data = []byte(strings.Replace(string(data), `"action":"hold"`, `"action":"release"`, 1))
					}
					nm := &nats.Msg{Subject: m.Subject, Data: data, Header: nats.Header{}}
					nm.Header.Set(bus.HeaderAuditPrev, prev)
					ack, err := tj.JS.PublishMsg(ctx, nm)
					if err != nil {
						t.Fatal(err)
					}
					prev = Link(ack.Sequence, m.Subject, data, nm.Header.Get(bus.HeaderAuditPrev))
				}
			},
			check:   []string{FindingEdit},
			verify:  []string{FindingEdit},
			refused: nil,
		},
		{
			name: "append an event without the chain",
			do: func(t *testing.T, tj *testutil.JS, ctx context.Context, _ *Trail) {
				if _, err := tj.JS.Publish(ctx, bus.AuditSubject(bus.AuditTransition, "abc"), []byte(`{"kind":"transition"}`)); err != nil {
					t.Fatal(err)
				}
			},
			check:   nil,
			verify:  []string{FindingUnchained},
			refused: nil,
		},
		{
			name: "republish an event with another event's chain header",
			do: func(t *testing.T, tj *testutil.JS, ctx context.Context, _ *Trail) {
				m, err := auditStream(t, ctx, tj.JS).GetMsg(ctx, 12)
				if err != nil {
					t.Fatal(err)
				}
				nm := &nats.Msg{Subject: m.Subject, Data: []byte(strings.Replace(string(m.Data), "hold", "released", 1)), Header: nats.Header{}}
				nm.Header.Set(bus.HeaderAuditPrev, m.Header.Get(bus.HeaderAuditPrev))
				if _, err := tj.JS.PublishMsg(ctx, nm); err != nil {
					t.Fatal(err)
				}
			},
			check:   nil,
			verify:  []string{FindingEdit},
			refused: nil,
		},
		{
			name: "delete the checkpoints and restart",
			do: func(t *testing.T, tj *testutil.JS, ctx context.Context, _ *Trail) {
				if err := tj.JS.DeleteKeyValue(ctx, bus.KVAuditCheckpoints); err != nil {
					t.Fatal(err)
				}
				if err := bus.EnsureStreams(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
					t.Fatal(err)
				}
			},
			check:   []string{FindingCheckpoint},
			verify:  []string{FindingCheckpoint},
			refused: nil,
		},
		{
			name: "replace the checkpoint with one signed by another key",
			do: func(t *testing.T, tj *testutil.JS, ctx context.Context, _ *Trail) {
				if _, err := WriteCheckpoint(ctx, tj.JS, CheckpointKey([]byte("not the instance secret")), &Acceptance{By: "mallory", Reason: "x"}); err != nil {
					t.Fatal(err)
				}
			},
			check:   []string{FindingCheckpoint},
			verify:  []string{FindingCheckpoint},
			refused: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tj, ctx, tr := tamperEnv(t)
			tc.do(t, tj, ctx, tr)
			// The running trail reads the head and AUDIT's configuration
			// again at its next append (in serve: after headRevalidate).
			saved := headRevalidate
			headRevalidate = 0
			t.Cleanup(func() { headRevalidate = saved })
			for _, v := range []bool{false, true} {
				want := tc.check
				if v {
					want = tc.verify
				}
				r := mustCheck(t, ctx, tj.JS, v)
				for _, k := range want {
					if !hasKind(r, k) {
						t.Errorf("verify=%v: findings %v, want one of kind %s", v, r.Findings, k)
					}
				}
				if len(want) == 0 && len(r.Findings) != 0 {
					t.Errorf("verify=%v: findings %v, want none (only the full walk sees it)", v, r.Findings)
				}
				if len(r.Findings) > 0 && (r.Recovery == "" || !errors.Is(r.Err(), ErrIntegrity)) {
					t.Errorf("verify=%v: findings without recovery advice or ErrIntegrity", v)
				}
			}
			// serve's monitor (start, every minute, /readyz) sees what the
			// full walk sees, in the events since the checkpoint, and writes
			// no checkpoint over it.
			before, err := LoadCheckpoint(ctx, tj.JS)
			if err != nil {
				t.Fatal(err)
			}
			mon := NewMonitor(tj.JS, testKey, zerolog.Nop())
			if _, err := mon.Round(ctx); err != nil {
				t.Fatalf("monitor round: %v", err)
			}
			err = mon.Ready(ctx)
			if !errors.Is(err, ErrIntegrity) {
				t.Errorf("monitor Ready: %v, want ErrIntegrity", err)
			}
			for _, k := range tc.verify {
				if err != nil && !strings.Contains(err.Error(), k+": ") {
					t.Errorf("monitor Ready: %v, want a finding of kind %s", err, k)
				}
			}
			after, err := LoadCheckpoint(ctx, tj.JS)
			if err != nil {
				t.Fatal(err)
			}
			if before != nil && after != nil && (before.MAC != after.MAC || before.Seq != after.Seq) {
				t.Errorf("the monitor wrote a checkpoint over a damaged trail: %+v, was %+v", after, before)
			}
			for name, w := range map[string]*Trail{"running": tr, "restarted": NewTrail(tj.JS, zerolog.Nop())} {
				err := w.Record(ctx, "after-"+name, Event{Kind: bus.AuditDecision, HoldID: "hafter" + name})
				switch {
				case tc.refused == errAny && err == nil:
					t.Errorf("%s trail appended: want an error", name)
				case tc.refused != errAny && tc.refused == nil && err != nil:
					t.Errorf("%s trail: %v, want the append to go on", name, err)
				case tc.refused != errAny && tc.refused != nil && !errors.Is(err, tc.refused):
					t.Errorf("%s trail: %v, want %v", name, err, tc.refused)
				}
			}
		})
	}
}

// TestRollupRefused: AUDIT refuses a roll-up (which would replace events),
// and its deny-purge cannot be lifted to allow one.
func TestRollupRefused(t *testing.T) {
	tj, ctx, _ := tamperEnv(t)
	m := nats.NewMsg(bus.AuditSubject(bus.AuditDecision, "abc"))
	m.Data = []byte(`{"kind":"decision"}`)
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupAll)
	if _, err := tj.JS.PublishMsg(ctx, m); err == nil {
		t.Error("a roll-up was stored on AUDIT")
	}
	cfg := auditStream(t, ctx, tj.JS).CachedInfo().Config
	cfg.DenyPurge, cfg.AllowRollup = false, true
	if _, err := tj.JS.UpdateStream(ctx, cfg); err == nil {
		t.Error("AUDIT's deny purge was lifted")
	}
	if r := mustCheck(t, ctx, tj.JS, true); len(r.Findings) != 0 || r.Msgs != 30 {
		t.Errorf("after refused attempts: %v, %d events", r.Findings, r.Msgs)
	}
}

// TestTrailRefusesTruncatedHead: after the stream was deleted and recreated
// under it, a Trail appends nothing (the chain would silently restart);
// after an operator's acceptance it appends again, linked to the new head.
func TestTrailRefusesTruncatedHead(t *testing.T) {
	tj, ctx, tr := tamperEnv(t)
	cfg := auditStream(t, ctx, tj.JS).CachedInfo().Config
	if err := tj.JS.DeleteStream(ctx, bus.StreamAudit); err != nil {
		t.Fatal(err)
	}
	// A restart: EnsureStreams does not recreate AUDIT beside HL7_IN.
	if err := bus.EnsureStreams(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tj.JS.Stream(ctx, bus.StreamAudit); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("AUDIT after a restart's EnsureStreams: %v, want still missing", err)
	}
	if err := bus.Ready(ctx, tj.JS); !errors.Is(err, bus.ErrStreamMissing) {
		t.Fatalf("Ready without AUDIT: %v", err)
	}
	// Someone recreates it empty: a fresh Trail (a restarted serve) refuses
	// to start a new chain below the checkpoint, as does the running one.
	if _, err := tj.JS.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]*Trail{"running": tr, "restarted": NewTrail(tj.JS, zerolog.Nop())} {
		err := w.Record(ctx, "after-"+name, Event{Kind: bus.AuditDecision, HoldID: "hx"})
		if !errors.Is(err, ErrTrailTruncated) {
			t.Errorf("%s trail appended to a truncated AUDIT: %v", name, err)
		}
	}
	// The operator accepts the trail as it stands (audit init --accept-new).
	if err := bus.RestoreAudit(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	rep := mustCheck(t, ctx, tj.JS, false)
	if _, err := WriteCheckpoint(ctx, tj.JS, testKey, &Acceptance{By: "ops", Reason: "AUDIT lost, incident 42", Findings: rep.Findings}); err != nil {
		t.Fatal(err)
	}
	fresh := NewTrail(tj.JS, zerolog.Nop())
	recordN(t, ctx, fresh, "c", 3)
	recordN(t, ctx, tr, "d", 2)
	if r := mustCheck(t, ctx, tj.JS, true); len(r.Findings) != 0 || r.Chained != 5 {
		t.Fatalf("after acceptance: %v, %d chained", r.Findings, r.Chained)
	}
}

// TestAcceptedGapsStayAccepted: gaps an operator accepted are reported as
// accepted by later verifications, also after later checkpoints, and a new
// gap is a finding again.
func TestAcceptedGapsStayAccepted(t *testing.T) {
	tj, ctx, tr := tamperEnv(t)
	cfg := auditStream(t, ctx, tj.JS).CachedInfo().Config
	cfg.MaxMsgsPerSubject, cfg.Discard = 1, jetstream.DiscardOld
	recordN(t, ctx, tr, "a", 2) // duplicates: nothing new
	// Two events on one subject, so the limit removes one.
	for i := range 2 {
		if err := tr.Record(ctx, fmt.Sprintf("same-%d", i), Event{Kind: bus.AuditDecision, HoldID: "hsame"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tj.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := bus.RestoreAudit(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	r := mustCheck(t, ctx, tj.JS, true)
	if !hasKind(r, FindingGap) || hasKind(r, FindingReconfigured) {
		t.Fatalf("after restoring the configuration: %v, want gaps only", r.Findings)
	}
	if _, err := WriteCheckpoint(ctx, tj.JS, testKey, &Acceptance{By: "ops", Reason: "test", Findings: r.Findings}); err != nil {
		t.Fatal(err)
	}
	recordN(t, ctx, tr, "e", 2)
	if _, err := WriteCheckpoint(ctx, tj.JS, testKey, nil); err != nil {
		t.Fatal(err)
	}
	r = mustCheck(t, ctx, tj.JS, true)
	if len(r.Findings) != 0 || len(r.Accepted) == 0 {
		t.Fatalf("after acceptance and a later checkpoint: findings %v, accepted %v", r.Findings, r.Accepted)
	}
}
