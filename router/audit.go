package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// AuditEvent is one entry of the append-only audit trail.
type AuditEvent struct {
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
	// Seq is the AUDIT stream sequence (set when read back).
	Seq uint64 `json:"seq,omitempty"`
}

// Auditor appends events to the AUDIT stream (which denies delete and purge).
type Auditor struct {
	js jetstream.JetStream
}

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
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	const hex = "0123456789abcdef"
	b := h % auditBuckets
	return string([]byte{hex[b>>8], hex[b>>4&0xf], hex[b&0xf]})
}

// auditSubject is the subject of e.
func auditSubject(e *AuditEvent) string { return bus.AuditSubject(e.Kind, auditBucket(e.key())) }

// key returns the key e is filed under.
func (e *AuditEvent) key() string {
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
// second copy within the duplicate window).
func (a *Auditor) Record(ctx context.Context, id string, e AuditEvent) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding audit event: %w", err)
	}
	subj := auditSubject(&e)
	_, err = a.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: data},
		jetstream.WithMsgID("aud-"+id), jetstream.WithExpectStream(bus.StreamAudit))
	if err != nil {
		return fmt.Errorf("publishing %s: %w", subj, err)
	}
	return nil
}

// Transition audits one transition of h.
func (a *Auditor) Transition(ctx context.Context, h *hold.Hold, t hold.Transition) error {
	kind := bus.AuditTransition
	if t.Path == hold.PathOverride {
		kind = bus.AuditOverride
	}
	id := h.ID + "-" + string(t.To) + "-" + strconv.Itoa(len(h.Transitions))
	if err := a.Record(ctx, id, AuditEvent{
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
func (a *Auditor) HoldEvent(ctx context.Context, h *hold.Hold, t hold.Transition, n int) error {
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

// AuditQuery selects audit events.
type AuditQuery struct {
	HoldID string    `json:"hold_id,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// Limit caps the events returned; default and maximum 10000.
	Limit int `json:"limit,omitempty"`
}

// maxAuditRead bounds one audit query.
const maxAuditRead = 10000

// Query reads the audit events matching q, oldest first. It reads with an
// ordered consumer filtered on the hold's bucket (and on audit.*.<hold ID>,
// where builds before the buckets filed a hold's events), so asking about one
// hold does not read the whole trail.
func (a *Auditor) Query(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxAuditRead {
		limit = maxAuditRead
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if q.HoldID != "" {
		if !validToken(q.HoldID) {
			return nil, fmt.Errorf("hold id: %w", hold.ErrBadRequest)
		}
		cfg.FilterSubjects = []string{bus.AuditBucketFilter(auditBucket(q.HoldID))}
		if len(q.HoldID) != 3 { // a bucket token is three characters: the filters must not overlap
			cfg.FilterSubjects = append(cfg.FilterSubjects, bus.AuditBucketFilter(q.HoldID))
		}
	}
	if !q.Since.IsZero() {
		t := q.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &t
	}
	return readAll(ctx, a.js, bus.StreamAudit, cfg, limit, func(m jetstream.Msg, seq uint64) (AuditEvent, error) {
		var e AuditEvent
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			return e, fmt.Errorf("decoding audit seq %d: %w", seq, err)
		}
		if q.HoldID != "" && e.HoldID != q.HoldID {
			return e, errSkip // another hold in the same bucket
		}
		e.Seq = seq
		return e, nil
	})
}

// errSkip, returned by readAll's decode, leaves the message out of the result.
var errSkip = errors.New("skip")

// readAll reads a stream through an ordered consumer until nothing is pending
// or limit items were read. The ephemeral consumer is deleted when done (and
// expires after readerInactive if the delete is lost), so frequent reads (audit
// queries, reports, pollers) do not pile up consumers against the server's limit.
//
// In a cluster a just-created consumer can briefly have no responder for its
// API or pull requests (its assignment is still being applied): such a read
// is retried a few times, from the start, before the error is returned.
func readAll[T any](ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, limit int, decode func(jetstream.Msg, uint64) (T, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		out, err := readAllOnce(ctx, js, stream, cfg, limit, decode)
		if err == nil || attempt == readRetries || !isNoResponders(err) || ctx.Err() != nil {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

// readRetries bounds readAll's attempts on a transient "no responders".
const readRetries = 5

// isNoResponders reports a request that found no responder (nats.go returns
// nats.ErrNoResponders, sometimes only by its text through the jetstream API).
func isNoResponders(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || strings.Contains(err.Error(), nats.ErrNoResponders.Error())
}

func readAllOnce[T any](ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, limit int, decode func(jetstream.Msg, uint64) (T, error)) ([]T, error) {
	if cfg.InactiveThreshold == 0 {
		cfg.InactiveThreshold = readerInactive
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", stream, err)
	}
	defer func() {
		// The ordered consumer may have been recreated under a new name while
		// reading: delete the current one.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if cur, err := cons.Info(dctx); err == nil {
			_ = js.DeleteConsumer(dctx, stream, cur.Name)
		}
	}()
	out := []T{}
	if info.NumPending == 0 {
		return out, nil
	}
	for len(out) < limit {
		batch, err := cons.Fetch(min(limit-len(out), 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, fmt.Errorf("reading %s: %w", stream, err)
		}
		n := 0
		var last uint64 = 1
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return out, fmt.Errorf("reading %s: %w", stream, err)
			}
			last = meta.NumPending
			v, err := decode(m, meta.Sequence.Stream)
			if errors.Is(err, errSkip) {
				if last == 0 {
					break
				}
				continue
			}
			if err != nil {
				return out, err
			}
			out = append(out, v)
			if last == 0 || len(out) >= limit {
				break
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, fmt.Errorf("reading %s: %w", stream, err)
		}
		if n == 0 || last == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// readerInactive is how long an abandoned reader's consumer outlives its last use.
const readerInactive = 30 * time.Second

// validToken reports whether s is usable as one subject token or KV key.
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
