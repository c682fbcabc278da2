package main

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/loadgen"
)

// loadOutcome is what a stream of messages against a daemon that dies (or stops)
// part-way learned: which control IDs were positively acknowledged, and which were
// written but got no ACK (in flight when the daemon went away).
type loadOutcome struct {
	mu       sync.Mutex
	acked    map[string]bool
	inFlight map[string]bool
	bad      []string // ACKs other than AA/CA, which a healthy store never gives
}

// streamUntilDown sends messages with unique MSH-10s from `workers` goroutines,
// each on its own MLLP connection and at most perWorker messages, until the
// connection fails. After the total of positive ACKs reaches trigger it calls
// fire once (which kills or stops the daemon). It returns when every worker has
// stopped; it is bounded by perWorker and by ctx.
func streamUntilDown(ctx context.Context, t *testing.T, addr string, tmpls [][]byte, prefix string,
	workers, perWorker int, trigger int64, fire func()) *loadOutcome {
	t.Helper()
	out := &loadOutcome{acked: map[string]bool{}, inFlight: map[string]bool{}}
	var acks atomic.Int64
	var fireOnce sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A bare connection, not mllp.Client: the client reconnects after a
			// failure, and here the first failure must end the worker.
			cl, err := dialRaw(ctx, addr)
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
				return
			}
			defer cl.Close()
			buf := make([]byte, 0, 4096)
			for i := range perWorker {
				id := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				buf = loadgen.WithControlID(buf[:0], tmpls[(w+i)%len(tmpls)], id)
				ack, err := cl.send(buf, 20*time.Second)
				if err != nil {
					// The daemon went away: this message may or may not be
					// stored, but nothing was promised for it.
					out.mu.Lock()
					out.inFlight[id] = true
					out.mu.Unlock()
					return
				}
				code := loadgen.AckCode(ack)
				out.mu.Lock()
				if code == "AA" || code == "CA" {
					out.acked[id] = true
				} else {
					out.bad = append(out.bad, id+"="+code)
				}
				out.mu.Unlock()
				if acks.Add(1) == trigger {
					fireOnce.Do(fire)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// rawConn is one MLLP connection without reconnects: a send either gets its ACK
// or fails, and a failure is final.
type rawConn struct {
	net.Conn
	rd *mllp.Reader
}

func dialRaw(ctx context.Context, addr string) (*rawConn, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", addr, err)
	}
	return &rawConn{Conn: c, rd: mllp.NewReader(c, 1<<20)}, nil
}

// send writes msg as one frame and reads one ACK frame, all within timeout.
func (c *rawConn) send(msg []byte, timeout time.Duration) ([]byte, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if err := mllp.WriteFrame(c, msg); err != nil {
		return nil, err
	}
	return c.rd.ReadFrame()
}

// checkStoredOnce asserts that every acknowledged control ID is stored exactly
// once and that nothing is stored twice.
func checkStoredOnce(t *testing.T, stored map[string]int, acked map[string]bool) {
	t.Helper()
	var missing, dup []string
	for id := range acked {
		if stored[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range stored {
		if n != 1 {
			dup = append(dup, fmt.Sprintf("%s×%d", id, n))
		}
	}
	sort.Strings(missing)
	sort.Strings(dup)
	if len(missing) > 0 {
		t.Errorf("%d acknowledged messages are not in HL7_IN (lost): %v", len(missing), firstN(missing, 20))
	}
	if len(dup) > 0 {
		t.Errorf("%d control IDs stored more than once: %v", len(dup), firstN(dup, 20))
	}
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// crashTemplates are the fixtures used under load: one original-mode (AA) and one
// enhanced-mode (CA, MSH-15 AL) ORU^R01.
func crashTemplates(t *testing.T) [][]byte {
	return [][]byte{readFixture(t, "oru_r01_v251.hl7"), readFixture(t, "oru_r01_v23.hl7")}
}

// TestServeSIGKILLLosesNothingAcknowledged is the crash test of issue 2 §6: the
// daemon (durability fsync) is killed with SIGKILL while six connections stream
// messages; after a restart on the same data directory every message that got
// AA/CA is in HL7_IN exactly once. The sender then retransmits what was in
// flight and a sample of what was acknowledged, as an interface engine does
// after a reconnect, and still nothing is stored twice.
func TestServeSIGKILLLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test; skipped with -short")
	}
	resultgateBinary(t) // build first: the time bounds below are for the test itself
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	tmpls := crashTemplates(t)
	p := startServe(t, dir, "fsync")
	const trigger = 300
	out := streamUntilDown(ctx, t, p.started.MLLP, tmpls, "KILL", 6, 2000, trigger, func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	})
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("resultgate serve survived SIGKILL for 10s")
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("serve ended with %v, not by SIGKILL: the kill came too late to be mid-stream", p.cmd.ProcessState)
	}
	if len(out.bad) > 0 {
		t.Errorf("negative ACKs before the kill: %v", firstN(out.bad, 10))
	}
	if len(out.acked) < trigger {
		t.Fatalf("only %d ACKs before the kill, want ≥ %d", len(out.acked), trigger)
	}
	t.Logf("SIGKILL after %d ACKs; %d messages were in flight", len(out.acked), len(out.inFlight))

	p2 := startServe(t, dir, "fsync")
	stored := storedControlIDs(t, p2)
	checkStoredOnce(t, stored, out.acked)
	t.Logf("after restart HL7_IN holds %d messages (%d acknowledged before the kill)", totalCount(stored), len(out.acked))

	// Retransmit the in-flight messages and every 10th acknowledged one.
	resend := make([]string, 0, len(out.inFlight)+len(out.acked)/10)
	for id := range out.inFlight {
		resend = append(resend, id)
	}
	n := 0
	for id := range out.acked {
		if n%10 == 0 {
			resend = append(resend, id)
		}
		n++
	}
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: p2.started.MLLP, AckTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	all := map[string]bool{}
	for id := range out.acked {
		all[id] = true
	}
	for _, id := range resend {
		var w, i int
		if _, err := fmt.Sscanf(id, "KILL-%d-%d", &w, &i); err != nil {
			t.Fatalf("control ID %q: %v", id, err)
		}
		ack, err := cl.Send(ctx, loadgen.WithControlID(nil, tmpls[(w+i)%len(tmpls)], id))
		if err != nil {
			t.Fatalf("resend %s: %v", id, err)
		}
		if code := loadgen.AckCode(ack); code != "AA" && code != "CA" {
			t.Errorf("resend %s after restart: ACK %q", id, code)
		}
		all[id] = true
	}
	stored = storedControlIDs(t, p2)
	checkStoredOnce(t, stored, all)
	if len(stored) != len(all) {
		t.Errorf("HL7_IN holds %d distinct control IDs, want the %d sent", len(stored), len(all))
	}
	if code := p2.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("restarted serve exit code %d after SIGTERM, want 0", code)
	}
}

// TestServeSIGTERMUnderLoadLosesNothing stops the daemon with SIGTERM while six
// connections stream messages: it exits 0 within its stop bound, says it stopped
// without error, and after a restart every acknowledged message is stored once.
func TestServeSIGTERMUnderLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess shutdown test; skipped with -short")
	}
	resultgateBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	tmpls := crashTemplates(t)
	p := startServe(t, dir, "fsync")
	const trigger = 200
	out := streamUntilDown(ctx, t, p.started.MLLP, tmpls, "TERM", 6, 2000, trigger, func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	})
	// DefaultStopTimeout is 25 s; allow for process exit on a loaded machine.
	if code := p.wait(35 * time.Second); code != 0 {
		t.Fatalf("serve exit code %d after SIGTERM under load, want 0\n%s", code, p.log())
	}
	if p.logLine(`"message":"shutting down"`) == "" {
		t.Errorf("log lacks the \"shutting down\" line")
	}
	if l := p.logLine(`"message":"resultgate stopped"`); l == "" || strings.Contains(l, `"error"`) {
		t.Errorf("want a \"resultgate stopped\" line without error, got %q", l)
	}
	if len(out.bad) > 0 {
		t.Errorf("negative ACKs during shutdown: %v", firstN(out.bad, 10))
	}
	if len(out.acked) < trigger {
		t.Fatalf("only %d ACKs before SIGTERM, want ≥ %d", len(out.acked), trigger)
	}
	t.Logf("SIGTERM after %d ACKs; %d sends got no ACK", len(out.acked), len(out.inFlight))
	p2 := startServe(t, dir, "fsync")
	stored := storedControlIDs(t, p2)
	checkStoredOnce(t, stored, out.acked)
	if code := p2.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("restarted serve exit code %d, want 0", code)
	}
}
