package dead

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/resultgate/resultgate/router/intake"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// Permanent marks a failure that retrying cannot fix: the message goes to the
// dead letters at once with Reason (a hl7.dead.<reason> token).
type Permanent struct {
	Reason string
	Err    error
}

func (e *Permanent) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Permanent) Unwrap() error { return e.Err }

// NewPermanent returns err marked permanent with reason.
func NewPermanent(reason string, err error) error { return &Permanent{Reason: reason, Err: err} }

// ErrNotFound means no dead-letter record has the given sequence.
var ErrNotFound = errors.New("dead-letter record not found")

// ErrUnattributed means a result names no usable patient identifier: no PID
// segment, or no PID-3 repetition (PID-2 in its stead when PID-3 is empty, as
// hl7.PrimaryIdentifierField reads it) with an ID number other than blanks or
// the HL7 null. Such a result cannot be attributed to one patient and is never
// released (reason bus.DeadUnattributed).
var ErrUnattributed = errors.New("no usable patient identifier (PID-3 has no ID number): the result cannot be attributed to one patient")

// phiFreeErrors are errors whose text is known to carry no message content.
var phiFreeErrors = []error{
	hl7.ErrEmpty, hl7.ErrNoMSH, hl7.ErrBadDelimiters, hl7.ErrBadSegmentID,
	hl7.ErrJoinedSegments, hl7.ErrMultipleMessages, hl7.ErrBatch, hl7.ErrBadBatch,
	hl7.ErrUnsupportedCharset, hl7.ErrCharsetMismatch, hl7.ErrBadPath,
	hl7.ErrSegmentNotFound, hl7.ErrNotORU, hl7.ErrBadTime,
	context.DeadlineExceeded, context.Canceled, jetstream.ErrNoStreamResponse,
	nats.ErrTimeout, nats.ErrConnectionClosed, nats.ErrNoResponders,
	fhirmap.ErrUnsupportedMessage, fhirmap.ErrNoResults, fhirmap.ErrMultiplePatients,
	fhirmap.ErrResultStatus, fhirmap.ErrInvalidBundle, ErrUnattributed,
}

// SafeDetail describes err without message content: the text of a known
// sentinel it wraps (with the segment name and position for parse errors), or
// only the given fallback.
func SafeDetail(err error, fallback string) string {
	if err == nil {
		return ""
	}
	var pe *hl7.ParseError
	if errors.As(err, &pe) && pe.Err != nil {
		s := pe.Err.Error()
		if pe.Segment != "" {
			s += " in " + pe.Segment
		}
		if pe.Line > 0 {
			s += " (segment " + strconv.Itoa(pe.Line) + ")"
		}
		return s
	}
	for _, s := range phiFreeErrors {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return fallback
}

// Letters writes and reads the DEAD stream.
type Letters struct {
	js     jetstream.JetStream
	onDead func(reason string)
}

// New returns the dead letters over js; onDead (may be nil) is called with
// the reason of every record stored, for the metrics.
func New(js jetstream.JetStream, onDead func(reason string)) *Letters {
	return &Letters{js: js, onDead: onDead}
}

// Put stores the inbound message m on hl7.dead.<reason> with the reason and a
// PHI-free detail, and the reference to where it came from. It returns the
// record's DEAD sequence (the first copy's on a redelivery: the Msg-Id is
// stable).
func (d *Letters) Put(ctx context.Context, m jetstream.Msg, reason, detail string) (uint64, error) {
	meta, err := m.Metadata()
	if err != nil {
		return 0, fmt.Errorf("dead-lettering: %w", err)
	}
	hdr := nats.Header{}
	for k, v := range m.Headers() {
		if k == jetstream.MsgIDHeader || strings.HasPrefix(k, "Nats-") {
			continue
		}
		hdr[k] = v
	}
	msgID := m.Headers().Get(jetstream.MsgIDHeader)
	hdr.Set(bus.HeaderDeadReason, reason)
	hdr.Set(bus.HeaderDeadDetail, detail)
	hdr.Set(bus.HeaderDeadSubject, m.Subject())
	hdr.Set(bus.HeaderDeadSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	hdr.Set(bus.HeaderDeadMsgID, msgID)
	hdr.Set(bus.HeaderDeadDelivered, strconv.FormatUint(meta.NumDelivered, 10))
	hdr.Set(bus.HeaderDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	subj := bus.DeadSubject(reason)
	ack, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: hdr, Data: m.Data()},
		jetstream.WithMsgID("dead-"+strconv.FormatUint(meta.Sequence.Stream, 10)), jetstream.WithExpectStream(bus.StreamDead))
	if err != nil {
		return 0, fmt.Errorf("publishing %s: %w", subj, err)
	}
	if d.onDead != nil {
		d.onDead(reason)
	}
	return ack.Sequence, nil
}

// Record describes one dead-letter record (without the message content).
type Record struct {
	Seq        uint64    `json:"seq"`
	Reason     string    `json:"reason"`
	Detail     string    `json:"detail"`
	Subject    string    `json:"subject"`
	InboundSeq uint64    `json:"inbound_seq"`
	MsgID      string    `json:"msg_id"`
	Deliveries int       `json:"deliveries"`
	At         time.Time `json:"at"`
	Size       int       `json:"size"`
	// Stage is "intake" for a message the intake refused (never stored in
	// HL7_IN), empty for one the pipeline gave up on.
	Stage string `json:"stage,omitempty"`
	// ControlID, SendingApplication and SendingFacility are MSH-10, MSH-3
	// and MSH-4 as the intake stored them (no PHI): who to ask for a
	// correction, and which message.
	ControlID          string `json:"control_id,omitempty"`
	SendingApplication string `json:"sending_application,omitempty"`
	SendingFacility    string `json:"sending_facility,omitempty"`
	// Discarded is set when an operator closed the record without replaying
	// it (read from the audit trail, not stored on DEAD: records are never
	// changed).
	Discarded *Discard `json:"discarded,omitempty"`
}

// Discard is an operator's audited decision to close a dead-letter record
// without replaying it.
type Discard struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

func record(h nats.Header, seq uint64, size int) Record {
	r := Record{
		Seq: seq, Reason: h.Get(bus.HeaderDeadReason), Detail: h.Get(bus.HeaderDeadDetail),
		Subject: h.Get(bus.HeaderDeadSubject), MsgID: h.Get(bus.HeaderDeadMsgID), Size: size,
		Stage: h.Get(bus.HeaderDeadStage), ControlID: h.Get(bus.HeaderHL7ControlID),
		SendingApplication: h.Get(bus.HeaderHL7SendingApplication), SendingFacility: h.Get(bus.HeaderHL7SendingFacility),
	}
	r.InboundSeq, _ = strconv.ParseUint(h.Get(bus.HeaderDeadSeq), 10, 64)
	r.Deliveries, _ = strconv.Atoi(h.Get(bus.HeaderDeadDelivered))
	r.At, _ = time.Parse(time.RFC3339Nano, h.Get(bus.HeaderDeadAt))
	return r
}

// List returns up to limit dead-letter records, oldest first.
func (d *Letters) List(ctx context.Context, limit int) ([]Record, error) {
	return d.ListReason(ctx, "", limit)
}

// ListReason returns up to limit dead-letter records of reason (every reason
// when empty), oldest first. It reads hl7.dead.<reason> only.
func (d *Letters) ListReason(ctx context.Context, reason string, limit int) ([]Record, error) {
	if limit <= 0 || limit > maxDeadRead {
		limit = maxDeadRead
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if reason != "" {
		if !bus.ValidToken(reason) {
			return nil, fmt.Errorf("dead-letter reason %q: %w", reason, hold.ErrBadRequest)
		}
		cfg.FilterSubjects = []string{bus.DeadSubject(reason)}
	}
	return bus.ReadAll(ctx, d.js, bus.StreamDead, cfg, limit,
		func(m jetstream.Msg, seq uint64) (Record, error) {
			return record(m.Headers(), seq, len(m.Data())), nil
		})
}

// Lookup returns dead-letter record seq whether or not it can be replayed
// (ErrNotFound when there is none).
func (d *Letters) Lookup(ctx context.Context, seq uint64) (Record, error) {
	rec, _, err := d.fetch(ctx, seq)
	return rec, err
}

// Replay re-publishes dead-letter record seq to its inbound subject with the
// Nats-Msg-Id <original>#replay-<seq>: a new ID, because the original is still
// in HL7_IN's duplicate window, and a stable one, so replaying the same record
// twice queues it once.
func (d *Letters) Replay(ctx context.Context, seq uint64) (Record, error) {
	rec, raw, err := d.fetch(ctx, seq)
	if err != nil {
		return rec, err
	}
	if err := rec.replayable(); err != nil {
		return rec, err
	}
	hdr := nats.Header{}
	for k, v := range raw.Header {
		if strings.HasPrefix(k, "Resultgate-Dead-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		hdr[k] = v
	}
	id := rec.MsgID
	if id == "" {
		id = "seq-" + strconv.FormatUint(rec.InboundSeq, 10)
	}
	id += "#replay-" + strconv.FormatUint(seq, 10)
	if _, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: rec.Subject, Header: hdr, Data: raw.Data},
		jetstream.WithMsgID(id), jetstream.WithExpectStream(bus.StreamHL7In)); err != nil {
		return rec, fmt.Errorf("replaying dead seq %d: %w", seq, err)
	}
	return rec, nil
}

// replayable says why the record cannot be re-queued, or nil. A message the
// intake refused is not replayed (it was never accepted, and the intake's
// checks are not the pipeline's): the error says why and what to do.
func (r Record) replayable() error {
	if r.Stage == "intake" {
		return fmt.Errorf("dead seq %d cannot be replayed: the intake refused it (%s: %s) and answered AR/CR, so it was never stored "+
			"and the sender still holds it; %s: %w", r.Seq, r.Reason, r.Detail, intake.Remedy(intake.Reason(r.Reason)), hold.ErrBadRequest)
	}
	if !strings.HasPrefix(r.Subject, bus.SubjectInPrefix) {
		return fmt.Errorf("dead seq %d has no inbound subject: %w", r.Seq, hold.ErrBadRequest)
	}
	if r.Reason == bus.DeadUnattributed {
		// The same bytes name the same (no) patient: a replay would only
		// dead-letter them again.
		return fmt.Errorf("dead seq %d cannot be replayed: the result names no usable patient identifier (PID-3), and replaying "+
			"the same bytes would put it back here; have the sender correct and resend it (or resend the corrected message "+
			"with `resultgate send`), then close this record with `resultgate dead discard %d --by NAME --reason TEXT`: %w",
			r.Seq, r.Seq, hold.ErrBadRequest)
	}
	return nil
}

// Get returns dead-letter record seq if it can be replayed, else its record
// and why not (ErrNotFound when there is none).
func (d *Letters) Get(ctx context.Context, seq uint64) (Record, error) {
	rec, _, err := d.fetch(ctx, seq)
	if err != nil {
		return rec, err
	}
	return rec, rec.replayable()
}

// fetch reads dead-letter record seq (ErrNotFound when there is none).
func (d *Letters) fetch(ctx context.Context, seq uint64) (Record, *jetstream.RawStreamMsg, error) {
	s, err := d.js.Stream(ctx, bus.StreamDead)
	if err != nil {
		return Record{}, nil, fmt.Errorf("opening %s: %w", bus.StreamDead, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Record{}, nil, fmt.Errorf("dead seq %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Record{}, nil, fmt.Errorf("reading dead seq %d: %w", seq, err)
	}
	return record(raw.Header, seq, len(raw.Data)), raw, nil
}

// maxDeadRead bounds one listing of the dead letters.
const maxDeadRead = 10000
