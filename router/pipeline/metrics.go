package pipeline

import (
	"sync"

	"github.com/resultgate/resultgate/router/hold"
)

// Metrics counts what the pipeline does, for the Prometheus exporter (issue
// section 6) to publish. Keys are actions, paths and reasons only, never PHI.
// A nil *Metrics records nothing.
type Metrics struct {
	mu        sync.Mutex
	processed map[string]uint64
	decisions map[string]uint64
	released  map[string]uint64
	deadC     map[string]uint64
	retries   uint64
	rounds    uint64
	timeouts  uint64
	abandoned int64
}

// MetricsSnapshot is a copy of the counters.
type MetricsSnapshot struct {
	// Processed counts classify outcomes: acked, retried, dead.
	Processed map[string]uint64 `json:"processed"`
	// Decisions counts policy decisions by action.
	Decisions map[string]uint64 `json:"decisions"`
	// Releases counts results published to the portal feed by release path.
	Releases map[string]uint64 `json:"releases"`
	// Dead counts dead-lettered messages by reason.
	Dead map[string]uint64 `json:"dead"`
	// Retries counts transient classify failures that were retried.
	Retries uint64 `json:"retries"`
	// Timeouts counts classify attempts abandoned at holds.process_timeout.
	Timeouts uint64 `json:"timeouts"`
	// Abandoned is the number of abandoned attempts still computing (they
	// can no longer write; each ends when its pure computation does).
	Abandoned int64 `json:"abandoned"`
	// AuditRetries counts audit appends that were retried.
	AuditRetries uint64 `json:"audit_retries"`
	// AuditConflicts counts audit appends that lost the race for the chain
	// head to another instance and were linked again.
	AuditConflicts uint64 `json:"audit_conflicts"`
	// ReconcileRounds counts the reconciler's rounds (each looks for released
	// results not yet on the feed).
	ReconcileRounds uint64 `json:"reconcile_rounds"`
}

// NewMetrics returns zeroed counters.
func NewMetrics() *Metrics {
	return &Metrics{processed: map[string]uint64{}, decisions: map[string]uint64{}, released: map[string]uint64{}, deadC: map[string]uint64{}}
}

// Snapshot returns a copy of the counters.
func (m *Metrics) Snapshot() MetricsSnapshot {
	if m == nil {
		return MetricsSnapshot{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := func(src map[string]uint64) map[string]uint64 {
		out := make(map[string]uint64, len(src))
		for k, v := range src {
			out[k] = v
		}
		return out
	}
	return MetricsSnapshot{Processed: cp(m.processed), Decisions: cp(m.decisions), Releases: cp(m.released), Dead: cp(m.deadC), Retries: m.retries, ReconcileRounds: m.rounds,
		Timeouts: m.timeouts, Abandoned: m.abandoned}
}

func (m *Metrics) inc(c map[string]uint64, k string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	c[k]++
	m.mu.Unlock()
}

func (m *Metrics) outcome(o string) {
	if m != nil {
		m.inc(m.processed, o)
	}
}

func (m *Metrics) decision(a string) {
	if m != nil {
		m.inc(m.decisions, a)
	}
}

func (m *Metrics) releases(p hold.ReleasePath) {
	if m != nil {
		m.inc(m.released, string(p))
	}
}

func (m *Metrics) dead(reason string) {
	if m != nil {
		m.inc(m.deadC, reason)
	}
}

func (m *Metrics) retry() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.retries++
	m.mu.Unlock()
}

// timeout counts a delivery that ran out of its processing budget; abandoned
// says its attempt is still running.
func (m *Metrics) timeout(abandoned bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.timeouts++
	if abandoned {
		m.abandoned++
	}
	m.mu.Unlock()
}

// abandonedEnded counts an abandoned attempt that has returned.
func (m *Metrics) abandonedEnded() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.abandoned--
	m.mu.Unlock()
}

func (m *Metrics) round() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.rounds++
	m.mu.Unlock()
}

// Released counts a result published on path (feed.Metrics).
func (m *Metrics) Released(path hold.ReleasePath) { m.releases(path) }

// Dead counts a dead letter by reason (feed.Metrics).
func (m *Metrics) Dead(reason string) { m.dead(reason) }

// ReconcileRound counts one reconciler round (feed.Metrics).
func (m *Metrics) ReconcileRound() { m.round() }
