package app

// End-to-end pipeline measurements for issue 4 §7 (docs/BENCHMARKS.md,
// "Pipeline end to end"). They are tests, not testing.B benchmarks, because each
// one is a bounded run with its own pass/fail-free report; all are skipped
// unless RESULTGATE_E2E_BENCH=1, so the normal suite does not pay for them.
//
//	RESULTGATE_E2E_BENCH=1 go test ./app -run '^TestE2EThroughput$' -v -timeout 30m
//	RESULTGATE_E2E_BENCH=1 go test ./app -run '^TestE2ELatency$' -v -timeout 30m
//	RESULTGATE_E2E_BENCH=1 go test ./app -run '^TestE2EHolds$' -v -timeout 30m
//
// TestE2EThroughput also logs what does not vary with the machine's load:
// allocations, NATS messages sent and received per message, and the
// runtime's estimate of the garbage collector's CPU per message.
//
// Knobs: RESULTGATE_E2E_COUNT (messages per throughput round), RESULTGATE_E2E_ROUNDS,
// RESULTGATE_E2E_RATE / RESULTGATE_E2E_SECONDS (latency run), RESULTGATE_E2E_HOLDS
// (comma-separated hold counts, default 10000,50000,100000), RESULTGATE_E2E_PARTITIONS
// (intake.partitions, default 16).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

func e2eBenchEnabled(t *testing.T) {
	t.Helper()
	if os.Getenv("RESULTGATE_E2E_BENCH") != "1" {
		t.Skip("end-to-end measurement; set RESULTGATE_E2E_BENCH=1 to run")
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// kentuckyConfig is the Kentucky preset (pathology and radiology likely to show
// malignancy are held 72 h) on a fresh data directory, durability os, loopback.
func kentuckyConfig(t *testing.T, dataDir string) config.Config {
	t.Helper()
	return kentuckyConfigWith(t, dataDir, "")
}

// kentuckyConfigWith is kentuckyConfig with more top-level YAML sections.
func kentuckyConfigWith(t *testing.T, dataDir, extra string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`
policy:
  time_zone: America/New_York
  jurisdiction: US-KY
  jurisdictions:
    US-KY:
      statute: US-KY-KRS-333.152
` + extra))
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t, dataDir)
	cfg.DataDir, cfg.Durability, cfg.MLLP, cfg.HTTP, cfg.NATS = base.DataDir, base.Durability, base.MLLP, base.HTTP, base.NATS
	cfg.Intake.Partitions = envInt("RESULTGATE_E2E_PARTITIONS", cfg.Intake.Partitions)
	return cfg
}

// benchTemplates reads testdata/bench: the routine labs and the sensitive reports.
func benchTemplates(t *testing.T) (labs, sensitive []string) {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "bench")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\r") + "\r"
	}
	return []string{read("lab_cmp.hl7"), read("lab_cbc.hl7")},
		[]string{read("path_surgical.hl7"), read("imaging_ct.hl7")}
}

// benchMessages builds n messages, 20% sensitive (every fifth), each with its own
// order numbers, 5,000 patients and 500 ordering providers in rotation.
// OBR-22 is now, so the 72 h clock of a hold has not run out.
func benchMessages(t *testing.T, n int, run string) (msgs [][]byte, sensitive int) {
	t.Helper()
	labs, sens := benchTemplates(t)
	now := time.Now().In(time.FixedZone("EST", -5*3600))
	obs := now.Add(-2 * time.Hour).Format("20060102150405-0700")
	rpt := now.Format("20060102150405-0700")
	msgs = make([][]byte, n)
	for i := range n {
		var tmpl string
		if i%5 == 4 {
			tmpl = sens[(i/5)%len(sens)]
			sensitive++
		} else {
			tmpl = labs[i%len(labs)]
		}
		r := strings.NewReplacer(
			"{{CTRL}}", "X", "{{MRN}}", fmt.Sprintf("BENCH%06d", i%5000),
			"{{PLACER}}", fmt.Sprintf("PL%s%07d", run, i), "{{FILLER}}", fmt.Sprintf("FL%s%07d", run, i),
			"{{PROV}}", fmt.Sprintf("DR%04d", i%500), "{{OBS}}", obs, "{{RPT}}", rpt)
		msgs[i] = []byte(r.Replace(tmpl))
	}
	return msgs, sensitive
}

// cpuTime is the process's user+system CPU time (getrusage).
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// progress returns how many inbound messages have their outcome written: the
// PORTAL messages (two per released result: HL7 and FHIR) and the hold records.
func progress(ctx context.Context, js jetstream.JetStream) (portal, holds uint64, err error) {
	s, err := js.Stream(ctx, bus.StreamPortal)
	if err != nil {
		return 0, 0, err
	}
	pi, err := s.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	kv, err := js.KeyValue(ctx, bus.KVHolds)
	if err != nil {
		return 0, 0, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, 0, err
	}
	return pi.State.Msgs, st.Values(), nil
}

type sample struct {
	at             time.Duration
	acked, written uint64
}

// waitCaughtUp polls progress every 100 ms from start until every one of n
// inbound messages has its feed messages or hold written, and returns the
// samples and the time it took.
func waitCaughtUp(t *testing.T, js jetstream.JetStream, start time.Time, n int, acked func() uint64, stop <-chan struct{}) ([]sample, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var samples []sample
	for {
		portal, holds, err := progress(ctx, js)
		if err != nil {
			t.Fatalf("progress: %v", err)
		}
		w := portal/2 + holds
		el := time.Since(start)
		samples = append(samples, sample{at: el, acked: acked(), written: w})
		if w >= uint64(n) && portal%2 == 0 {
			return samples, el
		}
		select {
		case <-stop:
			t.Fatalf("pipeline did not catch up: %d of %d written", w, n)
		case <-ctx.Done():
			t.Fatalf("pipeline did not catch up in time: %d of %d written", w, n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestE2EThroughput drives a fresh instance (embedded NATS, durability os, the
// Kentucky preset) over 8 MLLP connections as fast as they ACK with the 80/20
// mix, and measures how long it takes until every message has its portal feed
// messages (HL7 and FHIR) or its hold record written.
func TestE2EThroughput(t *testing.T) {
	e2eBenchEnabled(t)
	n := envInt("RESULTGATE_E2E_COUNT", 20000)
	rounds := envInt("RESULTGATE_E2E_ROUNDS", 3)
	for r := range rounds {
		t.Run(fmt.Sprintf("round%d", r+1), func(t *testing.T) {
			msgs, sens := benchMessages(t, n, fmt.Sprintf("T%d", r))
			a := startApp(t, kentuckyConfig(t, t.TempDir()))
			js := a.JetStream()
			cpu0, la0 := cpuTime(t), loadAvg()
			w0 := countWork(js)
			start := time.Now()
			done := make(chan loadgen.Result, 1)
			var ackedAt time.Duration
			var ackedN uint64
			var mu sync.Mutex
			go func() {
				res, err := loadgen.Run(context.Background(), loadgen.Config{
					Addr: a.MLLPAddr().String(), Conns: 8, Count: n, RunID: fmt.Sprintf("T%d", r),
				}, msgs)
				if err != nil {
					t.Errorf("loadgen: %v", err)
				}
				mu.Lock()
				ackedAt, ackedN = time.Since(start), uint64(res.Accepted)
				mu.Unlock()
				done <- res
			}()
			stop := make(chan struct{})
			samples, caught := waitCaughtUp(t, js, start, n, func() uint64 { mu.Lock(); defer mu.Unlock(); return ackedN }, stop)
			cpu := cpuTime(t) - cpu0
			work := countWork(js).minus(w0, n)
			res := <-done
			la1 := loadAvg()
			if res.Accepted != n {
				t.Fatalf("%d of %d accepted: %+v", res.Accepted, n, res)
			}
			// Steady rate: written between 20% and 80% of n, over the time it took.
			var t20, t80 time.Duration
			for _, s := range samples {
				if t20 == 0 && s.written >= uint64(n)/5 {
					t20 = s.at
				}
				if t80 == 0 && s.written >= uint64(n)*4/5 {
					t80 = s.at
				}
			}
			_, holds, _ := progress(context.Background(), js)
			steady := float64(n*3/5) / (t80 - t20).Seconds()
			t.Logf("E2E-THROUGHPUT round=%d n=%d sensitive=%d holds=%d intake_ack_msg_s=%.0f intake_s=%.2f caught_up_s=%.2f end_to_end_msg_s=%.0f steady_20_80_msg_s=%.0f cpu_us_per_msg=%.0f %s ack_p50_ms=%.2f ack_p99_ms=%.2f load=%q->%q",
				r+1, n, sens, holds, res.MsgPerSec, ackedAt.Seconds(), caught.Seconds(), float64(n)/caught.Seconds(), steady,
				float64(cpu.Microseconds())/float64(n), work, res.P50Millis, res.P99Millis, la0, la1)
			if holds != uint64(sens) {
				t.Errorf("%d holds, want %d (one per sensitive message)", holds, sens)
			}
		})
	}
}

// work is what a run cost besides time, counted rather than timed so that
// it does not vary with the machine's load: heap allocations of the whole
// process (load generator, intake, NATS server, pipeline) and the messages
// the application's NATS connection sent (publishes, requests, acks) and
// received (replies, deliveries).
// The runtime's estimate of the CPU time the garbage collector used
// (runtime/metrics) is logged beside them.
type work struct {
	mallocs, natsOut, natsIn uint64
	gcCPU                    float64
}

func countWork(js jetstream.JetStream) work {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := js.Conn().Stats()
	gc := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(gc)
	return work{mallocs: ms.Mallocs, natsOut: st.OutMsgs, natsIn: st.InMsgs, gcCPU: gc[0].Value.Float64()}
}

// perMsg is w less w0 per message of n, as it is logged.
type perMsg struct{ allocs, natsOut, natsIn, gcMicros float64 }

func (w work) minus(w0 work, n int) perMsg {
	f := float64(n)
	return perMsg{float64(w.mallocs-w0.mallocs) / f, float64(w.natsOut-w0.natsOut) / f, float64(w.natsIn-w0.natsIn) / f,
		(w.gcCPU - w0.gcCPU) * 1e6 / f}
}

func (p perMsg) String() string {
	return fmt.Sprintf("allocs_per_msg=%.0f nats_out_per_msg=%.2f nats_in_per_msg=%.2f gc_cpu_us_per_msg=%.0f", p.allocs, p.natsOut, p.natsIn, p.gcMicros)
}

// readStream calls fn for every message in stream (an ordered consumer from the
// first sequence), up to the stream's last sequence at the time of the call.
func readStream(t *testing.T, js jetstream.JetStream, stream string, fn func(jetstream.Msg)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range b.Messages() {
			got++
			fn(m)
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.Sequence.Stream >= info.State.LastSeq {
				return
			}
		}
		if got == 0 {
			t.Fatalf("%s: no more messages before sequence %d", stream, info.State.LastSeq)
		}
	}
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d))*p + 0.5)
	return d[min(max(i-1, 0), len(d)-1)]
}

// TestE2ELatency sends the mix open loop at RESULTGATE_E2E_RATE msg/s (default
// 1,000) over 8 connections for RESULTGATE_E2E_SECONDS (default 15 s), then
// reads back, per inbound message, its receipt time (the intake's
// Resultgate-Received-At header on HL7_IN) and the time its outcome was stored:
// the later of its two PORTAL messages (JetStream's store timestamp, the value of
// Nats-Time-Stamp) or its hold record (the KV entry's store timestamp; created_at
// is also reported).
func TestE2ELatency(t *testing.T) {
	e2eBenchEnabled(t)
	rate := envInt("RESULTGATE_E2E_RATE", 1000)
	secs := envInt("RESULTGATE_E2E_SECONDS", 15)
	rounds := envInt("RESULTGATE_E2E_ROUNDS", 3)
	for r := range rounds {
		t.Run(fmt.Sprintf("round%d", r+1), func(t *testing.T) {
			n := rate * secs
			msgs, _ := benchMessages(t, n, fmt.Sprintf("L%d", r))
			a := startApp(t, kentuckyConfig(t, t.TempDir()))
			js := a.JetStream()
			cpu0, la0 := cpuTime(t), loadAvg()
			start := time.Now()
			res, err := loadgen.Run(context.Background(), loadgen.Config{
				Addr: a.MLLPAddr().String(), Conns: 8, Count: n, Rate: float64(rate), RunID: fmt.Sprintf("L%d", r),
			}, msgs)
			if err != nil || res.Accepted != n {
				t.Fatalf("loadgen: %v %+v", err, res)
			}
			_, caught := waitCaughtUp(t, js, start, n, func() uint64 { return uint64(n) }, nil)
			cpu := cpuTime(t) - cpu0
			la1 := loadAvg()

			received := make(map[uint64]time.Time, n)
			readStream(t, js, bus.StreamHL7In, func(m jetstream.Msg) {
				md, _ := m.Metadata()
				ts, err := time.Parse(time.RFC3339Nano, m.Headers().Get(bus.HeaderReceivedAt))
				if err != nil {
					t.Fatalf("received-at %q: %v", m.Headers().Get(bus.HeaderReceivedAt), err)
				}
				received[md.Sequence.Stream] = ts
			})
			fed := make(map[uint64]time.Time, n)
			var feedLat, holdLat, holdCreated, fhirLat, hl7Lat []time.Duration
			readStream(t, js, bus.StreamPortal, func(m jetstream.Msg) {
				md, _ := m.Metadata()
				seq, err := strconv.ParseUint(m.Headers().Get(bus.HeaderInboundSeq), 10, 64)
				if err != nil {
					t.Fatalf("inbound seq: %v", err)
				}
				d := md.Timestamp.Sub(received[seq])
				if strings.HasPrefix(m.Subject(), "portal.fhir.") {
					fhirLat = append(fhirLat, d)
				} else {
					hl7Lat = append(hl7Lat, d)
				}
				if md.Timestamp.After(fed[seq]) {
					fed[seq] = md.Timestamp
				}
			})
			for seq, ts := range fed {
				feedLat = append(feedLat, ts.Sub(received[seq]))
			}
			readStream(t, js, "KV_"+bus.KVHolds, func(m jetstream.Msg) {
				md, _ := m.Metadata()
				var h hold.Hold
				if err := json.Unmarshal(m.Data(), &h); err != nil {
					t.Fatal(err)
				}
				holdLat = append(holdLat, md.Timestamp.Sub(received[h.Inbound.Seq]))
				holdCreated = append(holdCreated, h.CreatedAt.Sub(received[h.Inbound.Seq]))
			})
			all := append(slices.Clone(feedLat), holdLat...)
			for _, s := range [][]time.Duration{all, feedLat, holdLat, holdCreated, fhirLat, hl7Lat} {
				slices.Sort(s)
			}
			if len(all) != n {
				t.Errorf("%d outcomes for %d messages", len(all), n)
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			t.Logf("E2E-LATENCY round=%d rate=%d n=%d achieved_msg_s=%.0f caught_up_s=%.2f cpu_us_per_msg=%.0f load=%q->%q "+
				"all_p50_ms=%.2f all_p90_ms=%.2f all_p99_ms=%.2f all_max_ms=%.1f feed_p50_ms=%.2f feed_p99_ms=%.2f "+
				"hold_p50_ms=%.2f hold_p99_ms=%.2f hold_created_p99_ms=%.2f hl7_p99_ms=%.2f fhir_p99_ms=%.2f ack_p50_ms=%.2f ack_p99_ms=%.2f",
				r+1, rate, n, res.MsgPerSec, caught.Seconds(), float64(cpu.Microseconds())/float64(n), la0, la1,
				ms(pct(all, .5)), ms(pct(all, .9)), ms(pct(all, .99)), ms(pct(all, 1)), ms(pct(feedLat, .5)), ms(pct(feedLat, .99)),
				ms(pct(holdLat, .5)), ms(pct(holdLat, .99)), ms(pct(holdCreated, .99)), ms(pct(hl7Lat, .99)), ms(pct(fhirLat, .99)),
				res.P50Millis, res.P99Millis)
		})
	}
}

// --- 100,000 open holds ---

const benchProviders = 500

// writeHolds stores holds copies of proto (a hold the pipeline wrote) as open
// holds in the holds bucket, directly as KV puts (the bucket's subject), spread
// over benchProviders ordering providers and distinct patients, with deadlines
// between 1 and 72 h ahead. IDs continue from `from`.
func writeHolds(t *testing.T, js jetstream.JetStream, proto *hold.Hold, from, count int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	now := time.Now().UTC()
	for i := from; i < from+count; i++ {
		h := *proto
		h.ID = fmt.Sprintf("hbench%019d", i)
		h.PatientKey = fmt.Sprintf("%024x", i)
		h.ProviderID = fmt.Sprintf("DR%04d", i%benchProviders)
		h.OrderKey = fmt.Sprintf("o%023x", i)
		h.Inbound.Seq = uint64(i + 1)
		h.Inbound.MsgID = fmt.Sprintf("SYNAPLIS|SYNPATH|B%d", i)
		h.Inbound.ControlID = fmt.Sprintf("B%d", i)
		h.Deadline = now.Add(time.Duration(i%4320+60) * time.Minute)
		h.RemindAt = h.Deadline.Add(-12 * time.Hour)
		h.EscalateAt = h.Deadline.Add(-2 * time.Hour)
		// As a running instance would have left them: reminders and
		// escalations whose time has passed were sent (unless
		// RESULTGATE_E2E_OVERDUE=1, which leaves them all due at the restart,
		// as after an outage of half a day).
		if os.Getenv("RESULTGATE_E2E_OVERDUE") != "1" {
			h.Reminded = !h.RemindAt.After(now)
			h.Escalated = !h.EscalateAt.After(now)
		}
		data, err := json.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + bus.KVHolds + "." + h.ID, Data: data}); err != nil {
			t.Fatal(err)
		}
		if i%2000 == 1999 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				t.Fatal("publishing holds timed out")
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing holds timed out")
	}
}

// holdsResult is what the child process measures after a restart.
type holdsResult struct {
	Holds         int     `json:"holds"`
	StartSeconds  float64 `json:"start_s"`
	ReadySeconds  float64 `json:"ready_s"`
	ListP50Micros float64 `json:"list_p50_us"`
	ListP99Micros float64 `json:"list_p99_us"`
	PerProvider   int     `json:"per_provider"`
	HTTPP50Millis float64 `json:"http_p50_ms"`
	HTTPP99Millis float64 `json:"http_p99_ms"`
	HTTPTotal     int     `json:"http_total"`
	RSSMiB        float64 `json:"rss_mib"`
	HWMMiB        float64 `json:"hwm_mib"`
	// SteadyRSSMiB is VmRSS 30 s after the measurements, the instance idle:
	// the file store's block caches expire after 10 s and the runtime returns
	// freed pages to the OS in the background.
	SteadyRSSMiB float64 `json:"steady_rss_mib"`
	HeapMiB      float64 `json:"heap_mib"`
	CPUSeconds   float64 `json:"cpu_s"`
	Load         string  `json:"load"`
}

// TestE2EHolds grows one data directory to 10k, 50k and 100k open holds and,
// at each size, restarts resultgate in a fresh child process (this test binary
// running TestE2EHoldsChild, which is app.Start as `resultgate serve` runs it)
// and records restart to ready, listing one provider's holds (Service.ListHolds
// and GET /api/holds with that clinician's token) and the child's RSS.
func TestE2EHolds(t *testing.T) {
	e2eBenchEnabled(t)
	sizes := []int{10000, 50000, 100000}
	if s := os.Getenv("RESULTGATE_E2E_HOLDS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	rounds := envInt("RESULTGATE_E2E_ROUNDS", 3)
	// RESULTGATE_E2E_DIR keeps the data directory (it must not exist yet), so
	// that TestE2EHoldsChild can be run on it again by hand, e.g. under a profiler.
	dir := os.Getenv("RESULTGATE_E2E_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := kentuckyConfig(t, dir)
	tokFile := filepath.Join(dir, "tokens.yaml")
	tok, err := auth.NewToken(tokFile, "Dr Synth Seven", auth.RoleClinician, "DR0007", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-token"), []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}

	// One real hold, written by the pipeline, is the prototype of all the others.
	msgs, _ := benchMessages(t, 5, "P")
	a := New(cfg, zerolog.Nop())
	// The whole measurement (three sizes, three restarts each) takes minutes:
	// the context bounds it as a whole, not one step.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := loadgen.Run(ctx, loadgen.Config{Addr: a.MLLPAddr().String(), Conns: 1, Count: 1}, msgs[4:5]); err != nil || res.Accepted != 1 {
		t.Fatalf("prototype: %v %+v", err, res)
	}
	var proto *hold.Hold
	testutil.Eventually(t, 30*time.Second, "prototype hold", func() bool {
		hs, _ := a.Service().ListHolds(ctx, holdview.Filter{})
		if len(hs) == 1 {
			proto, _ = a.Service().GetHold(ctx, hs[0].ID)
		}
		return proto != nil
	})
	pj, _ := json.Marshal(proto)
	t.Logf("prototype hold record: %d bytes of JSON", len(pj))
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	have := 0
	for _, size := range sizes {
		// Write the extra holds with the instance up (the bucket exists), then stop it.
		a := New(cfg, zerolog.Nop())
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		w0 := time.Now()
		writeHolds(t, a.JetStream(), proto, have, size-have)
		t.Logf("wrote %d holds in %.1f s", size-have, time.Since(w0).Seconds())
		have = size
		sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := a.Stop(sctx); err != nil {
			t.Fatal(err)
		}
		scancel()
		for r := range rounds {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestE2EHoldsChild$", "-test.v")
			cmd.Env = append(os.Environ(), "RESULTGATE_E2E_CHILD_DIR="+dir, "RESULTGATE_E2E_CHILD_HOLDS="+strconv.Itoa(size+1))
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var line string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if i := strings.Index(sc.Text(), "E2E-HOLDS "); i >= 0 {
					line = sc.Text()[i+len("E2E-HOLDS "):]
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v", err)
			}
			var hr holdsResult
			if err := json.Unmarshal([]byte(line), &hr); err != nil {
				t.Fatalf("child output %q: %v", line, err)
			}
			t.Logf("E2E-HOLDS holds=%d round=%d start_s=%.2f ready_s=%.2f list_p50_us=%.0f list_p99_us=%.0f per_provider=%d http_p50_ms=%.2f http_p99_ms=%.2f rss_mib=%.0f hwm_mib=%.0f heap_mib=%.0f steady_rss_mib=%.0f cpu_s=%.2f load=%q",
				hr.Holds, r+1, hr.StartSeconds, hr.ReadySeconds, hr.ListP50Micros, hr.ListP99Micros, hr.PerProvider,
				hr.HTTPP50Millis, hr.HTTPP99Millis, hr.RSSMiB, hr.HWMMiB, hr.HeapMiB, hr.SteadyRSSMiB, hr.CPUSeconds, hr.Load)
		}
	}
}

func procStatusMiB(field string) float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// TestE2EHoldsChild is the restarted instance of TestE2EHolds (run only as its
// child process).
func TestE2EHoldsChild(t *testing.T) {
	dir := os.Getenv("RESULTGATE_E2E_CHILD_DIR")
	if dir == "" {
		t.Skip("child of TestE2EHolds")
	}
	want, _ := strconv.Atoi(os.Getenv("RESULTGATE_E2E_CHILD_HOLDS"))
	tok, err := os.ReadFile(filepath.Join(dir, "bench-token"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := kentuckyConfig(t, dir)
	a := New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// RESULTGATE_E2E_CPU_PROFILE profiles the restart, from start to ready.
	if path := os.Getenv("RESULTGATE_E2E_CPU_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile() // also stopped at ready, below; a second stop does nothing
	}
	t0 := time.Now()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer scancel()
		_ = a.Stop(sctx)
	}()
	started := time.Since(t0)
	base := "http://" + a.HTTPAddr().String()
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Since(t0) > 4*time.Minute {
			t.Fatal("not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ready := time.Since(t0)
	cpu := cpuTime(t)
	pprof.StopCPUProfile()
	svc := a.Service()
	if all, _ := svc.ListHolds(ctx, holdview.Filter{State: hold.StateHeld}); len(all) != want {
		t.Fatalf("view has %d open holds, want %d", len(all), want)
	}
	var lat []time.Duration
	per := 0
	for i := range 1000 {
		p := fmt.Sprintf("DR%04d", i%benchProviders)
		s := time.Now()
		l, _ := svc.ListHolds(ctx, holdview.Filter{Provider: p, State: hold.StateHeld})
		lat = append(lat, time.Since(s))
		per = max(per, len(l))
	}
	slices.Sort(lat)
	var hlat []time.Duration
	total := 0
	cl := &http.Client{Timeout: 30 * time.Second}
	for range 300 {
		req, _ := http.NewRequest("GET", base+"/api/holds", nil)
		req.Header.Set("Authorization", "Bearer "+string(tok))
		s := time.Now()
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Total int `json:"total"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		hlat = append(hlat, time.Since(s))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /api/holds: %d %v", resp.StatusCode, err)
		}
		total = body.Total
	}
	slices.Sort(hlat)
	var ms runtimeMem
	ms.read()
	// The live heap of the restarted instance, for `go tool pprof`.
	writeHeapProfile(t, fmt.Sprintf("-%d", want), true)
	res := holdsResult{
		Holds: want, StartSeconds: started.Seconds(), ReadySeconds: ready.Seconds(),
		ListP50Micros: float64(pct(lat, .5).Nanoseconds()) / 1e3, ListP99Micros: float64(pct(lat, .99).Nanoseconds()) / 1e3,
		PerProvider: per, HTTPP50Millis: float64(pct(hlat, .5).Microseconds()) / 1e3, HTTPP99Millis: float64(pct(hlat, .99).Microseconds()) / 1e3,
		HTTPTotal: total, RSSMiB: procStatusMiB("VmRSS"), HWMMiB: procStatusMiB("VmHWM"), HeapMiB: ms.heapMiB,
		CPUSeconds: cpu.Seconds(), Load: loadAvg(),
	}
	time.Sleep(30 * time.Second)
	res.SteadyRSSMiB = procStatusMiB("VmRSS")
	writeHeapProfile(t, fmt.Sprintf("-%d-steady", want), false)
	b, _ := json.Marshal(res)
	fmt.Printf("E2E-HOLDS %s\n", b)
}

type runtimeMem struct{ heapMiB float64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapMiB = float64(ms.HeapAlloc) / (1 << 20)
}

// writeHeapProfile writes the heap profile to $RESULTGATE_HEAP_PROFILE+suffix
// when that variable is set, after a garbage collection when gc is true.
func writeHeapProfile(t *testing.T, suffix string, gc bool) {
	t.Helper()
	path := os.Getenv("RESULTGATE_HEAP_PROFILE")
	if path == "" {
		return
	}
	if gc {
		runtime.GC()
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}
