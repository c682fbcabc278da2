package holdview

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/resultgate/resultgate/router/bus"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
)

// fakeEntry is a holds-bucket watcher entry, for feeding View.apply.
type fakeEntry struct {
	key   string
	value []byte
	rev   uint64
	op    jetstream.KeyValueOp
}

func (e fakeEntry) Bucket() string                  { return bus.KVHolds }
func (e fakeEntry) Key() string                     { return e.key }
func (e fakeEntry) Value() []byte                   { return e.value }
func (e fakeEntry) Revision() uint64                { return e.rev }
func (e fakeEntry) Created() time.Time              { return time.Time{} }
func (e fakeEntry) Delta() uint64                   { return 0 }
func (e fakeEntry) Operation() jetstream.KeyValueOp { return e.op }

// viewTestHold is a full record as the pipeline stores it (evidence, basis
// detail, transitions, note), i the hold number.
func viewTestHold(i int, now time.Time) *hold.Hold {
	return &hold.Hold{
		ID: fmt.Sprintf("%024x", 0xab0000+i), State: hold.StateHeld,
		Inbound:    hold.InboundRef{Stream: bus.StreamHL7In, Seq: uint64(i + 1), MsgID: fmt.Sprintf("LIS^1.2.3.4^ISO|HOSP^1.2.3.5^ISO|MSG%08d", i), Partition: "p01", ControlID: fmt.Sprintf("MSG%08d", i)},
		PatientKey: fmt.Sprintf("%024x", 0xcd0000+i), ProviderKey: fmt.Sprintf("%024x", 0xef0000+i%50), ProviderID: fmt.Sprintf("DR%04d", i%50),
		OrderKey: fmt.Sprintf("%024x", 0x120000+i),
		Tags: []policy.Tag{
			{Tag: policy.TagPathology, Evidence: []policy.Evidence{{Segment: "OBR", Field: "OBR-24", Rule: "svc.sp", Match: "SP"}}},
			{Tag: policy.TagMalignancy, Evidence: []policy.Evidence{{Segment: "OBX", Field: "OBX-5", Rule: "txt.malig", Match: "carcinoma"}}},
		}[:1+i%2],
		RulesetVersion: "2026.11.1",
		Bases:          []hold.Basis{{Kind: string(policy.BasisPatientRequest), Detail: json.RawMessage(`{"kind":"patient-request","until":"clinician-review"}`)}},
		Deadline:       now.Add(time.Duration(i%1000+1) * time.Hour), RemindAt: now.Add(time.Duration(i%1000) * time.Hour), EscalateAt: now.Add(time.Duration(i%1000)*time.Hour + 30*time.Minute),
		Notify: policy.NotifyPush, Note: "Your results are ready; your clinician will contact you.", CreatedAt: now,
		Transitions: []hold.Transition{{To: hold.StateHeld, Actor: "resultgate", Role: hold.RoleSystem, At: now}},
	}
}

func putEntry(t testing.TB, h *hold.Hold, rev uint64) fakeEntry {
	t.Helper()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return fakeEntry{key: h.ID, value: b, rev: rev, op: jetstream.KeyValuePut}
}

func listIDs(hs []*hold.Hold) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

// TestHoldViewOperations drives the view directly (watcher entries and
// Observe) and checks every read: List with each filter and its order, Get,
// Unpublished, Counts, Due, Retry and WaitFor.
func TestHoldViewOperations(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	v := New(zerolog.Nop())
	mk := func(id, prov, pat string, state hold.HoldState, deadline time.Duration, tags ...string) *hold.Hold {
		h := &hold.Hold{ID: id, State: state, ProviderID: prov, PatientKey: pat, Deadline: now.Add(deadline), CreatedAt: now,
			Inbound: hold.InboundRef{Stream: bus.StreamHL7In, Partition: "p01", MsgID: "m-" + id}, Notify: policy.NotifyPush,
			Note: "note", RulesetVersion: "rs1", Transitions: []hold.Transition{{To: state, At: now}},
			Bases: []hold.Basis{{Kind: string(policy.BasisPatientRequest), Detail: json.RawMessage(`{"x":1}`)}}}
		for _, tg := range tags {
			h.Tags = append(h.Tags, policy.Tag{Tag: tg, Evidence: []policy.Evidence{{Segment: "OBR"}}})
		}
		return h
	}
	rev := uint64(0)
	put := func(h *hold.Hold) {
		rev++
		v.apply(putEntry(t, h, rev))
	}
	put(mk("a", "DR1", "P1", hold.StateHeld, 3*time.Hour, policy.TagPathology))
	put(mk("b", "DR1", "P2", hold.StateHeld, 1*time.Hour, policy.TagPathology, policy.TagMalignancy))
	put(mk("c", "DR2", "P1", hold.StateHeld, 2*time.Hour, policy.TagGenetic))
	put(mk("d", "DR2", "P3", hold.StateReleased, 1*time.Hour, policy.TagPathology))
	put(mk("e", "", "", hold.StateHeld, 1*time.Hour)) // no provider, no patient
	// Same deadline as b and d: ordered by ID.
	put(mk("f", "DR1", "P2", hold.StateWithdrawn, 1*time.Hour))

	check := func(name string, f Filter, want ...string) {
		t.Helper()
		got := listIDs(v.List(f))
		if !slices.Equal(got, want) {
			t.Errorf("%s: List(%+v) = %v, want %v", name, f, got, want)
		}
	}
	check("all", Filter{}, "b", "d", "e", "f", "c", "a")
	check("limit", Filter{Limit: 2}, "b", "d")
	check("provider", Filter{Provider: "DR1"}, "b", "f", "a")
	check("provider+state", Filter{Provider: "DR1", State: hold.StateHeld}, "b", "a")
	check("provider+patient", Filter{Provider: "DR1", PatientKey: "P2"}, "b", "f")
	check("patient", Filter{PatientKey: "P1"}, "c", "a")
	check("patient+tag", Filter{PatientKey: "P1", Tag: policy.TagGenetic}, "c")
	check("tag", Filter{Tag: policy.TagPathology}, "b", "d", "a")
	check("tag second", Filter{Tag: policy.TagMalignancy}, "b")
	check("state", Filter{State: hold.StateReleased}, "d")
	check("unknown provider", Filter{Provider: "DR9"})
	if r, o := v.Counts(); r != 6 || o != 4 {
		t.Errorf("Counts = %d, %d, want 6, 4", r, o)
	}

	// Records are slim shallow copies: tag names and basis kinds only.
	b, ok := v.Get("b")
	if !ok {
		t.Fatal("Get(b) not found")
	}
	if !slices.Equal(b.TagNames(), []string{policy.TagPathology, policy.TagMalignancy}) || len(b.Bases) != 1 || b.Bases[0].Kind != string(policy.BasisPatientRequest) {
		t.Errorf("Get(b) tags %v bases %+v", b.TagNames(), b.Bases)
	}
	if b.Tags[0].Evidence != nil || b.Bases[0].Detail != nil || b.Transitions != nil || b.Note != "" || b.RulesetVersion != "" {
		t.Errorf("Get(b) kept more than the slim record: %+v", b)
	}
	if b.ProviderID != "DR1" || b.PatientKey != "P2" || b.State != hold.StateHeld || b.Inbound.Stream != bus.StreamHL7In || b.Inbound.Partition != "p01" || b.Inbound.MsgID != "m-b" || b.Notify != policy.NotifyPush || !b.Deadline.Equal(now.Add(time.Hour)) || b.Revision != 2 {
		t.Errorf("Get(b) = %+v", b)
	}
	b.State = hold.StateWithdrawn // a copy: the view is unchanged
	if b2, _ := v.Get("b"); b2.State != hold.StateHeld {
		t.Error("changing a returned record changed the view")
	}
	if _, ok := v.Get("zz"); ok {
		t.Error("Get(zz) found")
	}
	// A record from Observe is slimmed too, and the caller's record is not changed.
	full := mk("g", "DR3", "P4", hold.StateHeld, 5*time.Hour, policy.TagImaging)
	full.Revision = 100
	v.Observe(full)
	if g, _ := v.Get("g"); g.Tags[0].Evidence != nil || g.Transitions != nil || g.Note != "" {
		t.Errorf("Observe kept more than the slim record: %+v", g)
	}
	if full.Tags[0].Evidence == nil || full.Note == "" || full.Bases[0].Detail == nil {
		t.Error("Observe changed the caller's record")
	}
	// An older revision is ignored.
	old := mk("g", "DR1", "P4", hold.StateHeld, 5*time.Hour)
	old.Revision = 99
	v.Observe(old)
	check("stale ignored", Filter{Provider: "DR3"}, "g")

	// Moving a hold to another provider and patient, and closing it.
	rev = 200
	moved := mk("a", "DR2", "P3", hold.StateHeld, 3*time.Hour, policy.TagPathology)
	put(moved)
	check("moved from", Filter{Provider: "DR1"}, "b", "f")
	check("moved to", Filter{Provider: "DR2"}, "d", "c", "a")
	check("moved patient from", Filter{PatientKey: "P1"}, "c")
	check("moved patient to", Filter{PatientKey: "P3"}, "d", "a")
	// Deletes (from the watcher) and emptied index keys.
	v.apply(fakeEntry{key: "c", rev: 201, op: jetstream.KeyValueDelete})
	v.apply(fakeEntry{key: "g", rev: 202, op: jetstream.KeyValuePurge})
	check("deleted", Filter{Provider: "DR2"}, "d", "a")
	check("patient emptied", Filter{PatientKey: "P1"})
	check("provider emptied", Filter{Provider: "DR3"})
	if _, ok := v.Get("c"); ok {
		t.Error("deleted hold still in view")
	}
	if r, o := v.Counts(); r != 5 || o != 3 {
		t.Errorf("Counts after delete = %d, %d, want 5, 3", r, o)
	}

	// Unpublished: released, not published, no publish error.
	rel := mk("d", "DR2", "P3", hold.StateReleased, time.Hour)
	rel.Release = &hold.ReleaseInfo{Path: hold.PathDeadline, Actor: "resultgate", At: now}
	put(rel)
	pubErr := mk("h", "DR2", "P5", hold.StateReleased, time.Hour)
	pubErr.PublishError = "fhir mapping refused"
	put(pubErr)
	pub := mk("i", "DR2", "P6", hold.StateReleased, time.Hour)
	pub.Published = true
	put(pub)
	up := v.Unpublished()
	if len(up) != 1 || up[0].ID != "d" || up[0].Release == nil || up[0].Release.Path != hold.PathDeadline {
		t.Errorf("Unpublished = %v", listIDs(up))
	}
	rel.Published = true
	put(rel)
	if up := v.Unpublished(); len(up) != 0 {
		t.Errorf("Unpublished after publishing = %v", listIDs(up))
	}
}

// TestHoldViewTimers checks Due and Retry: each open hold's deadline,
// reminder and escalation fire once at their time; closing a hold, marking the
// reminder done or moving a time drops the stale entry; an update that moves
// no time does not fire again.
func TestHoldViewTimers(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	v := New(zerolog.Nop())
	h := &hold.Hold{ID: "x", State: hold.StateHeld, ProviderID: "DR1", Deadline: now.Add(3 * time.Hour), RemindAt: now.Add(time.Hour), EscalateAt: now.Add(2 * time.Hour), Revision: 1}
	v.Observe(h)
	y := &hold.Hold{ID: "y", State: hold.StateHeld, Deadline: now.Add(4 * time.Hour), Revision: 1}
	v.Observe(y)
	type ev struct {
		id   string
		kind TimerKind
	}
	due := func(at time.Time) []ev {
		var out []ev
		for _, e := range v.Due(at) {
			out = append(out, ev{e.ID, e.Kind})
		}
		return out
	}
	if got := due(now); len(got) != 0 {
		t.Fatalf("due now: %v", got)
	}
	// An update that moves nothing (a note) schedules nothing new.
	h.Revision, h.Note = 2, "changed"
	v.Observe(h)
	if got := due(now.Add(time.Hour)); !slices.Equal(got, []ev{{"x", TimerRemind}}) {
		t.Fatalf("due +1h: %v", got)
	}
	// A failed reminder is retried at the given time, once.
	e := v.Due(now.Add(time.Hour))
	if len(e) != 0 {
		t.Fatalf("reminder popped twice: %v", e)
	}
	v.Retry(Timer{At: stampOf(now.Add(time.Hour)), ID: "x", Kind: TimerRemind}, now.Add(90*time.Minute))
	v.Retry(Timer{At: stampOf(now.Add(time.Minute)), ID: "x", Kind: TimerRemind}, now.Add(80*time.Minute)) // stale: ignored
	if got := due(now.Add(85 * time.Minute)); len(got) != 0 {
		t.Fatalf("stale retry fired: %v", got)
	}
	if got := due(now.Add(90 * time.Minute)); !slices.Equal(got, []ev{{"x", TimerRemind}}) {
		t.Fatalf("retry: %v", got)
	}
	// Reminder done; escalation moved later: the old escalation is stale.
	h.Revision, h.Reminded, h.EscalateAt = 3, true, now.Add(150*time.Minute)
	v.Observe(h)
	if got := due(now.Add(2 * time.Hour)); len(got) != 0 {
		t.Fatalf("stale escalation fired: %v", got)
	}
	if got := due(now.Add(150 * time.Minute)); !slices.Equal(got, []ev{{"x", TimerEscalate}}) {
		t.Fatalf("moved escalation: %v", got)
	}
	// Closing x drops its deadline; y's still fires.
	h.Revision, h.State = 4, hold.StateReleased
	v.Observe(h)
	if r, o := v.Counts(); r != 2 || o != 1 {
		t.Errorf("Counts = %d, %d, want 2, 1", r, o)
	}
	if got := due(now.Add(5 * time.Hour)); !slices.Equal(got, []ev{{"y", TimerDeadline}}) {
		t.Fatalf("deadlines: %v", got)
	}
	// Retry for a closed or unknown hold does nothing.
	v.Retry(Timer{At: stampOf(now.Add(3 * time.Hour)), ID: "x", Kind: TimerDeadline}, now.Add(6*time.Hour))
	v.Retry(Timer{At: stampOf(now.Add(3 * time.Hour)), ID: "nope", Kind: TimerDeadline}, now.Add(6*time.Hour))
	if got := due(now.Add(7 * time.Hour)); len(got) != 0 {
		t.Fatalf("retry of closed hold fired: %v", got)
	}
}

func TestHoldViewWaitFor(t *testing.T) {
	v := New(zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- v.WaitFor(ctx, func(v *View) bool { _, ok := v.Get("w"); return ok })
	}()
	time.Sleep(10 * time.Millisecond)
	v.Observe(&hold.Hold{ID: "other", State: hold.StateHeld, Revision: 1})
	v.Observe(&hold.Hold{ID: "w", State: hold.StateHeld, Revision: 1})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if err := v.WaitFor(short, func(*View) bool { return false }); err == nil {
		t.Fatal("WaitFor returned without its condition")
	}
}

// TestHoldViewMemoryPerHold loads 10,000 stored hold records (2 tag
// combinations, 50 providers, each hold its own patient) through the watcher
// path and bounds the live heap the view keeps per hold.
func TestHoldViewMemoryPerHold(t *testing.T) {
	const n = 10000
	now := time.Now().UTC()
	entries := make([]fakeEntry, n)
	for i := range entries {
		entries[i] = putEntry(t, viewTestHold(i, now), uint64(i+1))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := New(zerolog.Nop())
	for _, e := range entries {
		v.apply(e)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("view heap per hold: %d bytes", per)
	if r, o := v.Counts(); r != n || o != n {
		t.Fatalf("Counts = %d, %d", r, o)
	}
	if l := v.List(Filter{Provider: "DR0007"}); len(l) != n/50 {
		t.Fatalf("listed %d", len(l))
	}
	runtime.KeepAlive(entries)
	// Measured: 1,504 bytes with per-hold tag and basis copies, a set per
	// index key and a scheduled map (commit 8baeabe); 909 bytes with shared
	// lists and strings, slice indexes and the times in the entry.
	const bound = 1100
	if per > bound {
		t.Errorf("view keeps %d bytes per hold, want ≤ %d", per, bound)
	}
	runtime.KeepAlive(v)
}

// TestHoldViewDoesNotKeepMessageBytes: the classify step's hold carries a
// control ID that is a slice of the inbound message (parsed in place); the
// view must keep a copy, not the message's memory.
func TestHoldViewDoesNotKeepMessageBytes(t *testing.T) {
	raw := make([]byte, 1<<20)
	copy(raw[4096:], "MSG00000042")
	h := viewTestHold(42, time.Now().UTC())
	h.Inbound.ControlID = unsafe.String(&raw[4096], len("MSG00000042"))
	v := New(zerolog.Nop())
	v.Observe(h)
	got, ok := v.Get(h.ID)
	if !ok || got.Inbound.ControlID != "MSG00000042" {
		t.Fatalf("Get: %+v, %v", got, ok)
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(got.Inbound.ControlID)))
	lo := uintptr(unsafe.Pointer(&raw[0]))
	if p >= lo && p < lo+uintptr(len(raw)) {
		t.Error("the view's control ID points into the inbound message's bytes")
	}
}

// TestHoldViewDueInRecordOrder: entries due together come in the order of
// their holds' KV revisions (the bucket's record order), whatever their times.
func TestHoldViewDueInRecordOrder(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	v := New(zerolog.Nop())
	// Later records have earlier times.
	for i, rev := range []uint64{30, 10, 20} {
		v.Observe(&hold.Hold{ID: fmt.Sprintf("h%d", i), State: hold.StateHeld, Deadline: now.Add(time.Duration(10-i) * time.Minute), Revision: rev})
	}
	var got []string
	for _, e := range v.Due(now.Add(time.Hour)) {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, []string{"h1", "h2", "h0"}) {
		t.Fatalf("due order %v, want record order h1 h2 h0", got)
	}
}
