package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/intake"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/testutil"
)

// scriptedReceiver is a real MLLP listener on loopback whose answer to each
// frame is decided by answer (nil: no ACK). It records every control ID it
// received, resends included.
type scriptedReceiver struct {
	srv    *mllp.Server
	addr   string
	answer func(r *scriptedReceiver, n int, m *hl7.Message) []byte

	mu       sync.Mutex
	received []string
}

func (r *scriptedReceiver) HandleMessage(_ context.Context, _ mllp.Peer, frame []byte) []byte {
	m, err := hl7.Parse(frame)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	r.received = append(r.received, m.ControlID())
	n := len(r.received)
	r.mu.Unlock()
	return r.answer(r, n, m)
}

func (r *scriptedReceiver) HandleTooLarge(context.Context, mllp.Peer, []byte, int64) []byte {
	return nil
}

func (r *scriptedReceiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.received...)
}

func startScripted(t *testing.T, answer func(r *scriptedReceiver, n int, m *hl7.Message) []byte) *scriptedReceiver {
	t.Helper()
	r := &scriptedReceiver{answer: answer}
	r.srv = mllp.NewServer(mllp.ServerConfig{}, r)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { _ = r.srv.Close(); <-done })
	return r
}

// sendMessages returns n synthetic ORU messages with control IDs prefix-1..n,
// back to back, as send reads them from standard input.
func sendMessages(prefix string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "MSH|^~\\&|LAB|HOSP|RG|HOSP|20261207120000||ORU^R01|%s-%d|P|2.5.1\rPID|1||MRN%d^^^HOSP^MR\rOBR|1||F%d|2345-7^Glucose^LN\rOBX|1|NM|2345-7^Glucose^LN||95|mg/dL|||||F\r", prefix, i, i, i)
	}
	return b.String()
}

func ack(m *hl7.Message, code hl7.AckCode, text string) []byte {
	if text == "" {
		return hl7.BuildACK(m, code)
	}
	return hl7.BuildACK(m, code, hl7.ErrorDetail{Code: hl7.CodeInternalError, Severity: "E", Message: text})
}

// A receiver that dies mid-run (its listener closed, its connections cut):
// send stops within --timeout instead of reconnecting for ever, says how many
// messages were sent, acknowledged and not sent, and exits 1.
func TestSendGivesUpWhenTheReceiverDies(t *testing.T) {
	r := startScripted(t, func(r *scriptedReceiver, n int, m *hl7.Message) []byte {
		if n <= 3 {
			return ack(m, hl7.AA, "")
		}
		go r.srv.Close() // the fourth message is read, never answered
		return nil
	})
	begin := time.Now()
	out, errOut, err := runCLI(t, sendMessages("DIE", 6), "send", "--addr", r.addr, "--timeout", "2s", "--retry-wait", "100ms", "-")
	took := time.Since(begin)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1\nstdout %s\nstderr %s", exitCode(err), err, out, errOut)
	}
	if took > 15*time.Second {
		t.Errorf("send took %s to give up with --timeout 2s", took)
	}
	if want := "sent 4 of 6, acknowledged 3, not sent 2: AA/CA 3, AE/CE 0, AR/CR 0, timeouts 0, other failures 1"; !strings.Contains(out, want) {
		t.Errorf("summary %q lacks %q", out, want)
	}
	if !strings.Contains(err.Error(), "gave up: nothing acknowledged for 2s") || !strings.Contains(err.Error(), "2 message(s) not sent") {
		t.Errorf("error %q", err)
	}
	if !strings.Contains(errOut, "reconnecting to "+r.addr) {
		t.Errorf("stderr does not report the reconnect attempts:\n%s", errOut)
	}
	if got := r.got(); strings.Join(got, ",") != "DIE-1,DIE-2,DIE-3,DIE-4" {
		t.Errorf("the receiver got %v", got)
	}
}

// A receiver that answers AE "message not stored, please resend" (as the
// intake does while JetStream elects a leader) and then AA: send resends each
// message with back-off until it is acknowledged, and succeeds.
func TestSendResendsOnAE(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	r := startScripted(t, func(_ *scriptedReceiver, _ int, m *hl7.Message) []byte {
		mu.Lock()
		defer mu.Unlock()
		tries[m.ControlID()]++
		if tries[m.ControlID()] <= 2 {
			return ack(m, hl7.AE, intake.TextNotStored)
		}
		return ack(m, hl7.AA, "")
	})
	out, errOut, err := runCLI(t, sendMessages("AE", 3), "send", "--addr", r.addr, "--retry-wait", "10ms", "-")
	if err != nil {
		t.Fatalf("send: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	if want := "sent 3 of 3, acknowledged 3, not sent 0: AA/CA 3, AE/CE 0, AR/CR 0, timeouts 0, other failures 0, resends 6"; !strings.Contains(out, want) {
		t.Errorf("summary %q lacks %q", out, want)
	}
	if got, want := strings.Join(r.got(), ","), "AE-1,AE-1,AE-1,AE-2,AE-2,AE-2,AE-3,AE-3,AE-3"; got != want {
		t.Errorf("the receiver got %s, want %s (each message resent in order)", got, want)
	}
	if !strings.Contains(errOut, "message 1: AE: "+intake.TextNotStored+"; resending in 10ms (resend 1 of 5)") ||
		!strings.Contains(errOut, "resending in 20ms (resend 2 of 5)") {
		t.Errorf("stderr does not show the resends with back-off:\n%s", errOut)
	}
}

// Resends are bounded: a receiver that always answers AE gets each message
// 1+--retries times, and send exits 1 counting them as AE/CE.
func TestSendBoundsResends(t *testing.T) {
	r := startScripted(t, func(_ *scriptedReceiver, _ int, m *hl7.Message) []byte {
		return ack(m, hl7.AE, intake.TextNotStored)
	})
	out, errOut, err := runCLI(t, sendMessages("AEX", 2), "send", "--addr", r.addr, "--retries", "2", "--retry-wait", "10ms", "-")
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1\nstdout %s\nstderr %s", exitCode(err), err, out, errOut)
	}
	if want := "sent 2 of 2, acknowledged 0, not sent 0: AA/CA 0, AE/CE 2, AR/CR 0, timeouts 0, other failures 0, resends 4"; !strings.Contains(out, want) {
		t.Errorf("summary %q lacks %q", out, want)
	}
	if got := len(r.got()); got != 6 {
		t.Errorf("the receiver got %d frames, want 6 (2 messages, 3 attempts each)", got)
	}
	if !strings.Contains(errOut, "not resent (--retries 2)") {
		t.Errorf("stderr: %s", errOut)
	}
}

// A message whose ACK does not come within --ack-timeout is not the end of it:
// send drops that connection, resends the message on a new one and carries on.
func TestSendResendsAfterAckTimeout(t *testing.T) {
	r := startScripted(t, func(_ *scriptedReceiver, n int, m *hl7.Message) []byte {
		if n == 2 {
			return nil // no ACK: send times out and resends
		}
		return ack(m, hl7.AA, "")
	})
	out, errOut, err := runCLI(t, sendMessages("CUT", 3), "send", "--addr", r.addr, "--ack-timeout", "300ms", "--retry-wait", "10ms", "-")
	if err != nil {
		t.Fatalf("send: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	if want := "sent 3 of 3, acknowledged 3, not sent 0: AA/CA 3, AE/CE 0, AR/CR 0, timeouts 0, other failures 0, resends 1"; !strings.Contains(out, want) {
		t.Errorf("summary %q lacks %q", out, want)
	}
	if got, want := strings.Join(r.got(), ","), "CUT-1,CUT-2,CUT-2,CUT-3"; got != want {
		t.Errorf("the receiver got %s, want %s", got, want)
	}
}

// The case of the issue, with the real daemon: serve is SIGKILLed while send
// is part-way through a batch. send stops within --timeout, reports what was
// acknowledged and what was never sent, and exits 1, instead of reconnecting
// for ever.
func TestSendStopsWhenServeIsKilled(t *testing.T) {
	p := startServe(t, t.TempDir(), "os")
	const n = 4000
	type result struct {
		out, errOut string
		err         error
		took        time.Duration
	}
	done := make(chan result, 1)
	go func() {
		begin := time.Now()
		out, errOut, err := runCLI(t, sendMessages("KILL", n), "send", "--addr", p.started.MLLP, "--timeout", "3s", "--retry-wait", "100ms", "-")
		done <- result{out, errOut, err, time.Since(begin)}
	}()
	// Kill it once part of the batch is stored.
	nc := p.connectNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, "send has stored some messages", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, bus.StreamHL7In)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs >= 100
	})
	nc.Close()
	if code := p.signal(syscall.SIGKILL, 30*time.Second); code != -1 {
		t.Fatalf("SIGKILL: exit code %d", code)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("send did not stop within 60s of the daemon's death (--timeout 3s)")
	}
	if exitCode(r.err) != 1 || !strings.Contains(r.err.Error(), "gave up: nothing acknowledged for 3s") {
		t.Fatalf("send: exit %d, %v\nstdout %s", exitCode(r.err), r.err, r.out)
	}
	var sent, total, acked, notSent int
	if _, err := fmt.Sscanf(r.out, "sent %d of %d, acknowledged %d, not sent %d:", &sent, &total, &acked, &notSent); err != nil {
		t.Fatalf("summary %q: %v", r.out, err)
	}
	if total != n || acked < 99 || notSent == 0 || sent+notSent != n || acked > sent { // 100 stored: 99 ACKs surely read, the 100th maybe lost with the daemon
		t.Errorf("summary %q: want %d in all, at least 99 acknowledged, some not sent", r.out, n)
	}
	if !strings.Contains(r.errOut, "reconnecting to "+p.started.MLLP) {
		t.Errorf("stderr does not report the reconnect attempts:\n%s", r.errOut)
	}
}
