package router

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
)

// testJS is a real in-process NATS server with JetStream under t.TempDir(),
// a client connection and the resultgate streams.
type testJS struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	dir string
}

// startTestJS starts an embedded server listening on 127.0.0.1 (random port)
// with the given durability, connects over TCP and ensures the streams. Everything
// is stopped when the test ends.
func startTestJS(t testing.TB, d config.Durability) *testJS {
	t.Helper()
	dir := t.TempDir()
	srv, err := StartEmbedded(EmbeddedConfig{
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
	nc, err := Connect(ctx, ConnConfig{URL: srv.ClientURL(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	return &testJS{srv: srv, nc: nc, js: js, dir: dir}
}

// testCtx returns a context bounded for one test step.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
