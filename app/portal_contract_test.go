package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// streamCount returns how many messages stream holds.
func streamCount(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestPortalContractOverMLLP runs serve with the default policy and sends over
// MLLP: a training (MSH-11 T) routine result, which is released to the test
// feed only, never to portal.>; a production one, released to the patient
// feed; and a resend of the production one that an interface engine
// re-serialised (LF terminators, the final one dropped), which is answered AA
// and stored once (issue 11, points 2 and 8).
func TestPortalContractOverMLLP(t *testing.T) {
	a := startApp(t, testConfig(t, t.TempDir()))
	js := a.JetStream()
	training := bytes.Replace(msg(labORU, "TRAIN1"), []byte("|TRAIN1|P|2.5.1"), []byte("|TRAIN1|T|2.5.1"), 1)
	if !bytes.Contains(training, []byte("|TRAIN1|T|")) {
		t.Fatal("training fixture has no MSH-11 T")
	}
	prod := msg(labORU, "PROD1")
	sendAll(t, a.MLLPAddr().String(), training, prod)
	testutil.Eventually(t, 10*time.Second, "both released", func() bool {
		return streamCount(t, js, bus.StreamPortalTest) == 2 && streamCount(t, js, bus.StreamPortal) == 2
	})
	if n, _, _ := feed(t, js, "portal.hl7.", "TRAIN1"); n != 0 {
		t.Fatalf("a training message reached the patient feed %d times", n)
	}
	if n, h, _ := feed(t, js, "portal.hl7.", "PROD1"); n != 1 || h[bus.HeaderProcessingID] != "P" {
		t.Fatalf("production message on the patient feed %d times, processing ID %q", n, h[bus.HeaderProcessingID])
	}

	inBefore := streamCount(t, js, bus.StreamHL7In)
	reser := bytes.TrimRight(bytes.ReplaceAll(prod, []byte("\r"), []byte("\n")), "\n")
	if bytes.Equal(reser, prod) || strings.HasSuffix(string(reser), "\n") {
		t.Fatal("the re-serialised resend is not different bytes")
	}
	sendAll(t, a.MLLPAddr().String(), reser) // sendAll requires AA
	if n := streamCount(t, js, bus.StreamHL7In); n != inBefore {
		t.Fatalf("HL7_IN went from %d to %d messages: the re-serialised resend was stored again", inBefore, n)
	}
	if st := a.intake.Stats(); st.Duplicates < 1 {
		t.Errorf("intake stats %+v: the resend was not counted as a duplicate", st)
	}
}
