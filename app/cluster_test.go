package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// appCluster is a three-node JetStream cluster started in-process on loopback,
// each node with its own file store under t.TempDir().
type appCluster struct {
	t    *testing.T
	srvs []*server.Server
}

// startAppCluster starts n clustered JetStream servers (testutil.StartJSCluster).
func startAppCluster(t *testing.T, n int) *appCluster {
	t.Helper()
	return &appCluster{t: t, srvs: testutil.StartJSCluster(t, n, "RG", nil, nil)}
}

// urls returns the comma-separated client URLs of every node (nats.url).
func (c *appCluster) urls() string { return testutil.ClusterURLs(c.srvs) }

// clusterAppConfig is one resultgate instance of the cluster test: the
// Kentucky statute preset (pathology likely to show malignancy is held 72 h
// after OBR-22), R3 on the shared cluster, the shared partition key, short
// scheduler and redelivery intervals so the test stays bounded.
func clusterAppConfig(t *testing.T, urls, keyFile string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`
policy:
  time_zone: America/New_York
  jurisdiction: US-KY
  jurisdictions:
    US-KY:
      statute: US-KY-KRS-333.152
holds:
  scheduler_tick: 50ms
  reconcile_every: 500ms
  ack_wait: 2s
  retry_backoff: [100ms]
  max_deliver: 100
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Durability = config.DurabilityOS
	cfg.MLLP.Addr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.NATS.URL = urls
	cfg.NATS.Listen = ""
	cfg.NATS.Replicas = 3
	cfg.Intake.Partitions = 4 // four R3 classify consumers: enough to share, light on two cores
	cfg.Intake.StoreTimeout = 10 * time.Second
	cfg.Intake.PartitionKeyFile = keyFile
	return cfg
}

// clusterMsg is one message of the cluster test and what must become of it.
type clusterMsg struct {
	id   string
	raw  []byte
	kind string // "lab", "plain-path", "held", "deadline"
}

// obr22 formats t as an HL7 DTM with offset, for OBR-22 (the statute's clock).
func obr22(t time.Time) string { return t.UTC().Format("20060102150405") + "+0000" }

// clusterORU builds a message of kind with control ID id. Held pathology is
// finalised now (deadline in 72 h); "deadline" pathology was finalised almost
// 72 h ago, so its statute deadline is at deadline.
func clusterORU(kind, id string, deadline time.Time) []byte {
	now := time.Now()
	switch kind {
	case "lab":
		return msg(labORU, id)
	case "plain-path":
		s := strings.Replace(string(msg(pathORU, id)), "invasive ductal carcinoma, grade 2", "benign fibroadenoma, no atypia", 1)
		return []byte(strings.Replace(s, obr22Text, obr22(now), 1))
	case "held":
		return []byte(strings.Replace(string(msg(pathORU, id)), obr22Text, obr22(now), 1))
	case "deadline":
		return []byte(strings.Replace(string(msg(pathORU, id)), obr22Text, obr22(deadline.Add(-72*time.Hour)), 1))
	}
	panic("unknown kind " + kind)
}

// sendUntilAA sends m to addr until it is positively acknowledged (an
// interface engine resends the same control ID after AE or a lost connection;
// the intake stores it once). It returns the number of negative answers.
func sendUntilAA(t *testing.T, addr string, m []byte, id string) int {
	t.Helper()
	nak := 0
	testutil.Eventually(t, 30*time.Second, "AA for "+id, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: addr, AckTimeout: 12 * time.Second})
		if err != nil {
			nak++
			return false
		}
		defer cl.Close()
		ack, err := cl.Send(ctx, m)
		if err == nil && loadgen.AckCode(ack) == "AA" {
			return true
		}
		nak++
		return false
	})
	return nak
}

// storedAtHeader is set by portalByControlID on the headers it returns: when
// the PORTAL stream stored the message (for "not in the feed before its
// release").
const storedAtHeader = "Test-Stored-At"

// portalByControlID reads the whole PORTAL stream with an ordered consumer and
// returns, per control ID, the HL7 feed messages' headers and the count of FHIR
// feed messages.
func portalByControlID(js jetstream.JetStream) (hl7 map[string][]nats.Header, fhir map[string]int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamPortal)
	if err != nil {
		return nil, nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, nil, err
	}
	hl7, fhir = map[string][]nats.Header{}, map[string]int{}
	if info.State.Msgs == 0 {
		return hl7, fhir, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, nil, err
	}
	for got := uint64(0); got < info.State.Msgs; {
		batch, err := cons.Fetch(int(min(info.State.Msgs-got, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			id := m.Headers().Get(bus.HeaderControlID)
			if strings.HasPrefix(m.Subject(), bus.SubjectPortalHL7Prefix) {
				h := m.Headers()
				if md, err := m.Metadata(); err == nil {
					h.Set(storedAtHeader, md.Timestamp.UTC().Format(time.RFC3339Nano))
				}
				hl7[id] = append(hl7[id], h)
			} else {
				fhir[id]++
			}
		}
		if err := batch.Error(); err != nil {
			return nil, nil, err
		}
		if n == 0 {
			return nil, nil, fmt.Errorf("PORTAL: read %d of %d messages", got, info.State.Msgs)
		}
		got += uint64(n)
	}
	return hl7, fhir, nil
}

// holdsByControlID reads every hold record from the holds bucket.
func holdsByControlID(js jetstream.JetStream) (map[string]*hold.Hold, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.KVHolds)
	if err != nil {
		return nil, err
	}
	store := store.NewHolds(kv)
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]*hold.Hold{}
	for k := range keys.Keys() {
		h, err := store.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		out[h.Inbound.ControlID] = h
	}
	return out, nil
}

// releases counts the transitions of h into released.
func releases(h *hold.Hold) int {
	n := 0
	for _, tr := range h.Transitions {
		if tr.To == hold.StateReleased {
			n++
		}
	}
	return n
}

// TestClusterInstancesSurviveLeaderAndInstanceLoss runs two resultgate
// instances (app.App, nats.url = all three nodes, R3, one partition key) on an
// in-process three-node JetStream cluster. Messages go in over MLLP: routine
// labs, pathology without a basis, pathology that the Kentucky preset holds for
// 72 h, and pathology whose 72 h end a few seconds into the run. Part-way the
// HL7_IN stream leader's server is shut down, and then instance A dies (its
// NATS connection drops under it, as when the process is killed); the rest goes
// through instance B. Every message that got AA must end exactly once in the
// portal feed or exactly once as an open hold, no held result may be in the
// feed, and the short holds must be released by their deadline — by B, the
// only instance left — exactly once.
func TestClusterInstancesSurviveLeaderAndInstanceLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster test; skipped with -short")
	}
	start := time.Now()
	cl := startAppCluster(t, 3)
	keyFile := filepath.Join(t.TempDir(), "partition.key")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}

	startInstance := func(name string) *App {
		a := New(clusterAppConfig(t, cl.urls(), keyFile), zerolog.Nop())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Start(ctx); err != nil {
			t.Fatalf("starting instance %s: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = a.Stop(ctx) // A's connection is gone by then; this only frees its goroutines
		})
		return a
	}
	a := startInstance("A")
	b := startInstance("B")
	js := b.JetStream()

	// The short holds end 20 s from now: after A is gone (also under -race on a
	// loaded machine), within the test's bound.
	deadline := time.Now().Add(20 * time.Second).Truncate(time.Second)
	var msgs []clusterMsg
	for i := range 4 {
		id := fmt.Sprintf("DL%d", i)
		msgs = append(msgs, clusterMsg{id: id, kind: "deadline", raw: clusterORU("deadline", id, deadline)})
	}
	const total = 80
	for i := range total {
		kind := [...]string{"lab", "held", "lab", "plain-path"}[i%4]
		id := fmt.Sprintf("CL%d", i)
		msgs = append(msgs, clusterMsg{id: id, kind: kind, raw: clusterORU(kind, id, deadline)})
	}
	var leader string
	naks := 0
	aDown := false
	for i, m := range msgs {
		switch i {
		case len(msgs) / 3:
			leader = testutil.ShutdownStreamLeader(t, cl.srvs, js, bus.StreamHL7In)
			t.Logf("shut down the HL7_IN leader %s after %d messages (%.1fs)", leader, i, time.Since(start).Seconds())
		case len(msgs) / 2:
			testutil.Eventually(t, 10*time.Second, "instance A classifying", func() bool {
				return a.Service().Metrics().Processed["acked"] > 3
			})
			a.nc.Close() // instance A dies: no NATS, no scheduler, no classify step
			aDown = true
			t.Logf("instance A died after %d messages (%.1fs)", i, time.Since(start).Seconds())
		}
		target := a
		if aDown || i%2 == 1 {
			target = b
		}
		naks += sendUntilAA(t, target.MLLPAddr().String(), m.raw, m.id)
	}
	t.Logf("%d messages AA'd (%d negative answers or lost connections resent) in %.1fs", len(msgs), naks, time.Since(start).Seconds())

	// The deadline holds must still be open now that A is gone, or the test
	// would not show the survivor firing them.
	var holds map[string]*hold.Hold
	testutil.Eventually(t, 10*time.Second, "deadline holds created", func() bool {
		var err error
		if holds, err = holdsByControlID(js); err != nil {
			return false
		}
		for _, m := range msgs {
			if m.kind == "deadline" && holds[m.id] == nil {
				return false
			}
		}
		return true
	})
	for _, m := range msgs {
		if m.kind == "deadline" {
			h := holds[m.id]
			if h == nil || h.State != hold.StateHeld {
				t.Fatalf("%s: want an open hold when A died, got %+v (raise the deadline offset)", m.id, h)
			}
			if !h.Deadline.Equal(deadline) {
				t.Errorf("%s: deadline %s, want %s", m.id, h.Deadline, deadline)
			}
		}
	}

	// Everything decided: the released results and the fired deadlines are in
	// the feed, the long holds are open.
	var feed map[string][]nats.Header
	var fhir map[string]int
	testutil.Eventually(t, 45*time.Second, "every AA'd message in the feed or an open hold", func() bool {
		if time.Now().Before(deadline) {
			return false
		}
		var err error
		if feed, fhir, err = portalByControlID(js); err != nil {
			return false
		}
		if holds, err = holdsByControlID(js); err != nil {
			return false
		}
		for _, m := range msgs {
			switch m.kind {
			case "held":
				if h := holds[m.id]; h == nil || h.State != hold.StateHeld {
					return false
				}
			default:
				if len(feed[m.id]) == 0 || fhir[m.id] == 0 {
					return false
				}
			}
		}
		return true
	})
	var bad []string
	for _, m := range msgs {
		h := holds[m.id]
		switch m.kind {
		case "held":
			if n := len(feed[m.id]); n != 0 {
				bad = append(bad, fmt.Sprintf("%s: held result in the feed %d times", m.id, n))
			}
			if !h.HasBasis("state-law") {
				bad = append(bad, fmt.Sprintf("%s: hold bases %+v, want state-law", m.id, h.Bases))
			}
		case "deadline":
			if releases(h) != 1 || h.State != hold.StateReleased || h.Release.Path != hold.PathDeadline {
				bad = append(bad, fmt.Sprintf("%s: state %s, %d releases, release %+v; want released once at the deadline", m.id, h.State, releases(h), h.Release))
			}
			if at := h.Release.At; at.Before(deadline) {
				bad = append(bad, fmt.Sprintf("%s: released at %s, before its deadline %s", m.id, at, deadline))
			}
			fallthrough
		default:
			if n := len(feed[m.id]); n != 1 || fhir[m.id] != 1 {
				bad = append(bad, fmt.Sprintf("%s (%s): %d HL7 and %d FHIR feed messages, want 1 each", m.id, m.kind, n, fhir[m.id]))
				continue
			}
			path := feed[m.id][0].Get(bus.HeaderReleasePath)
			want := string(hold.PathImmediate)
			if m.kind == "deadline" {
				want = string(hold.PathDeadline)
			}
			if path != want {
				bad = append(bad, fmt.Sprintf("%s (%s): feed release path %q, want %q", m.id, m.kind, path, want))
			}
			if m.kind == "deadline" {
				stored, err := time.Parse(time.RFC3339Nano, feed[m.id][0].Get(storedAtHeader))
				if err != nil || stored.Before(h.Release.At) || stored.Before(deadline) {
					bad = append(bad, fmt.Sprintf("%s: in the feed at %s (%v), before its release at %s or deadline %s", m.id, stored, err, h.Release.At, deadline))
				}
			}
			if m.kind != "deadline" && h != nil {
				bad = append(bad, fmt.Sprintf("%s (%s): released at once but has a hold record %+v", m.id, m.kind, h))
			}
		}
	}
	sent := map[string]bool{}
	for _, m := range msgs {
		sent[m.id] = true
	}
	for id := range feed {
		if !sent[id] {
			bad = append(bad, fmt.Sprintf("feed has %q, which was never sent", id))
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
	t.Logf("checked %d messages (%d in the feed, %d holds) in %.1fs", len(msgs), len(feed), len(holds), time.Since(start).Seconds())
}
