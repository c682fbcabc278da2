package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/nats-io/nats.go"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// TestClusterDeadlineFiresAfterCreatorDies checks on an in-process three-node
// JetStream cluster (R3) that a deadline does not depend on the instance that
// created the hold. Instance A is the only one classifying: it creates every
// hold. Instance B runs beside it without a classify step (its view follows
// A's holds live). Then the leader of the holds bucket's stream is shut down
// and A dies (its connection closes under it); instance C starts afterwards
// (its view loads from the bucket, on two of three nodes). With the injected
// clock moved past the 72 h deadline, B and C race to fire it: every hold
// must be released exactly once, on the deadline path, and be in the feed
// once; the results released at once stay in the feed once.
func TestClusterDeadlineFiresAfterCreatorDies(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster test; skipped with -short")
	}
	start := time.Now()
	srvs := testutil.StartJSCluster(t, 3, "S", nil, nil)
	env := newClusterPipeEnv(t, testutil.ClusterConn(t, srvs))
	js, clock, base := env.js.JS, env.clock, env.cfg
	startOn := func(nc *nats.Conn, classify bool) *Pipeline {
		cfg := base
		cfg.NoClassify = !classify
		return startClusterPipeline(t, nc, cfg)
	}
	ncA := testutil.ClusterConn(t, srvs)
	a := startOn(ncA, true)
	b := startOn(testutil.ClusterConn(t, srvs), false)
	for i := 0; i < 6; i += 2 {
		env.consent(a.Service(), fmt.Sprintf("MRN%d", i), "active", true, false)
	}
	held := map[string]bool{} // hold ID -> held (else released at once)
	for n := range 24 {
		i := n % 6
		ctrl := fmt.Sprintf("D%d", n)
		section := "SP"
		if n%4 == 3 {
			section = "CH"
		}
		env.send(msgSpec{ctrl: ctrl, pid: fmt.Sprintf("MRN%d", i), filler: ctrl, section: section})
		held[holdOf(ctrl)] = i%2 == 0 && section == "SP"
	}
	env.waitSettled()
	nHeld := 0
	for id, h := range held {
		if !h {
			continue
		}
		nHeld++
		testutil.Eventually(t, 10*time.Second, "B's view has "+id, func() bool {
			hs, err := b.Service().ListHolds(context.Background(), holdview.Filter{State: hold.StateHeld})
			if err != nil {
				return false
			}
			for _, x := range hs {
				if x.ID == id {
					return true
				}
			}
			return false
		})
	}
	if nHeld == 0 {
		t.Fatal("no holds created")
	}
	t.Logf("A created %d holds (%.1fs)", nHeld, time.Since(start).Seconds())

	leader := testutil.ShutdownStreamLeader(t, srvs, js, "KV_"+bus.KVHolds)
	ncA.Close() // instance A, the creator of every hold, dies
	stopCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = a.Stop(stopCtx)
	cancel()
	c := startOn(testutil.ClusterConn(t, srvs), true)
	t.Logf("shut down %s (holds bucket leader), A dead, C started (%.1fs)", leader, time.Since(start).Seconds())

	for id, h := range held {
		if h {
			if got, err := c.Service().GetHold(context.Background(), id); err != nil || got.State != hold.StateHeld {
				t.Fatalf("before the deadline hold %s: %+v, %v", id, got, err)
			}
		}
	}
	if feed := readFeed(t, js); len(feed) != len(held)-nHeld {
		t.Fatalf("before the deadline the feed has %d results, want %d", len(feed), len(held)-nHeld)
	}

	clock.Advance(73 * time.Hour)
	var feed map[string][]feedMsg
	testutil.Eventually(t, 40*time.Second, "every hold released at its deadline", func() bool {
		clock.Advance(time.Second) // past any scheduler retry (scheduleRetry) a lost leader caused
		feed = readFeed(t, js)
		return len(feed) >= len(held)
	})
	for id, wasHeld := range held {
		msgs := feed[id]
		if len(msgs) != 1 {
			t.Errorf("result %s in the feed %d times, want 1", id, len(msgs))
			continue
		}
		if !wasHeld {
			if msgs[0].path != string(hold.PathImmediate) {
				t.Errorf("result %s released on path %q, want immediate", id, msgs[0].path)
			}
			continue
		}
		if msgs[0].path != string(hold.PathDeadline) {
			t.Errorf("hold %s released on path %q, want deadline", id, msgs[0].path)
		}
		var h *hold.Hold
		testutil.Eventually(t, 10*time.Second, "hold "+id+" readable", func() bool {
			var err error
			h, err = c.Service().GetHold(context.Background(), id)
			return err == nil
		})
		if h.State != hold.StateReleased || releaseCount(h) != 1 || h.Release == nil || h.Release.Path != hold.PathDeadline {
			t.Errorf("hold %s: state %s, %d releases, release %+v; want released once at the deadline", id, h.State, releaseCount(h), h.Release)
		}
	}
	if len(feed) != len(held) {
		t.Errorf("feed has %d results, want %d", len(feed), len(held))
	}
	t.Logf("%d holds released once each by the survivors (%.1fs)", nHeld, time.Since(start).Seconds())
}
