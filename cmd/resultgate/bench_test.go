package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
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
	dir := benchDataDir(b)
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		DataDir: dir, Listen: "127.0.0.1:-1", Durability: d, Logger: zerolog.Nop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	creds, err := bus.CredsOption(bus.ServiceCredsFile(dir))
	if err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), creds)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	if err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{
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

// startBenchApp starts the daemon in this process as `serve` starts it with
// cfg, on a fresh benchmark data directory with durability d and loopback
// listeners on free ports; it is stopped when the benchmark ends.
func startBenchApp(ctx context.Context, b *testing.B, cfg config.Config, d config.Durability) *app.App {
	b.Helper()
	cfg.DataDir = filepath.Join(benchDataDir(b), "data")
	cfg.Durability = d
	cfg.MLLP.Addr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:-1"
	a := app.New(cfg, zerolog.Nop())
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = a.Stop(sctx)
	})
	return a
}

func benchServeInProcess(b *testing.B, d config.Durability) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a := startBenchApp(ctx, b, config.Default(), d)
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
	writeHeapProfile(b)
}

// writeHeapProfile writes the live heap, while the daemon still runs, to the
// file named by RESULTGATE_HEAP_PROFILE (go test's -memprofile is written after
// the benchmark has stopped the daemon, when its memory is gone).
func writeHeapProfile(b *testing.B) {
	path := os.Getenv("RESULTGATE_HEAP_PROFILE")
	if path == "" {
		return
	}
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkServeBigMessage sends messages just under the 16 MiB maximum frame to
// an in-process daemon (durability os) and waits, per message, for the ACK and
// then for every consumer of HL7_IN (the classify pipeline) to have processed it,
// so that `go test -memprofile` (alloc_space) attributes the memory a large
// message costs across intake, JetStream and the pipeline.
func BenchmarkServeBigMessage(b *testing.B) {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(benchDataDir(b), "data")
	cfg.Durability = config.DurabilityOS
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
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.MLLPAddr().String(), AckTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	prefix := "MSH|^~\\&|BIGLAB|BIGFAC|RG|HOSP|20260101120000||ORU^R01^ORU_R01|BIG-0|P|2.5.1\r" +
		"PID|1||BIG1^^^HOSP^MR||BIG^PATIENT||19700101|F\r" +
		"OBR|1|ORD1|FIL1|11529-5^Surgical path^LN|||20260101\r" +
		"OBX|1|ED|11529-5^Report^LN||^application^pdf^Base64^"
	msg := []byte(prefix + strings.Repeat("A", cfg.MLLP.MaxFrameBytes-4096-len(prefix)) + "||||||F")
	s, err := a.JetStream().Stream(ctx, bus.StreamHL7In)
	if err != nil {
		b.Fatal(err)
	}
	drained := func() bool {
		l := s.ListConsumers(ctx)
		for ci := range l.Info() {
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				return false
			}
		}
		return l.Err() == nil
	}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := range b.N {
		ack, err := cl.Send(ctx, loadgen.WithControlID(nil, msg, "BIG-"+strconv.Itoa(i+1)))
		if err != nil {
			b.Fatal(err)
		}
		if code := loadgen.AckCode(ack); code != "AA" && code != "CA" {
			b.Fatalf("ACK %q", code)
		}
		testutil.Eventually(b, 2*time.Minute, "HL7_IN consumers processed the big message", drained)
	}
	b.StopTimer()
	writeHeapProfile(b)
}
