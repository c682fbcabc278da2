package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/router/bus"
)

// TestPauseClassify is interop/measure.sh's switch for measuring the intake
// with the pipeline paused (issue 14 §3): it pauses (or, with
// RESULTGATE_PAUSE=resume, resumes) every classify consumer on HL7_IN of the
// running `resultgate serve` whose NATS client URL is RESULTGATE_PAUSE_NATS,
// through JetStream's consumer pause API. The pipeline stays up and its
// consumers keep their place; the server just delivers nothing to them until
// they are resumed or the pause (10 minutes) ends. The embedded server
// admits only its own users: RESULTGATE_PAUSE_DATA names serve's data
// directory, whose service seed the switch connects with (consumer
// management is the service's right, not the operator's). Skipped unless
// RESULTGATE_PAUSE_NATS is set.
func TestPauseClassify(t *testing.T) {
	url := os.Getenv("RESULTGATE_PAUSE_NATS")
	if url == "" {
		t.Skip("interop/measure.sh's pause switch; set RESULTGATE_PAUSE_NATS to use it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc := bus.ConnConfig{URL: url, Name: "resultgate-pause-switch", Logger: zerolog.Nop()}
	if dir := os.Getenv("RESULTGATE_PAUSE_DATA"); dir != "" {
		cc.CredsFile = bus.ServiceCredsFile(dir)
	}
	nc, err := bus.Connect(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		t.Fatal(err)
	}
	resume := os.Getenv("RESULTGATE_PAUSE") == "resume"
	n := 0
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		if !strings.HasPrefix(name, "classify-") {
			continue
		}
		if resume {
			_, err = js.ResumeConsumer(ctx, bus.StreamHL7In, name)
		} else {
			_, err = js.PauseConsumer(ctx, bus.StreamHL7In, name, time.Now().Add(10*time.Minute))
		}
		if err != nil {
			t.Fatalf("consumer %s: %v", name, err)
		}
		n++
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no classify consumers on HL7_IN")
	}
	t.Logf("PAUSE-CLASSIFY resume=%v consumers=%d", resume, n)
}
