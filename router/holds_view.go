package router

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/policy"
)

// timerKind is what a scheduled entry does when it falls due.
type timerKind uint8

const (
	timerDeadline timerKind = iota
	timerRemind
	timerEscalate
)

func (k timerKind) String() string {
	switch k {
	case timerDeadline:
		return "deadline"
	case timerRemind:
		return "reminder"
	default:
		return "escalation"
	}
}

// timerEntry is one scheduled event of one hold.
type timerEntry struct {
	at   time.Time
	id   string
	kind timerKind
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// HoldView is one instance's in-memory view of the holds bucket, built from a
// KV watcher (initial values, then every update). It indexes holds by ordering
// provider and patient and keeps the open holds' deadlines, reminders and
// escalations in a min-heap, so listing one provider's holds costs that
// provider's holds and the scheduler only looks at entries that are due.
// Restarting rebuilds it from the bucket. The view keeps a slim copy of each
// record (tag names without their evidence, basis kinds without their detail,
// no transitions: what listing, indexing and scheduling need), so memory grows
// linearly with the number of hold records at a few hundred bytes each; the
// full record is read from the bucket when it is needed (GetHold, releases,
// re-evaluation).
type HoldView struct {
	log zerolog.Logger

	mu         sync.RWMutex
	holds      map[string]*Hold
	byProvider map[string]map[string]struct{}
	byPatient  map[string]map[string]struct{}
	timers     timerHeap
	// scheduled remembers the times pushed per hold and kind, so an update that
	// does not move a time pushes nothing.
	scheduled map[string][3]time.Time
	ready     chan struct{}
	// changed is closed and replaced on every update (for waiters).
	changed chan struct{}
}

// NewHoldView returns an empty view; Run fills it.
func NewHoldView(log zerolog.Logger) *HoldView {
	return &HoldView{
		log:        log,
		holds:      map[string]*Hold{},
		byProvider: map[string]map[string]struct{}{},
		byPatient:  map[string]map[string]struct{}{},
		scheduled:  map[string][3]time.Time{},
		ready:      make(chan struct{}),
		changed:    make(chan struct{}),
	}
}

// Run watches the holds bucket until ctx ends. It closes Ready once the
// initial values are loaded.
func (v *HoldView) Run(ctx context.Context, kv jetstream.KeyValue) error {
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
func (v *HoldView) Ready() <-chan struct{} { return v.ready }

func (v *HoldView) apply(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		v.mu.Lock()
		v.removeLocked(e.Key())
		v.notifyLocked()
		v.mu.Unlock()
		return
	}
	var sh slimHold
	if err := json.Unmarshal(e.Value(), &sh); err != nil {
		v.log.Error().Err(err).Str("hold_id", e.Key()).Msg("undecodable hold record skipped")
		return
	}
	// Copy out of sh so that the decoded tag and basis slices are not kept.
	h := new(Hold)
	*h = sh.Hold
	h.Note, h.RulesetVersion = "", ""
	h.Tags = make([]policy.Tag, len(sh.Tags))
	for i, t := range sh.Tags {
		h.Tags[i].Tag = t.Tag
	}
	h.Bases = make([]Basis, len(sh.Bases))
	for i, b := range sh.Bases {
		h.Bases[i].Kind = b.Kind
	}
	h.Revision = e.Revision()
	v.observe(h)
}

// slimHold decodes a stored hold record without what the view does not keep
// (the note and rule-set version are decoded, then dropped):
// its fields shadow Hold's (encoding/json prefers the shallower field), so the
// evidence, basis details and transitions are skipped without allocating.
type slimHold struct {
	Hold
	Tags []struct {
		Tag string `json:"tag"`
	} `json:"tags"`
	Bases []struct {
		Kind string `json:"kind"`
	} `json:"bases"`
	Transitions skipJSON `json:"transitions"`
}

// skipJSON accepts and discards any JSON value.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// slim returns the part of h the view keeps (h itself is not changed).
func slim(h *Hold) *Hold {
	c := *h
	c.Tags = make([]policy.Tag, len(h.Tags))
	for i, t := range h.Tags {
		c.Tags[i].Tag = t.Tag
	}
	c.Bases = make([]Basis, len(h.Bases))
	for i, b := range h.Bases {
		c.Bases[i].Kind = b.Kind
	}
	c.Transitions = nil
	c.Note, c.RulesetVersion = "", ""
	return &c
}

// Observe records (a slim copy of) h in the view if it is newer than what the
// view has. The watcher calls it; writers call it too so their own change is
// visible at once.
func (v *HoldView) Observe(h *Hold) { v.observe(slim(h)) }

func (v *HoldView) observe(h *Hold) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur, ok := v.holds[h.ID]; ok && cur.Revision >= h.Revision {
		return
	}
	v.removeLocked(h.ID)
	v.holds[h.ID] = h
	if h.ProviderID != "" {
		addIndex(v.byProvider, h.ProviderID, h.ID)
	}
	if h.PatientKey != "" {
		addIndex(v.byPatient, h.PatientKey, h.ID)
	}
	if h.Open() {
		prev := v.scheduled[h.ID]
		times := [3]time.Time{h.Deadline, h.RemindAt, h.EscalateAt}
		if h.Reminded {
			times[timerRemind] = time.Time{}
		}
		if h.Escalated {
			times[timerEscalate] = time.Time{}
		}
		for k, t := range times {
			if !t.IsZero() && !t.Equal(prev[k]) {
				heap.Push(&v.timers, timerEntry{at: t, id: h.ID, kind: timerKind(k)})
			}
		}
		v.scheduled[h.ID] = times
	} else {
		delete(v.scheduled, h.ID)
	}
	v.notifyLocked()
}

func (v *HoldView) notifyLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

func addIndex(m map[string]map[string]struct{}, k, id string) {
	s := m[k]
	if s == nil {
		s = map[string]struct{}{}
		m[k] = s
	}
	s[id] = struct{}{}
}

func (v *HoldView) removeLocked(id string) {
	h, ok := v.holds[id]
	if !ok {
		return
	}
	delete(v.holds, id)
	if s := v.byProvider[h.ProviderID]; s != nil {
		delete(s, id)
		if len(s) == 0 {
			delete(v.byProvider, h.ProviderID)
		}
	}
	if s := v.byPatient[h.PatientKey]; s != nil {
		delete(s, id)
		if len(s) == 0 {
			delete(v.byPatient, h.PatientKey)
		}
	}
	delete(v.scheduled, id)
}

// Get returns the view's slim record of id (no evidence, basis details or
// transitions). Records in the view are never changed in place (an update
// replaces the pointer), so callers get a shallow copy and must treat its
// slices as read-only.
func (v *HoldView) Get(id string) (*Hold, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	h, ok := v.holds[id]
	if !ok {
		return nil, false
	}
	c := *h
	return &c, true
}

// HoldFilter selects holds for listing. Empty fields match everything.
type HoldFilter struct {
	Provider   string    `json:"provider,omitempty"`
	PatientKey string    `json:"patient_key,omitempty"`
	State      HoldState `json:"status,omitempty"`
	Tag        string    `json:"tag,omitempty"`
	Limit      int       `json:"limit,omitempty"`
}

// List returns the holds matching f, oldest deadline first, as slim records
// (tag names, basis kinds; no evidence, basis details or transitions). With a
// provider or patient it only looks at that provider's or patient's holds. The
// records are shallow copies: treat their slices as read-only.
func (v *HoldView) List(f HoldFilter) []*Hold {
	v.mu.RLock()
	var out []*Hold
	match := func(h *Hold) bool {
		if f.State != "" && h.State != f.State {
			return false
		}
		if f.Provider != "" && h.ProviderID != f.Provider {
			return false
		}
		if f.PatientKey != "" && h.PatientKey != f.PatientKey {
			return false
		}
		if f.Tag != "" && !slices.Contains(h.TagNames(), f.Tag) {
			return false
		}
		return true
	}
	visit := func(ids map[string]struct{}) {
		for id := range ids {
			if h := v.holds[id]; h != nil && match(h) {
				c := *h
				out = append(out, &c)
			}
		}
	}
	switch {
	case f.Provider != "":
		visit(v.byProvider[f.Provider])
	case f.PatientKey != "":
		visit(v.byPatient[f.PatientKey])
	default:
		for _, h := range v.holds {
			if match(h) {
				c := *h
				out = append(out, &c)
			}
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
func (v *HoldView) Unpublished() []*Hold {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []*Hold
	for _, h := range v.holds {
		if h.State == StateReleased && !h.Published && h.PublishError == "" {
			out = append(out, h.clone())
		}
	}
	return out
}

// Due pops and returns the timer entries due at now whose hold is still open
// with that same time. Stale entries (hold closed, time moved, reminder done)
// are dropped.
func (v *HoldView) Due(now time.Time) []timerEntry {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []timerEntry
	for len(v.timers) > 0 && !v.timers[0].at.After(now) {
		e := heap.Pop(&v.timers).(timerEntry)
		times, ok := v.scheduled[e.id]
		if !ok || !times[e.kind].Equal(e.at) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// Retry schedules e again at at (after a failed attempt).
func (v *HoldView) Retry(e timerEntry, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	times, ok := v.scheduled[e.id]
	if !ok || !times[e.kind].Equal(e.at) {
		return
	}
	times[e.kind] = at
	v.scheduled[e.id] = times
	heap.Push(&v.timers, timerEntry{at: at, id: e.id, kind: e.kind})
}

// Counts returns the number of records and of open holds.
func (v *HoldView) Counts() (records, open int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.holds), len(v.scheduled)
}

// WaitFor blocks until cond holds for the view or ctx ends (for callers that
// need to observe their own writes through the watcher).
func (v *HoldView) WaitFor(ctx context.Context, cond func(*HoldView) bool) error {
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
