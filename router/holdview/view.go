package holdview

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/hold"
)

// TimerKind is what a scheduled entry does when it falls due.
type TimerKind uint8

// Timer kinds.
const (
	TimerDeadline TimerKind = iota
	TimerRemind
	TimerEscalate
)

func (k TimerKind) String() string {
	switch k {
	case TimerDeadline:
		return "deadline"
	case TimerRemind:
		return "reminder"
	default:
		return "escalation"
	}
}

// stamp is an instant as Unix nanoseconds, 0 for none (the zero time). The
// timer heap and the scheduled times only order and compare instants, and a
// stamp takes 8 bytes where a time.Time takes 24.
type stamp int64

func stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(t.UnixNano())
}

// Timer is one scheduled event of one hold.
type Timer struct {
	// At is when the event falls due, as Unix nanoseconds.
	At stamp
	// ID is the hold's ID.
	ID string
	// Kind is what the event does.
	Kind TimerKind
}

type timerHeap []Timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].At < h[j].At }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(Timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// viewHold is the view's entry for one hold record: the slim record (never
// changed once stored: an update stores a new entry), the times pushed to the
// timer heap while the hold is open, and the entry's positions in the provider
// and patient indexes.
type viewHold struct {
	hold.Hold
	// due holds the deadline, reminder and escalation pushed for an open hold,
	// by TimerKind (0: none); a heap entry whose time differs is stale.
	due [3]stamp
	pos [2]int32 // in byProvider, byPatient
}

// holdIndex lists the entries per key (ordering provider or patient). Each
// entry records its position in its key's list, so removal moves the last
// entry into its place: the order within a key does not matter (List sorts).
// A slice of pointers per key costs 8 bytes per hold, where a set per key
// cost a whole map for each patient (who usually has one hold).
type holdIndex struct {
	keys map[string][]*viewHold
	slot int // which of viewHold.pos
}

func (ix *holdIndex) add(k string, e *viewHold) {
	s := ix.keys[k]
	e.pos[ix.slot] = int32(len(s))
	ix.keys[k] = append(s, e)
}

func (ix *holdIndex) remove(k string, e *viewHold) {
	s := ix.keys[k]
	i, last := e.pos[ix.slot], len(s)-1
	s[i] = s[last]
	s[i].pos[ix.slot] = i
	s[last] = nil
	s = s[:last]
	switch {
	case len(s) == 0:
		delete(ix.keys, k)
		return
	case cap(s) > 16 && len(s) < cap(s)/4:
		s = slices.Clone(s) // give back what a shrunk key no longer needs
	}
	ix.keys[k] = s
}

// internMax bounds each interning table, so values that keep changing cannot
// grow it without end; past the bound, values are kept as they come.
const internMax = 1 << 14

// interner keeps one copy of what many holds repeat: short strings (states,
// streams, partitions, providers) and the slim tag and basis lists (one
// read-only slice per combination of tag names or basis kinds).
type interner struct {
	strs  map[string]string
	tags  map[string][]policy.Tag
	bases map[string][]hold.Basis
	key   []byte
}

func (in *interner) str(s string) string {
	if c, ok := in.strs[s]; ok {
		return c
	}
	if len(in.strs) < internMax {
		s = strings.Clone(s)
		in.strs[s] = s
	}
	return s
}

func internAs[S ~string](in *interner, s S) S { return S(in.str(string(s))) }

// names builds the lookup key of a list of n names ("a\x00b\x00").
func (in *interner) names(n int, name func(int) string) []byte {
	in.key = in.key[:0]
	for i := range n {
		in.key = append(append(in.key, name(i)...), 0)
	}
	return in.key
}

// tagList returns the shared slim list (names only) of ts's tag names.
func (in *interner) tagList(ts []policy.Tag) []policy.Tag {
	return internList(in, in.tags, len(ts), func(i int) string { return ts[i].Tag },
		func(name string) policy.Tag { return policy.Tag{Tag: name} })
}

// basisList returns the shared slim list (kinds only) of bs's basis kinds.
func (in *interner) basisList(bs []hold.Basis) []hold.Basis {
	return internList(in, in.bases, len(bs), func(i int) string { return bs[i].Kind },
		func(kind string) hold.Basis { return hold.Basis{Kind: kind} })
}

// internList returns table's shared list for the n names, making it (one
// slim element per interned name) the first time.
func internList[T any](in *interner, table map[string][]T, n int, name func(int) string, slim func(string) T) []T {
	k := in.names(n, name)
	if c, ok := table[string(k)]; ok {
		return c
	}
	c := make([]T, n)
	for i := range c {
		c[i] = slim(in.str(name(i)))
	}
	if len(table) < internMax {
		table[string(k)] = c
	}
	return c
}

// View is one instance's in-memory view of the holds bucket, built from a
// KV watcher (initial values, then every update). It indexes holds by ordering
// provider and patient and keeps the open holds' deadlines, reminders and
// escalations in a min-heap, so listing one provider's holds costs that
// provider's holds and the scheduler only looks at entries that are due.
// Restarting rebuilds it from the bucket. The view keeps a slim copy of each
// record (tag names without their evidence, basis kinds without their detail,
// no transitions, note or rule-set version: what listing, indexing and
// scheduling need), with the tag and basis lists and short repeated strings
// shared between holds, so memory grows linearly with the number of hold
// records at under a kilobyte each (TestHoldViewMemoryPerHold); the full
// record is read from the bucket when it is needed (GetHold, releases,
// re-evaluation).
type View struct {
	log zerolog.Logger

	mu         sync.RWMutex
	holds      map[string]*viewHold
	byProvider holdIndex
	byPatient  holdIndex
	timers     timerHeap
	open       int // holds in state held
	intern     interner
	ready      chan struct{}
	// changed is closed and replaced on every update (for waiters).
	changed chan struct{}
	// timersAdded gets a token (never blocking) whenever a timer is pushed,
	// so the scheduler looks at once at a deadline that is already due.
	timersAdded chan struct{}
}

// New returns an empty view; Run fills it.
func New(log zerolog.Logger) *View {
	return &View{
		log:         log,
		holds:       map[string]*viewHold{},
		byProvider:  holdIndex{keys: map[string][]*viewHold{}, slot: 0},
		byPatient:   holdIndex{keys: map[string][]*viewHold{}, slot: 1},
		intern:      interner{strs: map[string]string{}, tags: map[string][]policy.Tag{}, bases: map[string][]hold.Basis{}},
		ready:       make(chan struct{}),
		changed:     make(chan struct{}),
		timersAdded: make(chan struct{}, 1),
	}
}

// Run watches the holds bucket until ctx ends. It closes Ready once the
// initial values are loaded.
func (v *View) Run(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching holds: %w", err)
	}
	defer func() { _ = w.Stop() }()
	// The initial values hold each key once (its latest revision), so they can
	// be decoded in parallel: decoding dominates a restart with many holds.
	// Later updates are applied in order.
	initial := make(chan jetstream.KeyValueEntry, 256)
	var wg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range initial {
				v.apply(e)
			}
		}()
	}
	loading := true
	finishLoad := func() {
		if loading {
			loading = false
			close(initial)
			wg.Wait()
		}
	}
	defer finishLoad()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("holds watcher closed")
			}
			switch {
			case e == nil:
				if loading {
					finishLoad()
					close(v.ready)
				}
			case loading:
				initial <- e
			default:
				v.apply(e)
			}
		}
	}
}

// Ready is closed once the view holds every record present at start.
func (v *View) Ready() <-chan struct{} { return v.ready }

// TimersAdded delivers a token after timers were pushed (at most one
// pending): a hold that arrives with its deadline already passed (a restart
// after an outage, a hold created late) is then fired without waiting for the
// scheduler's next tick.
func (v *View) TimersAdded() <-chan struct{} { return v.timersAdded }

func (v *View) apply(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		v.mu.Lock()
		v.removeLocked(e.Key())
		v.notifyLocked()
		v.mu.Unlock()
		return
	}
	// The classify step and the gate observe what they write: the watcher's
	// copy of such an update arrives after it and is not decoded again.
	v.mu.Lock()
	cur := v.holds[e.Key()]
	seen := cur != nil && cur.Revision >= e.Revision()
	v.mu.Unlock()
	if seen {
		return
	}
	var sh slimHold
	if err := decodeSlim(e.Value(), &sh); err != nil {
		v.log.Error().Err(err).Str("hold_id", e.Key()).Msg("undecodable hold record skipped")
		return
	}
	vh := &viewHold{Hold: sh.Hold}
	// Names and kinds only; observe replaces these by the shared lists.
	vh.Tags = make([]policy.Tag, len(sh.Tags))
	for i, t := range sh.Tags {
		vh.Tags[i].Tag = t.Tag
	}
	vh.Bases = make([]hold.Basis, len(sh.Bases))
	for i, b := range sh.Bases {
		vh.Bases[i].Kind = b.Kind
	}
	vh.Revision = e.Revision()
	v.observe(vh)
}

// slimHold decodes a stored hold record without what the view does not keep
// (the note and rule-set version are decoded, then dropped):
// its fields shadow Hold's (encoding/json prefers the shallower field), so the
// evidence, basis details and transitions are skipped without allocating.
type slimHold struct {
	hold.Hold
	Tags []struct {
		Tag string `json:"tag"`
	} `json:"tags"`
	Bases []struct {
		Kind string `json:"kind"`
	} `json:"bases"`
	Transitions skipJSON `json:"transitions"`
}

// decodeSlim decodes a stored hold record for the view with the JSON v2
// decoder (github.com/go-json-experiment/json, the proposal behind
// encoding/json/v2): a restart decodes every hold once, and v1's
// encoding/json.Unmarshal scans each record twice (validation, then decoding)
// and allocates for every skipped value — at 100,000 holds that was half of
// the restart's CPU. The records are written by encoding/json (valid UTF-8,
// exact member names, no duplicates), which both decoders read alike;
// TestSlimDecodeMatchesV1 checks that they do. What v2 refuses and v1 reads
// (invalid UTF-8 or a repeated member name, e.g. in a record written by
// another tool) is decoded by v1, so the view never drops a record v1 reads.
func decodeSlim(data []byte, sh *slimHold) error {
	if err := jsonv2.Unmarshal(data, sh); err != nil {
		*sh = slimHold{}
		return json.Unmarshal(data, sh)
	}
	return nil
}

// skipJSON accepts and discards any JSON value.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// Observe records (a slim copy of) h in the view if it is newer than what the
// view has. The watcher calls it; writers call it too so their own change is
// visible at once. h is not changed.
func (v *View) Observe(h *hold.Hold) { v.observe(&viewHold{Hold: *h}) }

// slimLocked drops from e what the view does not keep and shares its tag and
// basis lists and short repeated strings with other holds.
func (v *View) slimLocked(e *viewHold) {
	in := &v.intern
	e.Tags = in.tagList(e.Tags)
	e.Bases = in.basisList(e.Bases)
	e.Transitions = nil
	e.Note, e.RulesetVersion = "", ""
	e.State = internAs(in, e.State)
	e.Notify = internAs(in, e.Notify)
	e.Inbound.Stream = in.str(e.Inbound.Stream)
	e.Inbound.Partition = in.str(e.Inbound.Partition)
	// The classify step's control ID is a slice of the inbound message (parsed
	// in place, hl7.NoCopy): a copy, so that the view does not keep every
	// held message's bytes alive.
	e.Inbound.ControlID = strings.Clone(e.Inbound.ControlID)
	e.ProviderID = in.str(e.ProviderID)
	e.ProviderKey = in.str(e.ProviderKey)
}

func (v *View) observe(e *viewHold) {
	v.mu.Lock()
	defer v.mu.Unlock()
	cur := v.holds[e.ID]
	if cur != nil && cur.Revision >= e.Revision {
		return
	}
	v.slimLocked(e)
	// What is already pushed for this hold: an update that does not move a
	// time pushes nothing.
	var prev [3]stamp
	if cur != nil && cur.Open() {
		prev = cur.due
	}
	v.removeLocked(e.ID)
	v.holds[e.ID] = e
	if e.ProviderID != "" {
		v.byProvider.add(e.ProviderID, e)
	}
	if e.PatientKey != "" {
		v.byPatient.add(e.PatientKey, e)
	}
	if e.Open() {
		v.open++
		e.due = [3]stamp{stampOf(e.Deadline), stampOf(e.RemindAt), stampOf(e.EscalateAt)}
		if e.Reminded {
			e.due[TimerRemind] = 0
		}
		if e.Escalated {
			e.due[TimerEscalate] = 0
		}
		pushed := false
		for k, at := range e.due {
			if at != 0 && at != prev[k] {
				heap.Push(&v.timers, Timer{At: at, ID: e.ID, Kind: TimerKind(k)})
				pushed = true
			}
		}
		if pushed {
			select {
			case v.timersAdded <- struct{}{}:
			default:
			}
		}
	}
	v.notifyLocked()
}

func (v *View) notifyLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *View) removeLocked(id string) {
	e, ok := v.holds[id]
	if !ok {
		return
	}
	delete(v.holds, id)
	if e.ProviderID != "" {
		v.byProvider.remove(e.ProviderID, e)
	}
	if e.PatientKey != "" {
		v.byPatient.remove(e.PatientKey, e)
	}
	if e.Open() {
		v.open--
	}
}

// Get returns the view's slim record of id (no evidence, basis details or
// transitions). Records in the view are never changed in place (an update
// replaces the entry), so callers get a shallow copy and must treat its
// slices as read-only (they are shared with other holds).
func (v *View) Get(id string) (*hold.Hold, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.holds[id]
	if !ok {
		return nil, false
	}
	c := e.Hold
	return &c, true
}

// Filter selects holds for listing. Empty fields match everything.
type Filter struct {
	Provider   string         `json:"provider,omitempty"`
	PatientKey string         `json:"patient_key,omitempty"`
	State      hold.HoldState `json:"status,omitempty"`
	Tag        string         `json:"tag,omitempty"`
	Limit      int            `json:"limit,omitempty"`
}

// List returns the holds matching f, oldest deadline first, as slim records
// (tag names, basis kinds; no evidence, basis details or transitions). With a
// provider or patient it only looks at that provider's or patient's holds. The
// records are shallow copies: treat their slices as read-only.
func (v *View) List(f Filter) []*hold.Hold {
	v.mu.RLock()
	var out []*hold.Hold
	match := func(h *hold.Hold) bool {
		if f.State != "" && h.State != f.State {
			return false
		}
		if f.Provider != "" && h.ProviderID != f.Provider {
			return false
		}
		if f.PatientKey != "" && h.PatientKey != f.PatientKey {
			return false
		}
		if f.Tag != "" && !slices.ContainsFunc(h.Tags, func(t policy.Tag) bool { return t.Tag == f.Tag }) {
			return false
		}
		return true
	}
	visit := func(e *viewHold) {
		if match(&e.Hold) {
			c := e.Hold
			out = append(out, &c)
		}
	}
	switch {
	case f.Provider != "":
		for _, e := range v.byProvider.keys[f.Provider] {
			visit(e)
		}
	case f.PatientKey != "":
		for _, e := range v.byPatient.keys[f.PatientKey] {
			visit(e)
		}
	default:
		for _, e := range v.holds {
			visit(e)
		}
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Deadline.Equal(out[j].Deadline) {
			return out[i].Deadline.Before(out[j].Deadline)
		}
		return out[i].ID < out[j].ID
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// Unpublished returns the released holds whose portal messages are not yet
// confirmed (the reconciler's work list).
func (v *View) Unpublished() []*hold.Hold {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []*hold.Hold
	for _, e := range v.holds {
		if e.State == hold.StateReleased && !e.Published && e.PublishError == "" {
			out = append(out, e.Clone())
		}
	}
	return out
}

// Due pops and returns the timer entries due at now whose hold is still open
// with that same time. Stale entries (hold closed, time moved, reminder done)
// are dropped. The entries come in the order of their holds' records in the
// bucket (KV revision), not of their times: all are due, and after an outage
// thousands can be, each read from the bucket when it fires; in record order
// those reads walk the file store's blocks once instead of loading (and
// caching, 4 MB a block for 10 s) blocks all over the bucket at random.
func (v *View) Due(now time.Time) []Timer {
	v.mu.Lock()
	defer v.mu.Unlock()
	type dueEntry struct {
		e   Timer
		rev uint64
	}
	var due []dueEntry
	for n := stampOf(now); len(v.timers) > 0 && v.timers[0].At <= n; {
		e := heap.Pop(&v.timers).(Timer)
		h := v.holds[e.ID]
		if h == nil || !h.Open() || h.due[e.Kind] != e.At {
			continue
		}
		due = append(due, dueEntry{e, h.Revision})
	}
	slices.SortStableFunc(due, func(a, b dueEntry) int { return cmp.Compare(a.rev, b.rev) })
	var out []Timer
	for _, d := range due {
		out = append(out, d.e)
	}
	return out
}

// Retry schedules e again at at (after a failed attempt).
func (v *View) Retry(e Timer, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.holds[e.ID]
	if h == nil || !h.Open() || h.due[e.Kind] != e.At {
		return
	}
	h.due[e.Kind] = stampOf(at)
	heap.Push(&v.timers, Timer{At: h.due[e.Kind], ID: e.ID, Kind: e.Kind})
}

// Counts returns the number of records and of open holds.
func (v *View) Counts() (records, open int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.holds), v.open
}

// WaitFor blocks until cond holds for the view or ctx ends (for callers that
// need to observe their own writes through the watcher).
func (v *View) WaitFor(ctx context.Context, cond func(*View) bool) error {
	for {
		v.mu.RLock()
		ch := v.changed
		v.mu.RUnlock()
		if cond(v) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
