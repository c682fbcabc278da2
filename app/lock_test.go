package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/bus"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
)

// A second App on the data directory of a running one fails at once, naming
// the lock file and the holder's PID, and starts no embedded server (the
// first one's store is untouched); once the first stops, the directory is free.
func TestDataDirLockRefusesSecondServe(t *testing.T) {
	dir := t.TempDir()
	first := New(testConfig(t, dir), zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := first.Start(ctx); err != nil {
		t.Fatalf("first Start: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = first.Stop(ctx)
		}
	}()
	lockPath := filepath.Join(dir, LockFileName)
	content, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatalf("lock file: %v", err)
	}
	if got, want := strings.TrimSpace(string(content)), strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("lock file holds %q, want the PID %s", got, want)
	}

	second := New(testConfig(t, dir), zerolog.Nop())
	begin := time.Now()
	err = second.Start(ctx)
	if err == nil {
		_ = second.Stop(ctx)
		t.Fatal("a second App started on a locked data directory")
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("the refusal took %s; it must not wait for the lock", took)
	}
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("error %v (%T) is not a LockedError wrapping ErrDataDirLocked", err, err)
	}
	if le.Path != lockPath || le.PID != os.Getpid() {
		t.Errorf("LockedError{Path: %q, PID: %d}, want {%q, %d}", le.Path, le.PID, lockPath, os.Getpid())
	}
	for _, want := range []string{lockPath, "process " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if second.ns != nil {
		t.Error("the refused App started an embedded NATS server")
	}
	// The refusal released nothing of the first: it still takes messages.
	if u := first.NATSClientURL(); u == "" {
		t.Fatal("the first App lost its embedded server")
	}
	if _, err := first.JetStream().AccountInfo(ctx); err != nil {
		t.Fatalf("the first App's JetStream after the refusal: %v", err)
	}

	if err := first.Stop(ctx); err != nil {
		t.Fatalf("first Stop: %v", err)
	}
	stopped = true
	if content, _ := os.ReadFile(lockPath); len(content) != 0 {
		t.Errorf("a released lock file still names a PID: %q", content)
	}
	third := New(testConfig(t, dir), zerolog.Nop())
	if err := third.Start(ctx); err != nil {
		t.Fatalf("Start after the first stopped: %v", err)
	}
	if err := third.Stop(ctx); err != nil {
		t.Fatalf("third Stop: %v", err)
	}
}

// With --nats-url there is no local store to protect: two instances share one
// data directory (here for its tokens file) and both start, as
// instances of a cluster do.
func TestDataDirLockSkippedWithExternalNATS(t *testing.T) {
	nsDir := t.TempDir()
	ns, err := bus.StartEmbedded(bus.EmbeddedConfig{DataDir: nsDir, Listen: "127.0.0.1:-1", Durability: config.DurabilityOS})
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the Apps' own cleanups, so it runs after them.
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "partition.key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFor := func() config.Config {
		cfg := testConfig(t, dir)
		cfg.NATS.URL, cfg.NATS.Listen = ns.ClientURL(), ""
		cfg.NATS.CredsFile = bus.ServiceCredsFile(nsDir)
		cfg.Intake.PartitionKeyFile = keyFile
		return cfg
	}
	a := startApp(t, cfgFor())
	b := startApp(t, cfgFor())
	if a.NATSClientURL() != "" || b.NATSClientURL() != "" {
		t.Fatal("an App with nats.url started an embedded server")
	}
	if _, err := os.Stat(filepath.Join(dir, LockFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an App with nats.url created a lock file (stat: %v)", err)
	}
}
