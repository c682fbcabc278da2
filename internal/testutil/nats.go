package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/router/bus"
)

// JS is a real in-process NATS server with JetStream under t.TempDir(), a
// client connection to it and resultgate's streams.
type JS struct {
	Srv *server.Server
	NC  *nats.Conn
	JS  jetstream.JetStream
	Dir string
}

// StartJS starts an embedded server listening on 127.0.0.1 (random port) with
// durability d, connects over TCP and ensures the streams. Everything is
// stopped when the test ends.
func StartJS(t testing.TB, d config.Durability) *JS {
	t.Helper()
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		DataDir:      dir,
		Listen:       "127.0.0.1:-1",
		Durability:   d,
		ReadyTimeout: 10 * time.Second,
		Logger:       zerolog.Nop(),
	})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, bus.ConnConfig{URL: srv.ClientURL(), CredsFile: bus.ServiceCredsFile(dir), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	return &JS{Srv: srv, NC: nc, JS: js, Dir: dir}
}

// Ctx returns a context bounded for one test step (10 s), cancelled when the
// test ends.
func Ctx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
