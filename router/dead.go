package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/fhirmap"
	"github.com/resultgate/resultgate/hl7"
)

// Dead-letter reason codes (the last token of hl7.dead.<reason>).
const (
	DeadParse    = "parse"    // the message does not parse as HL7
	DeadPolicy   = "policy"   // the policy could not read the report
	DeadFHIR     = "fhir"     // the released result could not be mapped to FHIR
	DeadRetries  = "retries"  // transient failures exhausted the delivery bound
	DeadInternal = "internal" // anything else
)

// Headers on dead-letter records. Detail never carries message content.
const (
	HeaderDeadReason    = "Resultgate-Dead-Reason"
	HeaderDeadDetail    = "Resultgate-Dead-Detail"
	HeaderDeadSubject   = "Resultgate-Dead-Subject"
	HeaderDeadSeq       = "Resultgate-Dead-Seq"
	HeaderDeadMsgID     = "Resultgate-Dead-Msg-Id"
	HeaderDeadDelivered = "Resultgate-Dead-Deliveries"
	HeaderDeadAt        = "Resultgate-Dead-At"
)

// ErrDeadNotFound means no dead-letter record has the given sequence.
var ErrDeadNotFound = errors.New("dead-letter record not found")

// phiFreeErrors are errors whose text is known to carry no message content.
var phiFreeErrors = []error{
	hl7.ErrEmpty, hl7.ErrNoMSH, hl7.ErrBadDelimiters, hl7.ErrBadSegmentID,
	hl7.ErrJoinedSegments, hl7.ErrMultipleMessages, hl7.ErrBatch, hl7.ErrBadBatch,
	hl7.ErrUnsupportedCharset, hl7.ErrCharsetMismatch, hl7.ErrBadPath,
	hl7.ErrSegmentNotFound, hl7.ErrNotORU, hl7.ErrBadTime,
	context.DeadlineExceeded, context.Canceled, jetstream.ErrNoStreamResponse,
	nats.ErrTimeout, nats.ErrConnectionClosed, nats.ErrNoResponders,
	fhirmap.ErrUnsupportedMessage, fhirmap.ErrNoResults, fhirmap.ErrMultiplePatients,
	fhirmap.ErrResultStatus, fhirmap.ErrInvalidBundle,
}

// safeDetail describes err without message content: the text of a known
// sentinel it wraps (with the segment name and position for parse errors), or
// only the given fallback.
func safeDetail(err error, fallback string) string {
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

// DeadLetters writes and reads the DEAD stream.
type DeadLetters struct {
	js jetstream.JetStream
	m  *Metrics
}

// Put stores the inbound message m on hl7.dead.<reason> with the reason and a
// PHI-free detail, and the reference to where it came from.
func (d *DeadLetters) Put(ctx context.Context, m jetstream.Msg, reason, detail string) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("dead-lettering: %w", err)
	}
	hdr := nats.Header{}
	for k, v := range m.Headers() {
		if k == jetstream.MsgIDHeader || strings.HasPrefix(k, "Nats-") {
			continue
		}
		hdr[k] = v
	}
	msgID := m.Headers().Get(jetstream.MsgIDHeader)
	hdr.Set(HeaderDeadReason, reason)
	hdr.Set(HeaderDeadDetail, detail)
	hdr.Set(HeaderDeadSubject, m.Subject())
	hdr.Set(HeaderDeadSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	hdr.Set(HeaderDeadMsgID, msgID)
	hdr.Set(HeaderDeadDelivered, strconv.FormatUint(meta.NumDelivered, 10))
	hdr.Set(HeaderDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	subj := DeadSubject(reason)
	_, err = d.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: hdr, Data: m.Data()},
		jetstream.WithMsgID("dead-"+strconv.FormatUint(meta.Sequence.Stream, 10)), jetstream.WithExpectStream(StreamDead))
	if err != nil {
		return fmt.Errorf("publishing %s: %w", subj, err)
	}
	d.m.dead(reason)
	return nil
}

// DeadRecord describes one dead-letter record (without the message content).
type DeadRecord struct {
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
}

func deadRecord(h nats.Header, seq uint64, size int) DeadRecord {
	r := DeadRecord{
		Seq: seq, Reason: h.Get(HeaderDeadReason), Detail: h.Get(HeaderDeadDetail),
		Subject: h.Get(HeaderDeadSubject), MsgID: h.Get(HeaderDeadMsgID), Size: size,
		Stage: h.Get(HeaderStage),
	}
	r.InboundSeq, _ = strconv.ParseUint(h.Get(HeaderDeadSeq), 10, 64)
	r.Deliveries, _ = strconv.Atoi(h.Get(HeaderDeadDelivered))
	r.At, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDeadAt))
	return r
}

// List returns up to limit dead-letter records, oldest first.
func (d *DeadLetters) List(ctx context.Context, limit int) ([]DeadRecord, error) {
	if limit <= 0 || limit > maxAuditRead {
		limit = maxAuditRead
	}
	return readAll(ctx, d.js, StreamDead, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}, limit,
		func(m jetstream.Msg, seq uint64) (DeadRecord, error) {
			return deadRecord(m.Headers(), seq, len(m.Data())), nil
		})
}

// intakeRemedy says what to do about a message the intake refused for r.
func intakeRemedy(r Reason) string {
	switch r {
	case ReasonType:
		return "if this message type should be accepted, add it to intake.accept_types, restart, and have the sender resend it"
	case ReasonFacility:
		return "if this sending facility should be accepted, add it to intake.allowed_facilities, restart, and have the sender resend it"
	case ReasonTooLarge:
		return "only its first bytes are kept; if it should fit, raise mllp.max_frame_bytes, restart, and have the sender resend it"
	case ReasonPatients:
		return "the sender (or its interface engine) must split it into one message per patient and resend them"
	default:
		return "the sender must correct it and resend it"
	}
}

// Replay re-publishes dead-letter record seq to its inbound subject with the
// Nats-Msg-Id <original>#replay-<seq>: a new ID, because the original is still
// in HL7_IN's duplicate window, and a stable one, so replaying the same record
// twice queues it once. A message the intake refused is not replayed (it was
// never accepted, and the intake's checks are not the pipeline's): the error
// says why and what to do.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) (DeadRecord, error) {
	s, err := d.js.Stream(ctx, StreamDead)
	if err != nil {
		return DeadRecord{}, fmt.Errorf("opening %s: %w", StreamDead, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadRecord{}, fmt.Errorf("dead seq %d: %w", seq, ErrDeadNotFound)
	}
	if err != nil {
		return DeadRecord{}, fmt.Errorf("reading dead seq %d: %w", seq, err)
	}
	rec := deadRecord(raw.Header, seq, len(raw.Data))
	if rec.Stage == "intake" {
		return rec, fmt.Errorf("dead seq %d cannot be replayed: the intake refused it (%s: %s) and answered AR/CR, so it was never stored "+
			"and the sender still holds it; %s: %w", seq, rec.Reason, rec.Detail, intakeRemedy(Reason(rec.Reason)), ErrBadRequest)
	}
	if !strings.HasPrefix(rec.Subject, SubjectInPrefix) {
		return rec, fmt.Errorf("dead seq %d has no inbound subject: %w", seq, ErrBadRequest)
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
		jetstream.WithMsgID(id), jetstream.WithExpectStream(StreamHL7In)); err != nil {
		return rec, fmt.Errorf("replaying dead seq %d: %w", seq, err)
	}
	return rec, nil
}
