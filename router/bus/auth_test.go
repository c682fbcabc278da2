package bus_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// TestEmbeddedRequiresAuth: the embedded server's port refuses a client
// without credentials; the seeds it generated into the data directory (mode
// 0600, directory 0700) admit the service, which may manage streams, and the
// operator, who may read AUDIT but not update or delete it.
func TestEmbeddedRequiresAuth(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	ctx := testutil.Ctx(t)
	url := tj.Srv.ClientURL()

	if nc, err := nats.Connect(url, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Fatal("an unauthenticated client connected to the embedded server")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("unauthenticated connect: %v, want %v", err, nats.ErrAuthorization)
	}

	for _, p := range []string{bus.ServiceCredsFile(tj.Dir), bus.OperatorCredsFile(tj.Dir)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o, want 0600", p, st.Mode().Perm())
		}
	}
	st, err := os.Stat(bus.CredsDir(tj.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("%s mode %04o, want 0700", bus.CredsDir(tj.Dir), st.Mode().Perm())
	}

	// The operator: reads AUDIT's configuration, may not change or delete it.
	op, err := bus.Connect(ctx, bus.ConnConfig{URL: url, CredsFile: bus.OperatorCredsFile(tj.Dir), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("connecting as operator: %v", err)
	}
	defer op.Close()
	ojs, err := jetstream.New(op)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ojs.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatalf("operator reading AUDIT's info: %v", err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs = 1
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, err = ojs.UpdateStream(short, cfg)
	cancel()
	if err == nil {
		t.Error("operator updated AUDIT")
	}
	short, cancel = context.WithTimeout(ctx, time.Second)
	err = ojs.DeleteStream(short, bus.StreamAudit)
	cancel()
	if err == nil {
		t.Error("operator deleted AUDIT")
	}
	info, err := tj.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatalf("AUDIT after the operator's attempts: %v", err)
	}
	if got := info.CachedInfo().Config.MaxMsgs; got != -1 {
		t.Errorf("AUDIT max msgs %d after the operator's attempts, want -1", got)
	}

	// A seed open to other users: the next start refuses it, naming the file.
	tj.Srv.Shutdown()
	tj.Srv.WaitForShutdown()
	if err := os.Chmod(bus.OperatorCredsFile(tj.Dir), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = bus.StartEmbedded(bus.EmbeddedConfig{DataDir: tj.Dir, Listen: "127.0.0.1:-1", Durability: config.DurabilityOS, Logger: zerolog.Nop()})
	if !errors.Is(err, bus.ErrCredsPermissions) {
		t.Fatalf("start with a 0644 seed: %v, want ErrCredsPermissions", err)
	}
}

// TestEmbeddedInProcessWithCreds: a listening server admits serve's
// in-process connection with the service seed, with every right it needs.
func TestEmbeddedInProcessWithCreds(t *testing.T) {
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{DataDir: dir, Listen: "127.0.0.1:-1", Durability: config.DurabilityOS, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, bus.ConnConfig{Server: srv, CredsFile: bus.ServiceCredsFile(dir), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("in-process with the service seed: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{}); err != nil {
		t.Fatalf("EnsureStreams as service: %v", err)
	}
}
