package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/bus"
)

// TestPauseClassify is interop/measure.sh's switch for measuring the intake
// with the pipeline paused (issue 14 §3): it pauses (or, with
// RESULTGATE_PAUSE=resume, resumes) every classify consumer on HL7_IN of the
// running `resultgate serve` whose NATS client URL is RESULTGATE_PAUSE_NATS,
// through JetStream's consumer pause API. The pipeline stays up and its
// consumers keep their place; the server just delivers nothing to them until
// they are resumed or the pause (10 minutes) ends. Skipped unless the variable
// is set.
func TestPauseClassify(t *testing.T) {
	url := os.Getenv("RESULTGATE_PAUSE_NATS")
	if url == "" {
		t.Skip("interop/measure.sh's pause switch; set RESULTGATE_PAUSE_NATS to use it")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
