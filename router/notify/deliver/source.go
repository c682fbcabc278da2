package deliver

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
)

// Kinds the deliverer derives from other streams than NOTIFY, for the
// people who run the interfaces rather than those who review results.
const (
	// KindDeadLetter: a message was put in the dead letters (DEAD,
	// hl7.dead.<reason>) by the intake, the pipeline or the forwarder.
	// The same kind as the classify step's on-call notice (bus.NotifyDeadLetter).
	KindDeadLetter = bus.NotifyDeadLetter
	// KindReleaseRefused: a released result cannot be put on the portal
	// feed (its FHIR mapping is refused; AUDIT, audit.dead.<bucket> with a
	// hold ID): the patient does not see it until the sender corrects it.
	KindReleaseRefused = "release-refused"
)

// RoleOperator is the role of dead-letter and release-refused notices: the
// integration team or whoever watches the interfaces.
const RoleOperator = "operator"

// delivery names one message of one source stream.
type delivery struct {
	stream string
	seq    uint64
}

// source is one stream the deliverer reads, with its durable consumer and
// how a message of it becomes an Event.
type source struct {
	stream, filter, durable, description string
	workers                              int
	// decode returns the event of msg, or ok false when msg is not one to
	// deliver (acked and skipped).
	decode func(msg jetstream.Msg, seq uint64) (e Event, ok bool, err error)
	cons   jetstream.Consumer
}

// sources returns the streams cfg's routes need: NOTIFY always; DEAD and
// AUDIT only when a route can match dead-letter or release-refused (a route
// without kinds matches every kind).
func sources(cfg Config) []*source {
	out := []*source{{
		stream: bus.StreamNotify, filter: bus.SubjectNotifyAll, durable: cfg.Consumer, workers: cfg.Workers,
		description: "Notification delivery to receivers (notify.receivers)",
		decode: func(msg jetstream.Msg, seq uint64) (Event, bool, error) {
			e, err := decodeEvent(msg.Subject(), msg.Data(), msg.Headers().Get(bus.HeaderMsgID), seq)
			return e, err == nil, err
		},
	}}
	if routesKind(cfg, KindDeadLetter) {
		out = append(out, &source{
			stream: bus.StreamDead, filter: bus.SubjectDeadAll, durable: cfg.Consumer + "-dead", workers: 1,
			description: "Dead-letter notices to receivers (notify.routes, kind dead-letter)",
			decode:      decodeDead,
		})
	}
	if routesKind(cfg, KindReleaseRefused) {
		out = append(out, &source{
			stream: bus.StreamAudit, filter: bus.AuditKindFilter(bus.AuditDead), durable: cfg.Consumer + "-refused", workers: 1,
			description: "Refused-release notices to receivers (notify.routes, kind release-refused)",
			decode:      decodeRefused,
		})
	}
	return out
}

func routesKind(cfg Config, kind string) bool {
	for _, r := range cfg.Routes {
		if len(r.Match.Kinds) == 0 || slices.Contains(r.Match.Kinds, kind) {
			return true
		}
	}
	return false
}

// decodeDead reads a dead-letter record's headers (never its content, the
// message itself).
func decodeDead(msg jetstream.Msg, seq uint64) (Event, bool, error) {
	h := msg.Headers()
	e := Event{
		Kind: KindDeadLetter, Role: RoleOperator, DeadSeq: seq, MsgID: "dead-" + strconv.FormatUint(seq, 10), Seq: seq,
		Reason: h.Get(bus.HeaderDeadReason), Detail: h.Get(bus.HeaderDeadDetail), Stage: h.Get(bus.HeaderDeadStage),
		ControlID: h.Get(bus.HeaderHL7ControlID),
	}
	if e.Reason == "" {
		return e, false, fmt.Errorf("dead-letter record without %s", bus.HeaderDeadReason)
	}
	if s := h.Get(bus.HeaderDeadSeq); s != "" {
		e.InboundSeq, _ = strconv.ParseUint(s, 10, 64)
	}
	e.At = time.Now().UTC()
	if at, err := time.Parse(time.RFC3339Nano, h.Get(bus.HeaderDeadAt)); err == nil {
		e.At = at
	}
	return e, true, nil
}

// auditRecord is the part of an audit event a refused release is read from.
type auditRecord struct {
	Kind   string    `json:"kind"`
	At     time.Time `json:"at"`
	HoldID string    `json:"hold_id"`
	Action string    `json:"action"`
	Reason string    `json:"reason"`
}

// decodeRefused reads an audit.dead event: a release the portal feed cannot
// take carries the hold ID; the pipeline's dead letters (no hold) are
// skipped, as DEAD gives them.
func decodeRefused(msg jetstream.Msg, seq uint64) (Event, bool, error) {
	var a auditRecord
	if err := json.Unmarshal(msg.Data(), &a); err != nil {
		return Event{}, false, fmt.Errorf("decoding audit event: %w", err)
	}
	if a.HoldID == "" || a.Action != audit.ActionNotDelivered {
		return Event{}, false, nil
	}
	msgID := msg.Headers().Get(bus.HeaderMsgID)
	if msgID == "" {
		msgID = "audit-" + strconv.FormatUint(seq, 10)
	}
	return Event{Kind: KindReleaseRefused, Role: RoleOperator, HoldID: a.HoldID, Reason: a.Reason, At: a.At, MsgID: msgID, Seq: seq}, true, nil
}
