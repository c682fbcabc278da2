package app

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/bus"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/internal/hostile"
	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
)

// TestServeHostile16MiB sends the two shapes issue 15 found quadratic over
// MLLP to a running serve, at the 16 MiB frame maximum: a PID-3 of
// repetitions (intake: 600 KB pinned a core for 50 s, 16 MiB would have
// taken days before its AA) and an OBX-8 of repetitions (classify: 100k "~"
// held the partition's consumer for 85 s). Each must be acknowledged AA and
// released to the portal feed, and a small result for the same patient sent
// after it must follow it through the same partition, all within bounds that
// a busy shared machine meets with a wide margin. A 100 KB control ID is
// refused AR.
func TestServeHostile16MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 16 MiB messages through the whole pipeline")
	}
	a := startApp(t, testConfig(t, t.TempDir()))
	js := a.JetStream()
	shapes := map[string]hostile.Shape{}
	for _, s := range hostile.Shapes() {
		shapes[s.Name] = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := mllp.Dial(ctx, mllp.ClientConfig{Addr: a.MLLPAddr().String(), AckTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, name := range []string{"PID3-empty-reps", "OBX8-reps"} {
		t.Run(name, func(t *testing.T) {
			s := shapes[name]
			big := bytes.Replace(s.Message(16<<20-64), // the frame maximum, less room for the new control ID
				[]byte("|CTRL-1|"), []byte("|BIG-"+name+"|"), 1)
			small := bytes.Replace(s.Message(2<<10), []byte("|CTRL-1|"), []byte("|SMALL-"+name+"|"), 1)
			start := time.Now()
			for _, m := range [][]byte{big, small} {
				ack, err := cl.Send(ctx, m)
				if err != nil || loadgen.AckCode(ack) != "AA" {
					t.Fatalf("%s (%d bytes): ACK %.200q, %v", s.Field, len(m), ack, err)
				}
			}
			t.Logf("AA for %d bytes and the follow-up after %v", len(big), time.Since(start).Round(time.Millisecond))
			testutil.Eventually(t, 2*time.Minute, "both results in the portal feed", func() bool {
				ids := feedControlIDs(t, js)
				return ids["BIG-"+name] == 1 && ids["SMALL-"+name] == 1
			})
			t.Logf("both in the portal feed after %v", time.Since(start).Round(time.Millisecond))
		})
	}
	// An over-long control ID (issue 15: AE "please resend" forever, echoed
	// whole) is refused AR with ERR 102, and MSA-2 echoes at most 199 bytes.
	long := shapes["MSH10-long"].Message(100 << 10)
	ack, err := cl.Send(ctx, long)
	if err != nil || loadgen.AckCode(ack) != "AR" || !bytes.Contains(ack, []byte("|102^")) || len(ack) > 1024 {
		t.Fatalf("100 KB MSH-10: ACK of %d bytes %.300q, %v; want AR with ERR 102", len(ack), ack, err)
	}
}

// feedControlIDs counts the control IDs on portal.hl7.>, reading headers only
// (the released copies of 16 MiB messages are not transferred).
func feedControlIDs(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, bus.StreamPortal, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"portal.hl7.>"}, HeadersOnly: true})
	if err != nil {
		t.Fatalf("consumer on %s: %v", bus.StreamPortal, err)
	}
	batch, err := c.FetchNoWait(1000)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	ids := map[string]int{}
	for m := range batch.Messages() {
		ids[m.Headers().Get(bus.HeaderControlID)]++
	}
	// Each poll's consumer is deleted: left behind, they ran into the
	// server's consumer limit while the test polled.
	if info := c.CachedInfo(); info != nil {
		_ = js.DeleteConsumer(ctx, bus.StreamPortal, info.Name)
	}
	return ids
}
