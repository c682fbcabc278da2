package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/router"
)

// benchConns is the 8 connections (or 8 concurrent publishers).
const benchConns = 8

// benchDataDir returns a fresh data directory under RESULTGATE_BENCH_DIR when
// set, so that interop/measure.sh puts the raw JetStream store on the same disk
// as the `resultgate serve` it compares with; otherwise under b.TempDir().
func benchDataDir(b *testing.B) string {
	b.Helper()
	base := os.Getenv("RESULTGATE_BENCH_DIR")
	if base == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(base, "raw-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// BenchmarkRawJetStreamPublish is the ceiling that `resultgate serve` is compared
// with: an embedded JetStream server exactly as serve starts it (sync always for
// fsync), the HL7_IN stream as serve creates it, and 8 goroutines each
// publishing the 2 KB ORU fixture synchronously (wait for the PubAck) with a
// unique Nats-Msg-Id, over a TCP connection to the server as serve's own client
// uses. No MLLP, no parsing, no ACK building. It reports msg/s.
func BenchmarkRawJetStreamPublish(b *testing.B) {
	for _, d := range []config.Durability{config.DurabilityFsync, config.DurabilityOS} {
		b.Run(string(d), func(b *testing.B) { benchRawPublish(b, d) })
	}
}

func benchRawPublish(b *testing.B, d config.Durability) {
	payload := readFixture(b, "oru_r01_v251.hl7")
	srv, err := router.StartEmbedded(router.EmbeddedConfig{
		DataDir: benchDataDir(b), Listen: "127.0.0.1:-1", Durability: d, Logger: zerolog.Nop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	if err := router.EnsureStreams(ctx, js, router.StreamsConfig{
		DuplicateWindow: cfg.Intake.DuplicateWindow, Replicas: 1,
	}); err != nil {
		b.Fatal(err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for w := range benchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subj := "hl7.in." + strconv.Itoa(w)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				m := &nats.Msg{Subject: subj, Data: payload, Header: nats.Header{}}
				m.Header.Set(jetstream.MsgIDHeader, run+"-"+strconv.FormatInt(i, 10))
				if _, err := js.PublishMsg(ctx, m); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d publishes failed", n)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
}

// BenchmarkServeInProcess runs the whole intake in one process (app.New, as
// `resultgate serve` does, durability os) under loadgen's 8 connections with the
// 2 KB ORU fixture, so that `go test -cpuprofile` shows where the time goes. The
// load generator shares the process and the CPUs; interop/measure.sh measures
// the real binary for the figures.
func BenchmarkServeInProcess(b *testing.B) {
	for _, d := range []config.Durability{config.DurabilityOS, config.DurabilityFsync} {
		b.Run(string(d), func(b *testing.B) { benchServeInProcess(b, d) })
	}
}

func benchServeInProcess(b *testing.B, d config.Durability) {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(benchDataDir(b), "data")
	cfg.Durability = d
	cfg.MLLP.Addr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:-1"
	a := app.New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = a.Stop(sctx)
	})
	tmpl := readFixture(b, "oru_r01_v251.hl7")
	b.ReportAllocs()
	b.ResetTimer()
	res, err := loadgen.Run(ctx, loadgen.Config{Addr: a.MLLPAddr().String(), Conns: benchConns, Count: b.N}, [][]byte{tmpl})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Accepted != b.N {
		b.Fatalf("%d of %d accepted: %+v", res.Accepted, b.N, res)
	}
	b.ReportMetric(res.MsgPerSec, "msg/s")
	b.ReportMetric(res.P99Millis, "p99-ms")
}
