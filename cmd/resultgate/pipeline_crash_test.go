package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/resultgate/resultgate/router/api"
	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// pcConfig is the configuration of the pipeline crash tests: the Kentucky
// statute preset (pathology likely to show malignancy is held until 72 h after
// OBR-22; the ordering provider may release earlier) and short scheduler and
// reconcile intervals so a restart settles within the test's bound.
const pcConfig = `
policy:
  time_zone: America/New_York
  jurisdiction: US-KY
  jurisdictions:
    US-KY:
      statute: US-KY-KRS-333.152
holds:
  scheduler_tick: 100ms
  reconcile_every: 1s
  ack_wait: 2s
  retry_backoff: [200ms]
intake:
  partitions: 4
`

// Message kinds of the pipeline crash tests.
const (
	pcLab       = "lab"        // routine chemistry: released at once
	pcPlainPath = "plain-path" // benign pathology: no basis, released at once
	pcHeld      = "held"       // malignant pathology finalised now: held 72 h
	pcDeadline  = "deadline"   // malignant pathology whose 72 h end soon
)

// pcORU builds an ORU^R01 of kind with control ID id (also used for the MRN and
// the order numbers). For pcDeadline, OBR-22 is set so the statute's 72 h end
// at deadline.
func pcORU(kind, id string, deadline time.Time) []byte {
	finalised := time.Now()
	section, obx, code := "SP", "Left breast, core biopsy: invasive ductal carcinoma, grade 2.", "60567-5^Comprehensive pathology report panel^LN"
	switch kind {
	case pcLab:
		section, code = "CH", "24323-8^Comprehensive metabolic panel^LN"
	case pcPlainPath:
		obx = "Left breast, core biopsy: benign fibroadenoma, no atypia."
	case pcDeadline:
		finalised = deadline.Add(-72 * time.Hour)
	}
	obr22 := finalised.UTC().Format("20060102150405") + "+0000"
	segs := []string{
		"MSH|^~\\&|APLIS|SYNPATH|PORTAL|GENHOSP|20261120090000-0500||ORU^R01^ORU_R01|" + id + "|P|2.5.1",
		"PID|1||MRN-PC-" + id + "^^^GENHOSP^MR||TESTPATIENT^PC||19700101|F",
		"ORC|RE|PL-" + id + "|FL-" + id + "||CM||||20261120080000|||D001^DOCTOR^DELTA",
		"OBR|1|PL-" + id + "|FL-" + id + "|" + code + "|||20261119100000|||||||||D001^DOCTOR^DELTA||||||" + obr22 + "||" + section + "|F",
	}
	if kind == pcLab {
		segs = append(segs, "OBX|1|NM|2951-2^Sodium^LN||140|mmol/L^^UCUM|136-145|N|||F")
	} else {
		segs = append(segs, "OBX|1|TX|22637-3^Pathology report final diagnosis^LN||"+obx+"||||||F")
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

// pcKind returns the kind of the n-th message of a stream (one in three held).
func pcKind(n int) string {
	return [...]string{pcLab, pcHeld, pcPlainPath, pcHeld, pcLab, pcPlainPath}[n%6]
}

// pcWriteConfig writes pcConfig to a file and returns its path.
func pcWriteConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resultgate.yaml")
	if err := os.WriteFile(path, []byte(pcConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pcConnect connects to a serve process's embedded NATS server.
func pcConnect(t *testing.T, p *serveProc) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := p.connectNATS(t, nats.MaxReconnects(0))
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// pcFeed is the portal feed by control ID: the HL7 messages' headers and the
// number of FHIR messages.
type pcFeed struct {
	hl7  map[string][]nats.Header
	fhir map[string]int
}

// pcStoredAt is set by pcReadFeed on the headers it returns: when the PORTAL
// stream stored the message.
const pcStoredAt = "Test-Stored-At"

// pcReadFeed reads the whole PORTAL stream.
func pcReadFeed(js jetstream.JetStream) (pcFeed, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	f := pcFeed{hl7: map[string][]nats.Header{}, fhir: map[string]int{}}
	s, err := js.Stream(ctx, bus.StreamPortal)
	if err != nil {
		return f, err
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return f, err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return f, err
	}
	for got := uint64(0); got < info.State.Msgs; {
		batch, err := cons.Fetch(int(min(info.State.Msgs-got, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return f, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			id := m.Headers().Get(bus.HeaderControlID)
			if strings.HasPrefix(m.Subject(), bus.SubjectPortalHL7Prefix) {
				h := m.Headers()
				if md, err := m.Metadata(); err == nil {
					h.Set(pcStoredAt, md.Timestamp.UTC().Format(time.RFC3339Nano))
				}
				f.hl7[id] = append(f.hl7[id], h)
			} else {
				f.fhir[id]++
			}
		}
		if err := batch.Error(); err != nil {
			return f, err
		}
		if n == 0 {
			return f, fmt.Errorf("PORTAL: read %d of %d messages", got, info.State.Msgs)
		}
		got += uint64(n)
	}
	return f, nil
}

// pcReadHolds reads every hold record, by control ID.
func pcReadHolds(js jetstream.JetStream) (map[string]*hold.Hold, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.KVHolds)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	store := store.NewHolds(kv)
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

// pcUnclassified returns how many inbound messages the classify consumers
// have not acked yet (pending plus in progress), or -1 when it cannot tell.
func pcUnclassified(js jetstream.JetStream) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		return -1
	}
	var n int64
	infos := s.ListConsumers(ctx)
	for ci := range infos.Info() {
		n += int64(ci.NumPending) + int64(ci.NumAckPending)
	}
	if infos.Err() != nil {
		return -1
	}
	return n
}

// pcReleases counts the transitions of h into released.
func pcReleases(h *hold.Hold) int {
	n := 0
	for _, tr := range h.Transitions {
		if tr.To == hold.StateReleased {
			n++
		}
	}
	return n
}

// pcSettled reports whether every acknowledged message is decided (in the
// feed, or an open hold with nothing in the feed) and no release is waiting
// to be published.
func pcSettled(js jetstream.JetStream, acked map[string]string) (pcFeed, map[string]*hold.Hold, bool) {
	feed, err := pcReadFeed(js)
	if err != nil {
		return feed, nil, false
	}
	holds, err := pcReadHolds(js)
	if err != nil {
		return feed, holds, false
	}
	for _, h := range holds {
		if h.State == hold.StateReleased && !h.Published {
			return feed, holds, false
		}
	}
	for id := range acked {
		if h := holds[id]; h != nil && h.State == hold.StateHeld {
			continue
		}
		if len(feed.hl7[id]) == 0 || feed.fhir[id] == 0 {
			return feed, holds, false
		}
	}
	return feed, holds, true
}

// pcCheck checks the invariants of the pipeline over the feed and the hold
// records: every acknowledged message once in the feed or as an open hold; no
// control ID twice in the feed; no hold released twice; no held result in the
// feed unless its hold is released (and then on the hold's release path);
// results released at once carry no hold record.
func pcCheck(t *testing.T, feed pcFeed, holds map[string]*hold.Hold, acked map[string]string) {
	t.Helper()
	var bad []string
	for id, hs := range feed.hl7 {
		if len(hs) != 1 || feed.fhir[id] != 1 {
			bad = append(bad, fmt.Sprintf("%s: %d HL7 and %d FHIR feed messages (duplicate)", id, len(hs), feed.fhir[id]))
		}
	}
	for id, n := range feed.fhir {
		if len(feed.hl7[id]) == 0 {
			bad = append(bad, fmt.Sprintf("%s: %d FHIR feed messages but no HL7 one", id, n))
		}
	}
	for id, h := range holds {
		if n := pcReleases(h); n > 1 {
			bad = append(bad, fmt.Sprintf("hold %s (%s) released %d times", h.ID, id, n))
		}
		switch h.State {
		case hold.StateHeld:
			if n := len(feed.hl7[id]); n != 0 {
				bad = append(bad, fmt.Sprintf("%s: open hold %s but %d feed messages (held result in the feed)", id, h.ID, n))
			}
		case hold.StateReleased:
			if len(feed.hl7[id]) == 0 {
				bad = append(bad, fmt.Sprintf("%s: hold %s released but not in the feed", id, h.ID))
				continue
			}
			hdr := feed.hl7[id][0]
			if stored, err := time.Parse(time.RFC3339Nano, hdr.Get(pcStoredAt)); err != nil || stored.Before(h.Release.At) {
				bad = append(bad, fmt.Sprintf("%s: in the feed at %s (%v), before its release at %s", id, stored, err, h.Release.At))
			}
			if hdr.Get(bus.HeaderHoldID) != h.ID || hdr.Get(bus.HeaderReleasePath) != string(h.Release.Path) {
				bad = append(bad, fmt.Sprintf("%s: feed hold %q path %q, hold record %s path %q", id,
					hdr.Get(bus.HeaderHoldID), hdr.Get(bus.HeaderReleasePath), h.ID, h.Release.Path))
			}
		default:
			bad = append(bad, fmt.Sprintf("%s: hold %s in state %s", id, h.ID, h.State))
		}
	}
	for id, kind := range acked {
		h := holds[id]
		switch kind {
		case pcHeld, pcDeadline:
			if h == nil {
				bad = append(bad, fmt.Sprintf("%s (%s): acknowledged, no hold record", id, kind))
			}
		default:
			if h != nil {
				bad = append(bad, fmt.Sprintf("%s (%s): released at once but has hold %s", id, kind, h.ID))
			}
			if n := len(feed.hl7[id]); n != 1 {
				bad = append(bad, fmt.Sprintf("%s (%s): acknowledged, %d feed messages, want 1", id, kind, n))
			} else if p := feed.hl7[id][0].Get(bus.HeaderReleasePath); p != string(hold.PathImmediate) {
				bad = append(bad, fmt.Sprintf("%s (%s): feed release path %q, want immediate", id, kind, p))
			}
		}
	}
	sort.Strings(bad)
	for _, b := range firstN(bad, 30) {
		t.Error(b)
	}
}

// pcSend sends msgs over one MLLP connection, each needing AA, and records them.
func pcSend(t *testing.T, addr string, acked map[string]string, kinds map[string]string, deadline time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dialRaw(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ids := make([]string, 0, len(kinds))
	for id := range kinds {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ack, err := c.send(pcORU(kinds[id], id, deadline), 15*time.Second)
		if err != nil || loadgen.AckCode(ack) != "AA" {
			t.Fatalf("sending %s: %q, %v", id, ack, err)
		}
		acked[id] = kinds[id]
	}
}

// TestServeSIGKILLDuringClassifyAndRelease kills `resultgate serve` (embedded
// NATS, durability fsync) with SIGKILL while three connections stream messages
// (a third of them held by the Kentucky preset) and a clinician releases holds
// through the NATS request/reply API. After a restart on the same data
// directory and its reconcile: every message that got AA is exactly once in
// the feed or an open hold, no control ID is in the feed twice, no hold is
// released twice, no held result is in the feed without its release, every
// release the API confirmed stands, and a release that was in flight at the
// kill, retried, releases once.
func TestServeSIGKILLDuringClassifyAndRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test; skipped with -short")
	}
	resultgateBinary(t) // build first: the time bounds below are for the test itself
	start := time.Now()
	dir := t.TempDir()
	cfgPath := pcWriteConfig(t)
	p := startServe(t, dir, "fsync", "--config", cfgPath)
	nc, js := pcConnect(t, p)
	apic := api.Client{NC: nc, Timeout: 10 * time.Second}

	// A first batch, all acknowledged, so there are holds to release.
	acked := map[string]string{}
	first := map[string]string{}
	for n := range 36 {
		first[fmt.Sprintf("PRE-%02d", n)] = pcKind(n)
	}
	pcSend(t, p.started.MLLP, acked, first, time.Time{})
	testutil.Eventually(t, 15*time.Second, "first holds open", func() bool {
		var hs []hold.Hold
		err := apic.Call(context.Background(), "holds.list", holdview.Filter{State: hold.StateHeld}, &hs)
		return err == nil && len(hs) >= 8
	})

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var (
		mu        sync.Mutex
		confirmed = map[string]bool{} // hold IDs whose release the API confirmed
		requested = map[string]bool{} // hold IDs asked to be released
		acks      atomic.Int64
		killed    = make(chan struct{})
		killOnce  sync.Once
	)
	var unclassified atomic.Int64 // inbound messages not yet acked by the classify step at the kill
	kill := func() {
		killOnce.Do(func() {
			unclassified.Store(pcUnclassified(js))
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			close(killed)
		})
	}
	// The releaser acknowledges open holds as their ordering provider until
	// the daemon dies.
	releaserDone := make(chan struct{})
	go func() {
		defer close(releaserDone)
		for {
			select {
			case <-killed:
				return
			default:
			}
			var hs []hold.Hold
			if err := apic.Call(ctx, "holds.list", holdview.Filter{State: hold.StateHeld, Limit: 20}, &hs); err != nil {
				return
			}
			for _, h := range hs {
				mu.Lock()
				done := requested[h.ID]
				requested[h.ID] = true
				mu.Unlock()
				if done {
					continue
				}
				err := apic.Call(ctx, "holds.release", api.ReleaseAPIRequest{ID: h.ID, AckRequest: pipeline.AckRequest{By: "D001", Reason: "discussed with the patient"}}, nil)
				if err != nil {
					var ae *api.Error
					if errors.As(err, &ae) {
						t.Errorf("release %s: %v", h.ID, err)
					}
					return // the daemon went away
				}
				mu.Lock()
				confirmed[h.ID] = true
				mu.Unlock()
			}
		}
	}()
	// Kill once the stream is well under way and some releases went through.
	go func() {
		for ctx.Err() == nil {
			mu.Lock()
			nConf := len(confirmed)
			mu.Unlock()
			if acks.Load() >= 120 && nConf >= 6 {
				kill()
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	out := &loadOutcome{acked: map[string]bool{}, inFlight: map[string]bool{}}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialRaw(ctx, p.started.MLLP)
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
				return
			}
			defer c.Close()
			for i := range 3000 {
				id := fmt.Sprintf("RUN-%d-%04d", w, i)
				ack, err := c.send(pcORU(pcKind(i+w), id, time.Time{}), 15*time.Second)
				out.mu.Lock()
				if err != nil {
					out.inFlight[id] = true
					out.mu.Unlock()
					return
				}
				if code := loadgen.AckCode(ack); code == "AA" {
					out.acked[id] = true
					acked[id] = pcKind(i + w)
				} else {
					out.bad = append(out.bad, id+"="+code)
				}
				out.mu.Unlock()
				acks.Add(1)
			}
		}()
	}
	wg.Wait()
	kill() // in case the stream ran out first (then the test fails below)
	<-releaserDone
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("resultgate serve survived SIGKILL for 10s")
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("serve ended with %v, not by SIGKILL", p.cmd.ProcessState)
	}
	if len(out.bad) > 0 {
		t.Errorf("negative ACKs before the kill: %v", firstN(out.bad, 10))
	}
	if acks.Load() >= 3*3000 {
		t.Fatal("the stream ran out before the kill: the kill was not mid-stream")
	}
	t.Logf("SIGKILL after %d ACKs, %d releases confirmed, %d requested, %d inbound messages not yet classified (%.1fs)",
		len(acked), len(confirmed), len(requested), unclassified.Load(), time.Since(start).Seconds())

	p2 := startServe(t, dir, "fsync", "--config", cfgPath)
	nc2, js2 := pcConnect(t, p2)
	api2 := api.Client{NC: nc2, Timeout: 10 * time.Second}
	var (
		feed  pcFeed
		holds map[string]*hold.Hold
	)
	testutil.Eventually(t, 30*time.Second, "reconciled after restart", func() bool {
		var ok bool
		feed, holds, ok = pcSettled(js2, acked)
		return ok
	})
	t.Logf("reconciled %.1fs after the restart began (%d feed results, %d holds)", time.Since(start).Seconds(), len(feed.hl7), len(holds))
	pcCheck(t, feed, holds, acked)
	byID := map[string]*hold.Hold{}
	for _, h := range holds {
		byID[h.ID] = h
	}
	for id := range confirmed {
		if h := byID[id]; h == nil || h.State != hold.StateReleased || h.Release.Path != hold.PathAcknowledged {
			t.Errorf("confirmed release of %s lost after the crash: %+v", id, h)
		}
	}
	// A release in flight at the kill may or may not have happened; the
	// clinician retries it: it releases now, or answers already released.
	retried := 0
	for id := range requested {
		if confirmed[id] {
			continue
		}
		retried++
		err := api2.Call(context.Background(), "holds.release", api.ReleaseAPIRequest{ID: id, AckRequest: pipeline.AckRequest{By: "D001"}}, nil)
		var ae *api.Error
		if err != nil && !(errors.As(err, &ae) && ae.Code == api.CodeAlreadyReleased) {
			t.Errorf("retrying release %s: %v", id, err)
		}
	}
	// A second release of a confirmed one is refused.
	for id := range confirmed {
		err := api2.Call(context.Background(), "holds.release", api.ReleaseAPIRequest{ID: id, AckRequest: pipeline.AckRequest{By: "D001"}}, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeAlreadyReleased {
			t.Errorf("second release of %s: %v, want %s", id, err, api.CodeAlreadyReleased)
		}
		break
	}
	testutil.Eventually(t, 20*time.Second, "retried releases published", func() bool {
		var ok bool
		feed, holds, ok = pcSettled(js2, acked)
		return ok
	})
	pcCheck(t, feed, holds, acked)
	for _, h := range holds {
		if requested[h.ID] && (h.State != hold.StateReleased || len(feed.hl7[h.Inbound.ControlID]) != 1) {
			t.Errorf("hold %s: release requested, state %s, %d feed messages", h.ID, h.State, len(feed.hl7[h.Inbound.ControlID]))
		}
	}
	t.Logf("%d in-flight releases retried; checked %d acknowledged messages (%.1fs)", retried, len(acked), time.Since(start).Seconds())
	if code := p2.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("restarted serve exit code %d after SIGTERM, want 0", code)
	}
}

// TestServeDeadlinePassedWhileDownReleasesOnce creates holds whose statute
// deadline (72 h after OBR-22) is a few seconds away, SIGKILLs `resultgate
// serve` before it, waits until the deadline has passed while nothing runs,
// and restarts it: each such hold is released on the deadline path exactly
// once, after the restart; a hold with a far deadline stays held and out of
// the feed. A second restart publishes nothing again.
func TestServeDeadlinePassedWhileDownReleasesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess deadline test; skipped with -short")
	}
	resultgateBinary(t)
	start := time.Now()
	dir := t.TempDir()
	cfgPath := pcWriteConfig(t)
	p := startServe(t, dir, "fsync", "--config", cfgPath)
	_, js := pcConnect(t, p)
	deadline := time.Now().Add(10 * time.Second).Truncate(time.Second)
	acked := map[string]string{}
	pcSend(t, p.started.MLLP, acked, map[string]string{
		"DL-1": pcDeadline, "DL-2": pcDeadline, "DL-3": pcDeadline, "LONG-1": pcHeld, "LAB-1": pcLab,
	}, deadline)
	testutil.Eventually(t, 15*time.Second, "holds created", func() bool {
		f, hs, ok := pcSettled(js, acked)
		return ok && len(hs) == 4 && len(f.hl7) == 1
	})
	if code := p.signal(syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Fatalf("serve exit code %d after SIGKILL, want -1", code)
	}
	if !time.Now().Before(deadline) {
		t.Fatalf("the deadline %s passed before the kill (%.1fs in): the machine is too slow for this offset", deadline, time.Since(start).Seconds())
	}
	testutil.Eventually(t, 20*time.Second, "deadline passed while resultgate is down", func() bool {
		return time.Now().After(deadline.Add(500 * time.Millisecond))
	})

	restarted := time.Now()
	p2 := startServe(t, dir, "fsync", "--config", cfgPath)
	_, js2 := pcConnect(t, p2)
	var (
		feed  pcFeed
		holds map[string]*hold.Hold
	)
	testutil.Eventually(t, 20*time.Second, "passed deadlines released after the restart", func() bool {
		var ok bool
		if feed, holds, ok = pcSettled(js2, acked); !ok {
			return false
		}
		for id, kind := range acked {
			if kind == pcDeadline && holds[id].State != hold.StateReleased {
				return false
			}
		}
		return true
	})
	pcCheck(t, feed, holds, acked)
	check := func(feed pcFeed, holds map[string]*hold.Hold) {
		t.Helper()
		for id, kind := range acked {
			h := holds[id]
			switch kind {
			case pcDeadline:
				if h.State != hold.StateReleased || pcReleases(h) != 1 || h.Release.Path != hold.PathDeadline {
					t.Errorf("%s: state %s, %d releases, release %+v; want released once at the deadline", id, h.State, pcReleases(h), h.Release)
					continue
				}
				if h.Release.At.Before(restarted) || h.Release.At.Before(deadline) {
					t.Errorf("%s: released at %s, want after the restart (%s) and the deadline (%s)", id, h.Release.At, restarted, deadline)
				}
				if n := len(feed.hl7[id]); n != 1 || feed.hl7[id][0].Get(bus.HeaderReleasePath) != string(hold.PathDeadline) {
					t.Errorf("%s: %d feed messages %v, want one on the deadline path", id, n, feed.hl7[id])
				}
			case pcHeld:
				if h.State != hold.StateHeld || len(feed.hl7[id]) != 0 {
					t.Errorf("%s: state %s, %d feed messages; want held, not in the feed", id, h.State, len(feed.hl7[id]))
				}
			}
		}
	}
	check(feed, holds)
	t.Logf("deadline holds released %.1fs after the restart", time.Since(restarted).Seconds())

	// Another restart does not fire or publish them again.
	if code := p2.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("serve exit code %d after SIGTERM, want 0", code)
	}
	p3 := startServe(t, dir, "fsync", "--config", cfgPath)
	_, js3 := pcConnect(t, p3)
	testutil.Eventually(t, 15*time.Second, "settled after the second restart", func() bool {
		var ok bool
		feed, holds, ok = pcSettled(js3, acked)
		return ok
	})
	pcCheck(t, feed, holds, acked)
	check(feed, holds)
	if code := p3.signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Errorf("serve exit code %d after SIGTERM, want 0", code)
	}
	t.Logf("done in %.1fs", time.Since(start).Seconds())
}
