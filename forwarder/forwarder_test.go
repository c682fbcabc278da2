package forwarder

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

func TestDeliversInOrderPerPartition(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", nil)
	cfg := testConfig(d.addr)
	cfg.Connections = 2
	f := startForwarder(t, js, cfg)
	want := map[string][]string{}
	for _, p := range []string{"p00", "p01", "p03"} {
		want[p] = publishN(t, js, p, 0, 25)
	}
	waitDelivered(t, f, 75)
	got := d.received()
	if len(got) != 75 {
		t.Fatalf("downstream received %d messages, want 75 (each once)", len(got))
	}
	for p, ids := range want {
		if g := byPartition(got, p); !slices.Equal(g, ids) {
			t.Errorf("partition %s order:\n got %v\nwant %v", p, g, ids)
		}
	}
	s := f.Stats()
	if s.Attempts != 75 || s.Retries != 0 || s.Dead != 0 || !s.LastError.IsZero() || s.LastDelivered.IsZero() {
		t.Errorf("stats = %+v", s)
	}
}

func TestRetryKeepsOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		failure string // the answer to the first two attempts of p00-001
		ackTO   time.Duration
		check   func(s Stats) bool
	}{
		{"AE then AA", "AE", 5 * time.Second, func(s Stats) bool { return s.AppErrors == 2 }},
		{"CE then CA", "CE", 5 * time.Second, func(s Stats) bool { return s.AppErrors == 2 }},
		{"no answer then AA", "", 200 * time.Millisecond, func(s Stats) bool { return s.Timeouts == 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJS(t)
			d := startDownstream(t, "127.0.0.1:0", func(ctl string, n int) string {
				if ctl == "p00-001" && n <= 2 {
					return tc.failure
				}
				return "AA"
			})
			cfg := testConfig(d.addr, "p00")
			cfg.AckTimeout = tc.ackTO
			f := startForwarder(t, js, cfg)
			ids := publishN(t, js, "p00", 0, 4)
			waitDelivered(t, f, 4)
			want := []string{"p00-000", "p00-001", "p00-001", "p00-001", "p00-002", "p00-003"}
			if got := d.received(); !slices.Equal(got, want) {
				t.Errorf("downstream received %v, want %v (the next message waits for the retried one)", got, want)
			}
			s := f.Stats()
			if s.Delivered != uint64(len(ids)) || s.Retries != 2 || !tc.check(s) || s.LastError.IsZero() || s.Dead != 0 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

func TestRejectedGoesToDeadAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", func(ctl string, _ int) string {
		if ctl == "p02-001" {
			return "AR"
		}
		return "AA"
	})
	f := startForwarder(t, js, testConfig(d.addr, "p02"))
	publishN(t, js, "p02", 0, 3)
	waitDelivered(t, f, 2)
	testutil.Eventually(t, waitFor, "dead letter counted", func() bool { return f.Stats().Dead == 1 })
	want := []string{"p02-000", "p02-001", "p02-001", "p02-001", "p02-002"}
	if got := d.received(); !slices.Equal(got, want) {
		t.Errorf("downstream received %v, want %v", got, want)
	}
	s := f.Stats()
	if s.Rejected != 3 || s.Retries != 2 || s.Delivered != 2 || s.Alerts != 0 {
		t.Errorf("stats = %+v", s)
	}

	// The DEAD record carries the original bytes, headers and the reason.
	ctx := testCtx(t)
	st, err := js.Stream(ctx, bus.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, bus.DeadSubject(DeadReason))
	if err != nil {
		t.Fatalf("no record on %s: %v", bus.DeadSubject(DeadReason), err)
	}
	h := m.Header
	for k, v := range map[string]string{
		bus.HeaderDeadReason:    DeadReason,
		bus.HeaderDeadSubject:   "portal.hl7.p02",
		bus.HeaderDeadMsgID:     "rel-hold-p02-001-hl7",
		bus.HeaderDeadDelivered: "3",
		bus.HeaderControlID:     "p02-001",
		bus.HeaderHoldID:        "hold-p02-001",
		HeaderForwardAck:        "AR",
		HeaderForwardAddr:       d.addr,
	} {
		if got := h.Get(k); got != v {
			t.Errorf("dead header %s = %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(h.Get(bus.HeaderDeadDetail), "rejected it (AR) on attempt 3 of 3") {
		t.Errorf("dead detail = %q", h.Get(bus.HeaderDeadDetail))
	}
	if string(m.Data) != string(oru("p02-001")) {
		t.Errorf("dead record data differs from the feed message")
	}
}

func TestDeadAfterGivesUpOnTransientFailures(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", func(ctl string, _ int) string {
		if ctl == "p01-000" {
			return "AE"
		}
		return "AA"
	})
	cfg := testConfig(d.addr, "p01")
	cfg.MaxAttemptsBeforeAlert = 2
	cfg.DeadAfter = time.Millisecond
	f := startForwarder(t, js, cfg)
	publishN(t, js, "p01", 0, 2)
	waitDelivered(t, f, 1)
	want := []string{"p01-000", "p01-000", "p01-001"}
	if got := d.received(); !slices.Equal(got, want) {
		t.Errorf("downstream received %v, want %v", got, want)
	}
	if s := f.Stats(); s.Dead != 1 || s.AppErrors != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestNeverGivesUpByDefault(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", func(string, int) string { return "AE" })
	cfg := testConfig(d.addr, "p00")
	cfg.MaxAttemptsBeforeAlert = 2
	f := startForwarder(t, js, cfg)
	publishN(t, js, "p00", 0, 2)
	testutil.Eventually(t, waitFor, "alert after repeated failures", func() bool {
		s := f.Stats()
		return s.Stuck == 1 && s.Alerts == 1 && s.AppErrors >= 4
	})
	if got := collapse(d.received()); !slices.Equal(got, []string{"p00-000"}) {
		t.Fatalf("downstream received %v: the second message must wait", got)
	}
	d.setAnswer(nil) // the downstream recovers
	waitDelivered(t, f, 2)
	if got := collapse(d.received()); !slices.Equal(got, []string{"p00-000", "p00-001"}) {
		t.Errorf("downstream received %v", got)
	}
	if s := f.Stats(); s.Stuck != 0 || s.Dead != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRestartMidStreamLosesAndReordersNothing(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", nil)
	cfg := testConfig(d.addr, "p00", "p01")
	f1, err := New(js, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := f1.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, p := range []string{"p00", "p01"} {
		want[p] = publishN(t, js, p, 0, 40)
	}
	waitDelivered(t, f1, 10)
	if err := f1.Stop(testCtx(t)); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := f1.Stop(testCtx(t)); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := f1.Start(testCtx(t)); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v, want ErrStopped", err)
	}
	before := len(d.received())
	for _, p := range []string{"p00", "p01"} {
		want[p] = append(want[p], publishN(t, js, p, 40, 10)...)
	}
	f2 := startForwarder(t, js, cfg)
	testutil.Eventually(t, waitFor, "all 100 delivered", func() bool {
		return len(collapse(byPartition(d.received(), "p00")))+len(collapse(byPartition(d.received(), "p01"))) >= 100
	})
	got := d.received()
	if len(got) != 100 {
		t.Errorf("downstream received %d messages, want 100 (an orderly stop resends nothing)", len(got))
	}
	for p, ids := range want {
		if g := collapse(byPartition(got, p)); !slices.Equal(g, ids) {
			t.Errorf("partition %s:\n got %v\nwant %v", p, g, ids)
		}
	}
	// The downstream records a frame before it answers, so the last ACK may
	// still be on its way to the forwarder when the list is complete.
	testutil.Eventually(t, waitFor, "the second forwarder counts its deliveries", func() bool {
		return f2.Stats().Delivered >= uint64(100-before)
	})
	if s := f2.Stats(); s.Delivered != uint64(100-before) {
		t.Errorf("second forwarder delivered %d, want %d", s.Delivered, 100-before)
	}
}

func TestStopIsBoundedWithMessageInFlight(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	silent := startDownstream(t, "127.0.0.1:0", func(string, int) string { return "" })
	cfg := testConfig(silent.addr, "p03")
	cfg.AckTimeout = time.Minute
	f, err := New(js, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	publishN(t, js, "p03", 0, 2)
	select {
	case <-silent.frames:
	case <-time.After(waitFor):
		t.Fatal("the downstream never received the message")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = f.Stop(ctx)
	if took := time.Since(start); took > 200*time.Millisecond+stopGrace {
		t.Errorf("Stop took %s", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if s := f.Stats(); s.Attempts != 0 || s.Timeouts != 0 {
		t.Errorf("an interrupted delivery is not a failed attempt: %+v", s)
	}

	// The interrupted message is given back, not lost: the next instance
	// delivers it first, then the one behind it.
	d := startDownstream(t, "127.0.0.1:0", nil)
	cfg.Addr, cfg.AckTimeout = d.addr, 5*time.Second
	f2 := startForwarder(t, js, cfg)
	waitDelivered(t, f2, 2)
	if got := d.received(); !slices.Equal(got, []string{"p03-000", "p03-001"}) {
		t.Errorf("downstream received %v", got)
	}
}

func TestDownstreamDownAtStart(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	addr := freeAddr(t)
	f := startForwarder(t, js, testConfig(addr, "p00"))
	ids := publishN(t, js, "p00", 0, 3)
	testutil.Eventually(t, waitFor, "connection failures counted", func() bool { return f.Stats().ConnErrors >= 3 })
	if f.Stats().Delivered != 0 {
		t.Fatal("delivered with no downstream")
	}
	d := startDownstream(t, addr, nil)
	waitDelivered(t, f, 3)
	if got := d.received(); !slices.Equal(got, ids) {
		t.Errorf("downstream received %v, want %v", got, ids)
	}
}

func TestSeveralInstancesKeepOrder(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", func(ctl string, n int) string {
		if strings.HasSuffix(ctl, "7") && n == 1 {
			return "AE" // some retries, to shuffle which instance gets what
		}
		return "AA"
	})
	cfg := testConfig(d.addr, "p00")
	a, b := startForwarder(t, js, cfg), startForwarder(t, js, cfg)
	ids := publishN(t, js, "p00", 0, 40)
	testutil.Eventually(t, waitFor, "40 delivered by two instances", func() bool {
		return a.Stats().Delivered+b.Stats().Delivered >= 40
	})
	if got := collapse(d.received()); !slices.Equal(got, ids) {
		t.Errorf("downstream order:\n got %v\nwant %v", got, ids)
	}
	if n := len(d.received()); n != 44 {
		t.Errorf("downstream received %d frames, want 44 (40 + 4 retried)", n)
	}
}

func TestStartNewSkipsEarlierFeed(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", nil)
	publishN(t, js, "p00", 0, 3)
	cfg := testConfig(d.addr, "p00")
	cfg.Start = StartNew
	f := startForwarder(t, js, cfg)
	publishN(t, js, "p00", 3, 2)
	waitDelivered(t, f, 2)
	if got := d.received(); !slices.Equal(got, []string{"p00-003", "p00-004"}) {
		t.Errorf("downstream received %v", got)
	}
	// The start position stays with the consumer: restarting with "all" does
	// not replay the earlier results (and does not fail on the immutable
	// deliver policy).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Start = StartAll
	f2 := startForwarder(t, js, cfg)
	publishN(t, js, "p00", 5, 1)
	waitDelivered(t, f2, 1)
	if got := d.received(); !slices.Equal(got, []string{"p00-003", "p00-004", "p00-005"}) {
		t.Errorf("downstream received %v", got)
	}
	info, err := js.Consumer(ctx, bus.StreamPortal, cfg.ConsumerName("p00"))
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.MaxAckPending != 1 || c.AckPolicy != jetstream.AckExplicitPolicy || c.FilterSubject != "portal.hl7.p00" {
		t.Errorf("consumer config = %+v", c)
	}
}

func TestDisabledDoesNothing(t *testing.T) {
	t.Parallel()
	f, err := New(nil, Config{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReplayDeliversARejectedResultAgain(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	fixed := false
	d := startDownstream(t, "127.0.0.1:0", nil)
	d.setAnswer(func(ctl string, _ int) string {
		if ctl == "p00-000" && !fixed {
			return "AR"
		}
		return "AA"
	})
	cfg := testConfig(d.addr, "p00")
	cfg.MaxAttemptsBeforeAlert = 1
	f := startForwarder(t, js, cfg)
	publishN(t, js, "p00", 0, 2)
	waitDelivered(t, f, 1)
	testutil.Eventually(t, waitFor, "dead letter", func() bool { return f.Stats().Dead == 1 })

	ctx := testCtx(t)
	st, err := js.Stream(ctx, bus.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.GetLastMsgForSubject(ctx, bus.DeadSubject(DeadReason))
	if err != nil {
		t.Fatal(err)
	}
	// The downstream is fixed; replaying twice queues the result once.
	d.setAnswer(func(string, int) string { fixed = true; return "AA" })
	for range 2 {
		subj, err := Replay(ctx, js, rec.Sequence)
		if err != nil || subj != "portal.hl7.p00" {
			t.Fatalf("Replay = %q, %v", subj, err)
		}
	}
	waitDelivered(t, f, 2)
	portal, err := js.Stream(ctx, bus.StreamPortal)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := portal.Info(ctx); err != nil || info.State.Msgs != 3 {
		t.Fatalf("PORTAL info = %+v, %v; want 3 messages: the second replay is a duplicate", info, err)
	}
	if got := d.received(); !slices.Equal(got, []string{"p00-000", "p00-001", "p00-000"}) {
		t.Errorf("downstream received %v", got)
	}
	if _, err := Replay(ctx, js, rec.Sequence+100); !errors.Is(err, dead.ErrNotFound) {
		t.Errorf("Replay(missing) = %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for the forwarder's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogBoundsDownstreamAck: a downstream that answers 100 KB in MSA-1 gets
// its answer treated as unusable (retried, then AA), and no log line quotes
// more than a few bytes of it.
func TestLogBoundsDownstreamAck(t *testing.T) {
	t.Parallel()
	js := startJS(t)
	long := strings.Repeat("X", 100<<10)
	d := startDownstream(t, "127.0.0.1:0", func(ctl string, n int) string {
		if n == 1 {
			return long
		}
		return "AA"
	})
	var logs lockedBuffer
	f, err := New(js, testConfig(d.addr, "p03"), zerolog.New(&logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.Stop(ctx)
	})
	publishN(t, js, "p03", 0, 1)
	waitDelivered(t, f, 1)
	if s := f.Stats(); s.BadAcks != 1 {
		t.Errorf("stats = %+v, want one unusable ACK", s)
	}
	out := logs.String()
	if !strings.Contains(out, `"ack":"XXXXXXXX"`) {
		t.Errorf("no log line names the unusable ACK code (cut to 8 bytes):\n%.2000s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(line) > 1024 || strings.Contains(line, "XXXXXXXXX") {
			t.Errorf("log line of %d bytes quotes the downstream's MSA-1: %.300s", len(line), line)
		}
	}
}
