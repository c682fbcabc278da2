package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// ActionNotDelivered is the action of the audit event of a result that did
// not reach the portal feed (dead-lettered by the classify step, or released
// but unpublishable): the compliance trail shows what was decided and that it
// was not delivered, linked by hold ID and control ID.
const ActionNotDelivered = "not-delivered"

// Event is one entry of the append-only audit trail.
type Event struct {
	Kind       string    `json:"kind"`
	At         time.Time `json:"at"`
	HoldID     string    `json:"hold_id,omitempty"`
	PatientKey string    `json:"patient_key,omitempty"`
	OrderKey   string    `json:"order_key,omitempty"`
	MsgID      string    `json:"msg_id,omitempty"`
	ControlID  string    `json:"control_id,omitempty"`
	InboundSeq uint64    `json:"inbound_seq,omitempty"`
	// Decision fields.
	Action         string       `json:"action,omitempty"`
	Disposition    string       `json:"disposition,omitempty"`
	Tags           []policy.Tag `json:"tags,omitempty"`
	RulesetVersion string       `json:"ruleset_version,omitempty"`
	Bases          []hold.Basis `json:"bases,omitempty"`
	Deadline       time.Time    `json:"deadline,omitzero"`
	Notify         string       `json:"notify,omitempty"`
	// Action fields.
	From   hold.HoldState   `json:"from,omitempty"`
	To     hold.HoldState   `json:"to,omitempty"`
	Path   hold.ReleasePath `json:"path,omitempty"`
	Actor  string           `json:"actor,omitempty"`
	Role   string           `json:"role,omitempty"`
	Reason string           `json:"reason,omitempty"`
	// HarmType is a determination's type of harm (Preventing Harm).
	HarmType string `json:"harm_type,omitempty"`
	// DeadSeq is the DEAD stream sequence of the dead-letter record a
	// discard (or triage) event is about.
	DeadSeq uint64 `json:"dead_seq,omitempty"`
	// Determination is the ID of the clinician determination an event of
	// kind determination is about (Action says placed, withdrawn, released).
	Determination string `json:"determination_id,omitempty"`
	// Seq is the AUDIT stream sequence (set when read back).
	Seq uint64 `json:"seq,omitempty"`
}

// Trail appends events to the AUDIT stream (which denies delete and purge),
// each linked to its predecessor by HeaderAuditPrev (see chain.go). Appends of
// one process are serialised; several processes append with optimistic
// concurrency on the stream's last sequence.
type Trail struct {
	js      jetstream.JetStream
	log     zerolog.Logger
	retries atomic.Uint64
	// conflicts counts appends that found another writer ahead of them.
	conflicts atomic.Uint64

	// sem serialises appends: the chain has one head.
	sem chan struct{}
	// head is the chain head as this process last wrote or read it.
	head chainHead
	// highest is the highest AUDIT sequence this process has seen: a head
	// below it means the trail was truncated under it.
	highest uint64
}

// NewTrail returns the audit trail writer and reader over js; log receives a
// line per retried append (never event content).
func NewTrail(js jetstream.JetStream, log zerolog.Logger) *Trail {
	return &Trail{js: js, log: log, sem: make(chan struct{}, 1)}
}

// recordAttempts bounds the tries of one append: a transient failure (a
// leader election, a timeout) is retried after recordBackoff; what still
// fails is the caller's error, and the caller then does not make the change
// it was auditing (every state change is audited or not made).
const recordAttempts = 3

var recordBackoff = [...]time.Duration{50 * time.Millisecond, 250 * time.Millisecond}

// Retries returns how many appends were retried since start.
func (a *Trail) Retries() uint64 { return a.retries.Load() }

// Conflicts returns how many appends found another writer's event at the
// chain head and were linked again (several instances share one trail).
func (a *Trail) Conflicts() uint64 { return a.conflicts.Load() }

// auditBuckets is the number of audit subject buckets. The file store keeps
// an in-memory index entry (~130 B) for every distinct subject of a stream,
// and AUDIT is never purged: with the key itself in the subject that index
// grew by one entry per result for as long as the trail is kept (~130 MB per
// million results, rebuilt at every start). With the key hashed into 4,096
// buckets it is bounded (kinds × 4,096 subjects), and a query for one hold
// reads that hold's bucket, 1/4,096 of the trail, and keeps its own events.
const auditBuckets = 4096

// auditBucket returns the subject token of key: three lowercase hex digits of
// its FNV-1a hash.
func auditBucket(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	const hex = "0123456789abcdef"
	b := h.Sum32() % auditBuckets
	return string([]byte{hex[b>>8], hex[b>>4&0xf], hex[b&0xf]})
}

// auditSubject is the subject of e.
func auditSubject(e *Event) string { return bus.AuditSubject(e.Kind, auditBucket(e.key())) }

// key returns the key e is filed under.
func (e *Event) key() string {
	switch {
	case e.HoldID != "":
		return e.HoldID
	case e.PatientKey != "":
		return e.PatientKey
	case e.OrderKey != "":
		return e.OrderKey
	default:
		return "none"
	}
}

// Record appends e with Nats-Msg-Id id (stable per event, so a re-run adds no
// second copy within the duplicate window), linked to the chain head: it
// publishes with the head's sequence as the expected last sequence, and when
// another writer got there first it reads the new head and links again. It
// fails with ErrTrailTruncated, and appends nothing, when the stream's head
// is behind what this process has already seen.
func (a *Trail) Record(ctx context.Context, id string, e Event) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding audit event: %w", err)
	}
	subj := auditSubject(&e)
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("publishing %s: %w", subj, ctx.Err())
	}
	defer func() { <-a.sem }()
	for attempt, conflicts := 1, 0; ; {
		err = a.appendLinked(ctx, subj, "aud-"+id, data)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrTrailTruncated) || errors.Is(err, ErrTrailReconfigured) {
			return fmt.Errorf("publishing %s: %w", subj, err)
		}
		if isWrongLastSeq(err) && conflicts < maxConflicts && ctx.Err() == nil {
			conflicts++
			a.conflicts.Add(1)
			continue
		}
		if attempt == recordAttempts || ctx.Err() != nil {
			return fmt.Errorf("publishing %s: %w", subj, err)
		}
		a.retries.Add(1)
		a.log.Warn().Err(err).Str("kind", e.Kind).Int("attempt", attempt).Msg("audit append failed; retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing %s: %w", subj, err)
		case <-time.After(recordBackoff[attempt-1]):
		}
		attempt++
	}
}

// Transition audits one transition of h.
func (a *Trail) Transition(ctx context.Context, h *hold.Hold, t hold.Transition) error {
	kind := bus.AuditTransition
	if t.Path == hold.PathOverride {
		kind = bus.AuditOverride
	}
	id := h.ID + "-" + string(t.To) + "-" + strconv.Itoa(len(h.Transitions))
	if err := a.Record(ctx, id, Event{
		Kind: kind, At: t.At, HoldID: h.ID, PatientKey: h.PatientKey, OrderKey: h.OrderKey,
		MsgID: h.Inbound.MsgID, ControlID: h.Inbound.ControlID, InboundSeq: h.Inbound.Seq,
		From: t.From, To: t.To, Path: t.Path, Actor: t.Actor, Role: t.Role, Reason: t.Reason,
		Deadline: h.Deadline, Bases: h.Bases, RulesetVersion: h.RulesetVersion,
	}); err != nil {
		return err
	}
	return a.HoldEvent(ctx, h, t, len(h.Transitions))
}

// HoldEvent is the body of a hold.<state> event on the HOLDS stream: a
// compact, PHI-free change feed of hold states for dashboards and the web
// page (the record itself is in the holds bucket).
type HoldEvent struct {
	HoldID      string           `json:"hold_id"`
	From        hold.HoldState   `json:"from,omitempty"`
	To          hold.HoldState   `json:"to"`
	Path        hold.ReleasePath `json:"path,omitempty"`
	Role        string           `json:"role,omitempty"`
	ProviderKey string           `json:"provider_key,omitempty"`
	Deadline    time.Time        `json:"deadline"`
	At          time.Time        `json:"at"`
}

// HoldEvent publishes transition n of h on hold.<to> with a stable Msg-Id.
func (a *Trail) HoldEvent(ctx context.Context, h *hold.Hold, t hold.Transition, n int) error {
	data, err := json.Marshal(HoldEvent{HoldID: h.ID, From: t.From, To: t.To, Path: t.Path, Role: t.Role, ProviderKey: h.ProviderKey, Deadline: h.Deadline, At: t.At})
	if err != nil {
		return fmt.Errorf("encoding hold event: %w", err)
	}
	subj := bus.HoldEventSubject(string(t.To))
	_, err = a.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: data},
		jetstream.WithMsgID("hev-"+h.ID+"-"+string(t.To)+"-"+strconv.Itoa(n)), jetstream.WithExpectStream(bus.StreamHolds))
	if err != nil {
		return fmt.Errorf("publishing %s: %w", subj, err)
	}
	return nil
}

// Query selects audit events.
type Query struct {
	HoldID string    `json:"hold_id,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// Kinds, when not empty, keeps only events of these kinds (read with a
	// subject filter per kind, so the rest of the trail is not read).
	Kinds []string `json:"kinds,omitempty"`
	// Limit caps the events returned; default and maximum 10000.
	Limit int `json:"limit,omitempty"`
}

// maxAuditRead bounds one audit query.
const maxAuditRead = 10000

// Query reads the audit events matching q, oldest first. It reads with an
// ordered consumer filtered on the hold's bucket (and on audit.*.<hold ID>,
// where builds before the buckets filed a hold's events), so asking about one
// hold does not read the whole trail.
func (a *Trail) Query(ctx context.Context, q Query) ([]Event, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxAuditRead {
		limit = maxAuditRead
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if q.HoldID != "" {
		if !bus.ValidToken(q.HoldID) {
			return nil, fmt.Errorf("hold id: %w", hold.ErrBadRequest)
		}
		cfg.FilterSubjects = []string{bus.AuditBucketFilter(auditBucket(q.HoldID))}
		if len(q.HoldID) != 3 { // a bucket token is three characters: the filters must not overlap
			cfg.FilterSubjects = append(cfg.FilterSubjects, bus.AuditBucketFilter(q.HoldID))
		}
	}
	for _, k := range q.Kinds {
		if !bus.ValidToken(k) {
			return nil, fmt.Errorf("audit kind %q: %w", k, hold.ErrBadRequest)
		}
	}
	if len(q.Kinds) > 0 && q.HoldID == "" {
		cfg.FilterSubjects = make([]string, 0, len(q.Kinds))
		for _, k := range slices.Compact(slices.Sorted(slices.Values(q.Kinds))) {
			cfg.FilterSubjects = append(cfg.FilterSubjects, bus.AuditKindFilter(k))
		}
	}
	if !q.Since.IsZero() {
		t := q.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &t
	}
	return bus.ReadAll(ctx, a.js, bus.StreamAudit, cfg, limit, func(m jetstream.Msg, seq uint64) (Event, error) {
		var e Event
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			return e, fmt.Errorf("decoding audit seq %d: %w", seq, err)
		}
		if q.HoldID != "" && e.HoldID != q.HoldID {
			return e, bus.ErrSkip // another hold in the same bucket
		}
		if len(q.Kinds) > 0 && !slices.Contains(q.Kinds, e.Kind) {
			return e, bus.ErrSkip // a hold's event of another kind
		}
		e.Seq = seq
		return e, nil
	})
}
