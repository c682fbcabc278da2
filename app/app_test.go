package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

func testConfig(t *testing.T, dataDir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Durability = config.DurabilityOS
	cfg.MLLP.Addr = "127.0.0.1:0"
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:-1"
	return cfg
}

func startApp(t *testing.T, cfg config.Config) *App {
	t.Helper()
	a := New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return a
}

func fixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "hl7", "oru_r01_v251.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storedControlIDs returns how often each MSH-10 is stored in HL7_IN.
func storedControlIDs(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		t.Fatalf("stream %s: %v", bus.StreamHL7In, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		got[m.Header.Get(bus.HeaderHL7ControlID)]++
	}
	return got
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func TestServeStoresBeforeAck(t *testing.T) {
	a := startApp(t, testConfig(t, t.TempDir()))
	tmpl := fixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.MLLPAddr().String(), AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 25
	for i := range n {
		msg := loadgen.WithControlID(nil, tmpl, fmt.Sprintf("APP-%d", i))
		ack, err := cl.Send(ctx, msg)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		// The fixture asks for enhanced mode (MSH-15 AL), so a stored message gets CA.
		if code := loadgen.AckCode(ack); code != "CA" {
			t.Fatalf("message %d: ACK %q, want CA: %q", i, code, ack)
		}
	}
	// A resend of an acknowledged message gets the same positive ACK and is stored once.
	ack, err := cl.Send(ctx, loadgen.WithControlID(nil, tmpl, "APP-0"))
	if err != nil || loadgen.AckCode(ack) != "CA" {
		t.Fatalf("resend: %q, %v", ack, err)
	}
	got := storedControlIDs(t, a.JetStream())
	if len(got) != n {
		t.Fatalf("stored %d distinct messages, want %d", len(got), n)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}

	base := "http://" + a.HTTPAddr().String()
	if code, body := httpGet(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Errorf("/readyz = %d %s", code, body)
	}
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		fmt.Sprintf("resultgate_intake_acked_total %d", n+1),
		"resultgate_intake_duplicates_total 1",
		"resultgate_mllp_connections_accepted_total 1",
		"resultgate_intake_store_seconds_count",
		"resultgate_holds_open",
		"resultgate_audit_append_conflicts_total 0", // one instance: never a lost race
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	testutil.Eventually(t, 15*time.Second, "decisions in /metrics", func() bool {
		_, body := httpGet(t, base+"/metrics")
		return strings.Contains(body, fmt.Sprintf(`resultgate_decisions_total{action="release"} %d`, n))
	})
	if strings.Contains(body, "MRN0001") || strings.Contains(body, "TESTPATIENT") {
		t.Error("/metrics contains patient identifiers")
	}
}

func TestStopUnderLoadLosesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	a := New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tmpl := fixture(t)
	clientCtx, clientCancel := context.WithCancel(ctx)
	defer clientCancel()
	var mu sync.Mutex
	acked := map[string]bool{}
	started := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := mllp.Dial(clientCtx, mllp.ClientConfig{Addr: a.MLLPAddr().String(), AckTimeout: 10 * time.Second})
			if err != nil {
				return
			}
			defer cl.Close()
			for i := 0; i < 5000; i++ {
				id := fmt.Sprintf("STOP-%d-%d", c, i)
				ack, err := cl.Send(clientCtx, loadgen.WithControlID(nil, tmpl, id))
				if err != nil {
					return // the listener closed: no ACK, so nothing promised
				}
				if code := loadgen.AckCode(ack); code == "CA" || code == "AA" {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
					select {
					case started <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	for range 40 { // stop once the load is well under way
		<-started
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopCancel()
	if err := a.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	clientCancel() // the clients would otherwise keep reconnecting to the stopped listener
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no message was acknowledged before the stop")
	}

	b := startApp(t, testConfig(t, dir))
	stored := storedControlIDs(t, b.JetStream())
	for id := range acked {
		if stored[id] != 1 {
			t.Errorf("acknowledged %s stored %d times after restart, want 1", id, stored[id])
		}
	}
	t.Logf("%d messages acknowledged before the stop, all stored once", len(acked))
}
