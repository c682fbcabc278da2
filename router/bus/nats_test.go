package bus_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

func TestStartEmbeddedInProcess(t *testing.T) {
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{DataDir: dir, Durability: config.DurabilityFsync, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.JetStreamConfig().SyncAlways {
		t.Error("durability fsync did not enable sync always")
	}
	if srv.Addr() != nil {
		t.Errorf("empty Listen should not listen, got %v", srv.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, bus.ConnConfig{Server: srv, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("Connect in-process: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	if _, err := js.Publish(ctx, bus.InSubject("p00"), []byte("x")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nats", "jetstream")); err != nil {
		t.Errorf("store not under the data dir: %v", err)
	}
	if nc.Opts.Name != "resultgate" || nc.Opts.MaxReconnect != -1 {
		t.Errorf("connection name %q max reconnects %d", nc.Opts.Name, nc.Opts.MaxReconnect)
	}
	if got := nc.MaxPayload(); got != bus.DefaultMaxPayload {
		t.Errorf("max payload = %d, want %d", got, bus.DefaultMaxPayload)
	}
}

func TestStartEmbeddedDurabilityOS(t *testing.T) {
	tj := testutil.StartJS(t, config.DurabilityOS)
	if tj.Srv.JetStreamConfig().SyncAlways {
		t.Error("durability os enabled sync always")
	}
}

func TestStartEmbeddedErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.EmbeddedConfig
		want string
	}{
		{"no data dir", bus.EmbeddedConfig{}, "embedded NATS: data directory is empty"},
		{"bad durability", bus.EmbeddedConfig{DataDir: "x", Durability: "sometimes"}, `embedded NATS: unknown durability "sometimes" (want fsync or os)`},
		{"bad listen", bus.EmbeddedConfig{DataDir: "x", Listen: "nocolon"}, `embedded NATS: listen address "nocolon": parsing host:port: address nocolon: missing port in address`},
		{"bad port", bus.EmbeddedConfig{DataDir: "x", Listen: "127.0.0.1:99999"}, `embedded NATS: listen address "127.0.0.1:99999": invalid port "99999"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bus.StartEmbedded(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestConnectNoServer(t *testing.T) {
	_, err := bus.Connect(context.Background(), bus.ConnConfig{})
	if !errors.Is(err, bus.ErrNoServer) {
		t.Fatalf("err = %v, want ErrNoServer", err)
	}
}

// TestEmbeddedNeverTraces: at trace level the server's protocol trace would log
// message payloads (PHI); it stays off, and no payload reaches the log.
func TestEmbeddedNeverTraces(t *testing.T) {
	var buf testutil.SyncBuffer
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{DataDir: t.TempDir(), Durability: config.DurabilityOS,
		Logger: zerolog.New(&buf).Level(zerolog.TraceLevel)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if srv.JetStreamConfig() == nil {
		t.Fatal("no JetStream")
	}
	nc, err := bus.Connect(testutil.Ctx(t), bus.ConnConfig{Server: srv})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := bus.EnsureStreams(testutil.Ctx(t), js, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(testutil.Ctx(t), bus.InSubject("p00"), []byte("PID|1||SECRET-MRN-4711")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "SECRET-MRN-4711") {
		t.Fatalf("server log contains the payload:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `"component":"nats"`) {
		t.Errorf("server logs do not go through the zerolog adapter:\n%.500s", buf.String())
	}
}

// TestStartEmbeddedPortInUse: a client port already taken fails the start at
// once with the server's own reason, not after the readiness timeout.
func TestStartEmbeddedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		DataDir: t.TempDir(), Listen: l.Addr().String(), Durability: config.DurabilityOS,
		ReadyTimeout: 20 * time.Second, Logger: zerolog.Nop(),
	})
	if err == nil {
		srv.Shutdown()
		t.Fatal("StartEmbedded on a taken port succeeded")
	}
	if !errors.Is(err, bus.ErrServerNotReady) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q, want ErrServerNotReady naming the taken address", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failed after %s, want well before the 20 s readiness timeout", d)
	}
}
