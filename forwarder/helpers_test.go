package forwarder

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// waitFor bounds every asynchronous wait in these tests.
const waitFor = 15 * time.Second

// startJS starts a real in-process NATS server with JetStream under
// t.TempDir() on 127.0.0.1 (random port), connects and ensures the streams.
func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{
		DataDir: dir, Listen: "127.0.0.1:-1", Durability: config.DurabilityOS,
		ReadyTimeout: 10 * time.Second, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx := testCtx(t)
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
	return js
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// oru returns a small synthetic ORU^R01 with MSH-10 = ctl.
func oru(ctl string) []byte {
	return []byte("MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|" + ctl + "|P|2.5.1\r" +
		"PID|1||TEST" + ctl + "^^^HOSP^MR||TEST^PATIENT\r" +
		"OBR|1||F" + ctl + "|2345-7^Glucose^LN|||20260101110000||||||||||||||||F\r" +
		"OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99||||F\r")
}

// publish puts one released result on portal.hl7.<partition> as the gate does.
func publish(t *testing.T, js jetstream.JetStream, partition, ctl string) {
	t.Helper()
	hdr := nats.Header{}
	hdr.Set(bus.HeaderControlID, ctl)
	hdr.Set(bus.HeaderHoldID, "hold-"+ctl)
	hdr.Set(bus.HeaderReleasePath, "immediate")
	hdr.Set(bus.HeaderNotify, "push")
	_, err := js.PublishMsg(testCtx(t), &nats.Msg{Subject: bus.SubjectPortalHL7Prefix + partition, Header: hdr, Data: oru(ctl)},
		jetstream.WithMsgID("rel-hold-"+ctl+"-hl7"), jetstream.WithExpectStream(bus.StreamPortal))
	if err != nil {
		t.Fatalf("publishing %s: %v", ctl, err)
	}
}

// publishN publishes n messages "<partition>-<i>" and returns their control IDs.
func publishN(t *testing.T, js jetstream.JetStream, partition string, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		ctl := fmt.Sprintf("%s-%03d", partition, i)
		publish(t, js, partition, ctl)
		ids = append(ids, ctl)
	}
	return ids
}

// downstream is a real MLLP receiver on loopback whose answers the test
// chooses per message: "AA", "AE", "AR", "CA", ... or "" (no answer at all).
type downstream struct {
	srv  *mllp.Server
	addr string

	mu     sync.Mutex
	got    []string       // control IDs in arrival order, repeats included
	seen   map[string]int // arrivals per control ID
	answer func(ctl string, n int) string
	frames chan string       // each arrival's control ID, for tests that wait on one
	certCN string            // the client certificate's CN of the last message (mutual TLS)
	bytes  map[string][]byte // the bytes last received per control ID
}

func (d *downstream) HandleMessage(_ context.Context, peer mllp.Peer, frame []byte) []byte {
	m, err := hl7.Parse(frame)
	if err != nil {
		return hl7.BuildACKFromBytes(frame, hl7.AR)
	}
	ctl := m.ControlID()
	d.mu.Lock()
	d.got = append(d.got, ctl)
	d.certCN = peer.ClientCertSubject
	d.seen[ctl]++
	d.bytes[ctl] = slices.Clone(frame)
	code := "AA"
	if d.answer != nil {
		code = d.answer(ctl, d.seen[ctl])
	}
	d.mu.Unlock()
	select {
	case d.frames <- ctl:
	default:
	}
	if code == "" {
		return nil
	}
	return hl7.BuildACK(m, hl7.AckCode(code))
}

func (d *downstream) HandleTooLarge(_ context.Context, _ mllp.Peer, prefix []byte, _ int64) []byte {
	return hl7.BuildACKFromBytes(prefix, hl7.AR)
}

// setAnswer replaces the answer function.
func (d *downstream) setAnswer(f func(ctl string, n int) string) {
	d.mu.Lock()
	d.answer = f
	d.mu.Unlock()
}

// received returns the control IDs in arrival order.
func (d *downstream) received() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
}

// frame returns the bytes last received with control ID ctl.
func (d *downstream) frame(ctl string) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.bytes[ctl])
}

// startDownstream listens on addr ("127.0.0.1:0" for any port).
func startDownstream(t *testing.T, addr string, answer func(ctl string, n int) string) *downstream {
	t.Helper()
	return startDownstreamTLS(t, addr, nil, answer)
}

// startDownstreamTLS is startDownstream speaking TLS with tc (nil: plain TCP).
func startDownstreamTLS(t *testing.T, addr string, tc *tls.Config, answer func(ctl string, n int) string) *downstream {
	t.Helper()
	d := &downstream{seen: map[string]int{}, bytes: map[string][]byte{}, answer: answer, frames: make(chan string, 1024)}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	d.addr = ln.Addr().String()
	d.srv = mllp.NewServer(mllp.ServerConfig{TLS: tc}, d)
	go func() { _ = d.srv.Serve(ln) }()
	t.Cleanup(func() { _ = d.srv.Close() })
	return d
}

// testConfig is an enabled configuration with back-off small enough for tests.
func testConfig(addr string, partitions ...string) Config {
	return Config{
		Enabled: true, Addr: addr, AckTimeout: 5 * time.Second, DialTimeout: 2 * time.Second,
		RetryBackoff:           Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		MaxAttemptsBeforeAlert: 3, Partitions: partitions, PartitionCount: 4,
	}
}

// startForwarder starts a Forwarder and stops it when the test ends.
func startForwarder(t *testing.T, js jetstream.JetStream, cfg Config) *Forwarder {
	t.Helper()
	f, err := New(js, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := f.Start(testCtx(t)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.Stop(ctx)
	})
	return f
}

// waitDelivered waits until the forwarder counted n deliveries.
func waitDelivered(t *testing.T, f *Forwarder, n uint64) {
	t.Helper()
	testutil.Eventually(t, waitFor, fmt.Sprintf("%d deliveries", n), func() bool { return f.Stats().Delivered >= n })
}

// collapse drops immediate repeats (at-least-once resends of the same message).
func collapse(ids []string) []string { return slices.Compact(slices.Clone(ids)) }

// byPartition keeps the IDs of partition p ("p00-..."), in order.
func byPartition(ids []string, p string) []string {
	var out []string
	for _, id := range ids {
		if len(id) > len(p) && id[:len(p)+1] == p+"-" {
			out = append(out, id)
		}
	}
	return out
}

// freeAddr returns a loopback address nobody listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// testLogger writes the forwarder's logs to the test's log (shown on failure
// and with -v).
func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}
