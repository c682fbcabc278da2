package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
)

// BenchmarkServeMemory asks what, besides JetStream's duplicate tracking,
// grows with the number of messages. It runs the whole daemon in process
// (durability os) with a short duplicate window, sends b.N copies of the 2 KB
// ORU fixture over 8 MLLP connections in phases, and after each phase waits
// until the classify step has processed every message and the duplicate window
// has passed (so that every stream's Msg-Id entries have expired), collects
// garbage and records the live heap. The live heap after the first phase is the
// base; what it gains per message over the later phases is reported as
// live-B/msg (0 when flat).
//
// Environment: RESULTGATE_MEM_WINDOW (intake.duplicate_window, default 10s;
// over a minute, the phases do not wait for it, so the Msg-Ids stay in memory
// and live-B/msg includes them: with 24h it measures the dedup cost),
// RESULTGATE_MEM_PHASES (default 4), RESULTGATE_MEM_UNIQUE=1 to give every copy
// its own patient (PID-3) and orders (OBR-3), as real traffic has, instead of
// the fixture's one patient and order; RESULTGATE_MEM_CONFIG=FILE starts from
// that configuration file (e.g. a policy that holds the fixture, to measure held
// results); RESULTGATE_HEAP_PROFILE=PREFIX writes the
// live-heap profile of each phase to PREFIX.<phase>, to compare with
// `go tool pprof -sample_index=inuse_space -base PREFIX.1 -top PREFIX.4`.
func BenchmarkServeMemory(b *testing.B) {
	if b.N == 1 {
		return // the testing package's first probe run; use -benchtime Nx
	}
	window := 10 * time.Second
	if v := os.Getenv("RESULTGATE_MEM_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		window = d
	}
	phases := 4
	if v := os.Getenv("RESULTGATE_MEM_PHASES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			b.Fatalf("RESULTGATE_MEM_PHASES=%q: need a number >= 2", v)
		}
		phases = n
	}
	unique := os.Getenv("RESULTGATE_MEM_UNIQUE") == "1"

	cfg := config.Default()
	if path := os.Getenv("RESULTGATE_MEM_CONFIG"); path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			b.Fatal(err)
		}
	}
	cfg.Intake.DuplicateWindow = window
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	a := startBenchApp(ctx, b, cfg, config.DurabilityOS)
	tmpl := readFixture(b, "oru_r01_v251.hl7")
	run := strconv.FormatInt(time.Now().UnixNano()%1e12, 36)

	processed := func() uint64 {
		var n uint64
		for _, v := range a.Service().Metrics().Processed {
			n += v
		}
		return n
	}
	var sent atomic.Int64
	send := func(count int) {
		var wg sync.WaitGroup
		var failed atomic.Int64
		end := sent.Load() + int64(count)
		for range benchConns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.MLLPAddr().String(), AckTimeout: 30 * time.Second})
				if err != nil {
					failed.Add(1)
					return
				}
				defer cl.Close()
				var buf []byte
				for {
					i := sent.Add(1)
					if i > end {
						sent.Add(-1)
						return
					}
					msg := tmpl
					if unique {
						id := []byte(run + strconv.FormatInt(i, 10))
						msg = bytes.Replace(msg, []byte("MRN0001"), append([]byte("MRN"), id...), 1)
						msg = bytes.ReplaceAll(msg, []byte("FIL-2"), append(append([]byte("FIL-"), id...), '-', '2'))
					}
					buf = loadgen.WithControlID(buf[:0], msg, run+"-"+strconv.FormatInt(i, 10))
					ack, err := cl.Send(ctx, buf)
					if err != nil || (loadgen.AckCode(ack) != "AA" && loadgen.AckCode(ack) != "CA") {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d sends failed or were not accepted", n)
		}
	}

	per := b.N / phases
	if per < 1 {
		per = 1
	}
	// subjects returns the number of distinct subjects in every stream (each
	// costs nats-server an entry in its in-memory per-subject index), as
	// "NAME=N ..." and in total.
	subjects := func() (string, uint64) {
		var out []string
		var total uint64
		for info := range a.JetStream().ListStreams(ctx).Info() {
			out = append(out, fmt.Sprintf("%s=%d", info.Config.Name, info.State.NumSubjects))
			total += info.State.NumSubjects
		}
		slices.Sort(out)
		return strings.Join(out, " "), total
	}
	var live, subj []uint64
	b.ResetTimer()
	for ph := 1; ph <= phases; ph++ {
		send(per)
		total := uint64(sent.Load())
		for processed() < total {
			if ctx.Err() != nil {
				b.Fatalf("phase %d: classify processed %d of %d", ph, processed(), total)
			}
			time.Sleep(200 * time.Millisecond) // polling the pipeline's counter
		}
		if window <= time.Minute {
			time.Sleep(window + 2*time.Second) // every stream's Msg-Ids expire
		} else {
			time.Sleep(2 * time.Second) // a long window stays: its Msg-Ids are measured too
		}
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		names, nsubj := subjects()
		live, subj = append(live, ms.HeapAlloc), append(subj, nsubj)
		b.Logf("phase %d: %d messages sent and processed, live heap %.1f MB, heap objects %d; subjects per stream: %s",
			ph, total, float64(ms.HeapAlloc)/1e6, ms.HeapObjects, names)
		if prefix := os.Getenv("RESULTGATE_HEAP_PROFILE"); prefix != "" {
			f, err := os.Create(fmt.Sprintf("%s.%d", prefix, ph))
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				b.Fatal(err)
			}
			_ = f.Close()
		}
	}
	b.StopTimer()
	grown := float64(live[len(live)-1]) - float64(live[0])
	b.ReportMetric(grown/float64(per*(phases-1)), "live-B/msg")
	b.ReportMetric(float64(subj[len(subj)-1]-subj[0])/float64(per*(phases-1)), "subjects/msg")
	if d := subj[len(subj)-1] - subj[0]; d > 0 {
		b.ReportMetric(grown/float64(d), "live-B/subject")
	}
}
