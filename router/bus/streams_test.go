package bus_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

func TestEnsureStreamsIdempotent(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	// startTestJS ran EnsureStreams once; run it twice more, also after data.
	if _, err := tj.JS.Publish(ctx, bus.InSubject("p01"), []byte("x")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	for i := range 2 {
		if err := bus.EnsureStreams(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
			t.Fatalf("EnsureStreams run %d: %v", i+2, err)
		}
	}
	for _, want := range bus.StreamConfigs(bus.StreamsConfig{}) {
		s, err := tj.JS.Stream(ctx, want.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", want.Name, err)
		}
		got := s.CachedInfo().Config
		if strings.Join(got.Subjects, ",") != strings.Join(want.Subjects, ",") {
			t.Errorf("%s subjects = %v, want %v", want.Name, got.Subjects, want.Subjects)
		}
		if got.Storage != jetstream.FileStorage {
			t.Errorf("%s storage = %v, want file", want.Name, got.Storage)
		}
	}
	in, err := tj.JS.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.CachedInfo().Config.Duplicates; got != 24*time.Hour {
		t.Errorf("HL7_IN duplicate window = %s, want 24h", got)
	}
	if got := in.CachedInfo().State.Msgs; got != 1 {
		t.Errorf("HL7_IN messages after re-ensure = %d, want 1", got)
	}
	for _, b := range bus.BucketConfigs(bus.StreamsConfig{}) {
		kv, err := tj.JS.KeyValue(ctx, b.Bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", b.Bucket, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.History() != int64(b.History) {
			t.Errorf("bucket %s history = %d, want %d", b.Bucket, st.History(), b.History)
		}
	}
	if bus.HoldsHistory < 16 {
		t.Errorf("holds history %d < 16", bus.HoldsHistory)
	}
	// A changed, mutable setting is applied by a later run.
	if err := bus.EnsureStreams(ctx, tj.JS, bus.StreamsConfig{DuplicateWindow: time.Hour}); err != nil {
		t.Fatalf("EnsureStreams with new window: %v", err)
	}
	in, _ = tj.JS.Stream(ctx, bus.StreamHL7In)
	if got := in.CachedInfo().Config.Duplicates; got != time.Hour {
		t.Errorf("HL7_IN duplicate window after update = %s, want 1h", got)
	}
}

func TestAuditDeniesDeleteAndPurge(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	ack, err := tj.JS.Publish(ctx, "audit.decision", []byte(`{"decision":"release"}`))
	if err != nil {
		t.Fatalf("publish audit: %v", err)
	}
	s, err := tj.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, ack.Sequence); err == nil {
		t.Error("DeleteMsg on AUDIT succeeded, want refusal")
	}
	if err := s.SecureDeleteMsg(ctx, ack.Sequence); err == nil {
		t.Error("SecureDeleteMsg on AUDIT succeeded, want refusal")
	}
	if err := s.Purge(ctx); err == nil {
		t.Error("Purge on AUDIT succeeded, want refusal")
	}
	if _, err := s.GetMsg(ctx, ack.Sequence); err != nil {
		t.Errorf("audit event gone after refused delete/purge: %v", err)
	}
	// Updating the stream to allow deletes must not be possible silently either:
	// EnsureStreams keeps DenyDelete/DenyPurge on.
	if err := bus.EnsureStreams(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Config.DenyDelete || !info.Config.DenyPurge {
		t.Errorf("AUDIT deny_delete=%v deny_purge=%v, want both", info.Config.DenyDelete, info.Config.DenyPurge)
	}
	if info.Config.MaxAge != 0 {
		t.Errorf("AUDIT max age = %s, want none", info.Config.MaxAge)
	}
}

func TestStreamsConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		sc   bus.StreamsConfig
		want string
	}{
		{"defaults", bus.StreamsConfig{}, ""},
		{"replicas 3", bus.StreamsConfig{Replicas: 3}, ""},
		{"too many replicas", bus.StreamsConfig{Replicas: 7}, "replicas 7: JetStream allows at most 5"},
		{"window over max age", bus.StreamsConfig{InMaxAge: time.Hour}, "duplicate window 24h0m0s exceeds HL7_IN max age 1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.sc.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReady(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	if err := bus.Ready(ctx, tj.JS); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := bus.Live(tj.NC); err != nil {
		t.Fatalf("Live: %v", err)
	}
	if err := tj.JS.DeleteStream(ctx, bus.StreamDead); err != nil {
		t.Fatal(err)
	}
	if err := bus.Ready(ctx, tj.JS); !errors.Is(err, bus.ErrStreamMissing) {
		t.Fatalf("Ready without DEAD = %v, want ErrStreamMissing", err)
	}
	tj.NC.Close()
	if err := bus.Live(tj.NC); !errors.Is(err, bus.ErrNotConnected) {
		t.Fatalf("Live after close = %v, want ErrNotConnected", err)
	}
	if err := bus.Ready(ctx, tj.JS); !errors.Is(err, bus.ErrNotConnected) {
		t.Fatalf("Ready after close = %v, want ErrNotConnected", err)
	}
}

// TestEnsureStreamsLeavesAuditAlone: EnsureStreams creates AUDIT on a new
// installation only (two instances starting at once both succeed), never
// updates an existing AUDIT (a changed limit stays for the integrity check to
// report), and never recreates a deleted one beside HL7_IN; RestoreAudit (audit
// init) does both.
func TestEnsureStreamsLeavesAuditAlone(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	for _, name := range []string{bus.StreamHL7In, bus.StreamDead, bus.StreamAudit, "KV_" + bus.KVAuditCheckpoints} {
		if err := tj.JS.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bus.BucketConfigs(bus.StreamsConfig{}) {
		if err := tj.JS.DeleteKeyValue(ctx, b.Bucket); err != nil {
			t.Fatal(err)
		}
	}
	// Every resultgate stream gone: a new installation, two instances at once.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = bus.EnsureStreams(ctx, tj.JS, bus.StreamsConfig{}) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("EnsureStreams on a new installation: %v", err)
	}
	s, err := tj.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatalf("AUDIT on a new installation: %v", err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxAge = 48 * time.Hour
	if _, err := tj.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	s, _ = tj.JS.Stream(ctx, bus.StreamAudit)
	if got := s.CachedInfo().Config.MaxAge; got != 48*time.Hour {
		t.Errorf("AUDIT max age %s after EnsureStreams, want the changed 48h left for the check to report", got)
	}
	if err := bus.RestoreAudit(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	s, _ = tj.JS.Stream(ctx, bus.StreamAudit)
	if got := s.CachedInfo().Config.MaxAge; got != 0 {
		t.Errorf("AUDIT max age %s after RestoreAudit, want 0", got)
	}
	if err := tj.JS.DeleteStream(ctx, bus.StreamAudit); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tj.JS.Stream(ctx, bus.StreamAudit); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("AUDIT after EnsureStreams beside HL7_IN: %v, want still missing", err)
	}
	if err := bus.RestoreAudit(ctx, tj.JS, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	s, err = tj.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatalf("AUDIT after RestoreAudit: %v", err)
	}
	if c := s.CachedInfo().Config; c.MaxAge != 0 || !c.DenyDelete || !c.DenyPurge || c.MaxMsgs != -1 {
		t.Errorf("AUDIT after RestoreAudit: max age %s deny delete %v deny purge %v max msgs %d", c.MaxAge, c.DenyDelete, c.DenyPurge, c.MaxMsgs)
	}
}

// TestEnsureNamed: an instance that runs only the intake creates HL7_IN and
// DEAD and nothing else; Missing then names what an instance of another role
// would lack, and Ready fails on the first of them.
func TestEnsureNamed(t *testing.T) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		DataDir: t.TempDir(), Durability: config.DurabilityOS,
		ReadyTimeout: 10 * time.Second, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx := testutil.Ctx(t)
	nc, err := bus.Connect(ctx, bus.ConnConfig{Server: srv, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureNamed(ctx, js, bus.StreamsConfig{}, []string{bus.StreamHL7In, bus.StreamDead}); err != nil {
		t.Fatalf("EnsureNamed: %v", err)
	}
	got := bus.Missing(ctx, js, []string{bus.StreamHL7In, bus.StreamDead, bus.StreamPortal}, []string{bus.KVHolds})
	if got[0] != nil || got[1] != nil {
		t.Errorf("HL7_IN, DEAD after EnsureNamed: %v, %v", got[0], got[1])
	}
	// A new installation's first instance provisions the audit trail
	// whatever its role, so a pipeline instance starting later does not
	// find HL7_IN without AUDIT (which reads as a deleted trail).
	if _, err := js.Stream(ctx, bus.StreamAudit); err != nil {
		t.Errorf("AUDIT after an intake-only EnsureNamed on a new installation: %v", err)
	}
	if !errors.Is(got[2], bus.ErrStreamMissing) || got[2].Error() != "stream PORTAL: stream missing" {
		t.Errorf("PORTAL = %v, want stream missing", got[2])
	}
	if !errors.Is(got[3], bus.ErrStreamMissing) || got[3].Error() != "bucket holds: stream missing" {
		t.Errorf("holds = %v, want bucket missing", got[3])
	}
	if err := bus.Ready(ctx, js); err == nil || err.Error() != "stream PORTAL: stream missing" {
		t.Errorf("Ready = %v, want the first missing stream", err)
	}
	if err := bus.EnsureNamed(ctx, js, bus.StreamsConfig{}, nil); err != nil {
		t.Fatalf("EnsureNamed(all): %v", err)
	}
	if err := bus.Ready(ctx, js); err != nil {
		t.Errorf("Ready after ensuring all: %v", err)
	}
}
