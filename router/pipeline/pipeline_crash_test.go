package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// TestInstanceCrashLosesAndDuplicatesNothing runs two instances on their own
// connections, kills one (its connection closes under it, as when the process
// dies) in the middle of a stream of messages, and checks that every message
// ends exactly once: in a hold and not in the feed, or in the feed once.
func TestInstanceCrashLosesAndDuplicatesNothing(t *testing.T) {
	e := newPipeEnv(t, func(c *Config) { c.Holds.AckWait = time.Second })
	connect := func() *nats.Conn {
		creds, err := bus.CredsOption(bus.ServiceCredsFile(e.js.Dir))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(e.js.Srv.ClientURL(), creds)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	ncA := connect()
	a, err := New(ncA, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(testutil.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = a.Stop(ctx) // its connection is gone; only release its goroutines
	})
	b := e.start()
	s := b.Service()

	const patients, perPatient = 20, 10
	for i := range patients {
		if i%5 == 0 { // a fifth of the patients asked for holds
			e.consent(s, fmt.Sprintf("MRN%d", i), "active", true, false)
		}
	}
	sent := map[string]bool{} // hold ID -> sensitive
	n := 0
	for j := range perPatient {
		for i := range patients {
			pid := fmt.Sprintf("MRN%d", i)
			ctrl := fmt.Sprintf("K%d-%d", i, j)
			section := "CH"
			if j%2 == 0 {
				section = "SP"
			}
			e.send(msgSpec{ctrl: ctrl, pid: pid, filler: ctrl, section: section})
			sent[holdOf(ctrl)] = i%5 == 0 && section == "SP"
			n++
			if n == patients*perPatient/3 {
				testutil.Eventually(t, 10*time.Second, "instance A working", func() bool {
					return a.Service().Metrics().Processed["acked"] > 5
				})
				ncA.Close() // instance A dies
			}
		}
	}
	e.waitSettled()
	testutil.Eventually(t, 10*time.Second, "feed complete", func() bool {
		want := 0
		for _, sens := range sent {
			if !sens {
				want++
			}
		}
		return len(e.portal("portal.hl7.>")) >= want
	})
	feed := map[string]int{}
	for _, m := range e.portal("portal.hl7.>") {
		feed[m.Header.Get(bus.HeaderHoldID)]++
	}
	for id, sensitive := range sent {
		h, herr := s.GetHold(testutil.Ctx(t), id)
		switch {
		case sensitive && (herr != nil || h.State != hold.StateHeld):
			t.Errorf("sensitive %s: hold %v, %v", id, h, herr)
		case sensitive && feed[id] != 0:
			t.Errorf("held result %s is in the feed", id)
		case !sensitive && feed[id] != 1:
			t.Errorf("result %s is in the feed %d times, want 1", id, feed[id])
		}
	}
	if len(feed) != len(e.portal("portal.hl7.>")) {
		t.Errorf("feed has duplicates: %d messages for %d results", len(e.portal("portal.hl7.>")), len(feed))
	}
}
