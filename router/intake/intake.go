package intake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/hl7/mllp"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// Reason says why the intake did not accept a message. It is a DEAD subject
// token, a metric label value and a log field; it never carries PHI.
type Reason string

// Remedy says what to do about a message the intake refused for r (it was
// answered AR/CR and never stored: the sender still holds it).
func Remedy(r Reason) string {
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

// Reasons for a negative acknowledgement.
const (
	// ReasonParse: the frame is not a parseable HL7 message (AR/CR, ERR 100/102/207).
	ReasonParse Reason = "parse"
	// ReasonRequired: MSH-9 or MSH-10 is empty (AR/CR, ERR 101), or a header
	// value is longer than hl7.CheckHeaderBounds allows (AR/CR, ERR 102).
	ReasonRequired Reason = "required"
	// ReasonType: the message type is not accepted (AR/CR, ERR 200).
	ReasonType Reason = "type"
	// ReasonFacility: the sending facility is not allowed (AR/CR, ERR 207).
	ReasonFacility Reason = "facility"
	// ReasonTooLarge: the frame exceeds the MLLP or NATS size limit (AR/CR, ERR 207).
	ReasonTooLarge Reason = "too-large"
	// ReasonPatients: the message carries results for more than one patient
	// (AR/CR, ERR 207): each stored message is routed, held and released as one
	// patient's, so the sender (or its interface engine) must split it.
	ReasonPatients Reason = "patients"
	// ReasonStore: the message could not be stored in time (AE/CE, ERR 207); the
	// sender should resend.
	ReasonStore Reason = "store"
)

var reasons = [...]Reason{ReasonParse, ReasonRequired, ReasonType, ReasonFacility, ReasonTooLarge, ReasonPatients, ReasonStore}

func (r Reason) index() int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	return len(reasons) - 1
}

// AckMode chooses between original and enhanced acknowledgement (HL7 v2.x
// chapter 2.9).
type AckMode string

// Acknowledgement modes.
const (
	// AckModeAuto follows the message: enhanced mode (CA/CE/CR, honouring
	// MSH-15 AL/NE/ER/SU) when MSH-15 or MSH-16 is valued, original mode
	// (AA/AE/AR) otherwise. The default.
	AckModeAuto AckMode = "auto"
	// AckModeOriginal always answers AA/AE/AR, whatever MSH-15 says.
	AckModeOriginal AckMode = "original"
	// AckModeEnhanced always answers CA/CE/CR, honouring MSH-15 (empty means AL).
	AckModeEnhanced AckMode = "enhanced"
)

// Texts of the ERR segments the intake writes (ERR-8, the user message).
const (
	TextNotStored       = "message not stored, please resend"
	TextTooLarge        = "message too large"
	TextTypeNotAccepted = "message type not accepted"
	TextFacilityDenied  = "sending facility not allowed"
	TextOnePatient      = "one patient per message: split the message upstream"
)

// DefaultStoreTimeout bounds the wait for the PubAck. Interface engines wait
// 10-30 s for an ACK; answering AE within 5 s lets them resend rather than time out.
const DefaultStoreTimeout = 5 * time.Second

// MaxDeadPrefix bounds how much of an oversize frame is kept in its DEAD record.
const MaxDeadPrefix = 64 << 10

// Config configures the intake.
type Config struct {
	// AcceptTypes lists accepted MSH-9 types as CODE^EVENT, or CODE for every
	// event; default config.DefaultAcceptTypes.
	AcceptTypes []string
	// AllowedFacilities lists the accepted sending facilities, matched against
	// MSH-4.1 (namespace ID) or MSH-4.2 (universal ID); empty allows all.
	// Others get AR/CR with ERR 207 (table 0357 has no "not authorised" code;
	// 204 "unknown key identifier" would send the sender's analyst looking for a
	// patient or order).
	AllowedFacilities []string
	// PartitionSecret keys the patient hash (PatientKey). Required: without it
	// the hash of an MRN could be reversed by trying every MRN.
	PartitionSecret []byte
	// Partitions is the number of inbound partitions; default DefaultPartitions.
	Partitions int
	// StoreTimeout bounds the wait for the PubAck; default DefaultStoreTimeout.
	StoreTimeout time.Duration
	// AckMode chooses original or enhanced acknowledgements; default AckModeAuto.
	AckMode AckMode
	// Now is the clock for received-at; default time.Now.
	Now func() time.Time
	// ObserveStore, when set, is called with each successful store's latency
	// (for a Prometheus histogram).
	ObserveStore func(time.Duration)
}

// Stats are the intake's counters since start.
type Stats struct {
	// Received counts frames handed to the intake, oversize ones included.
	Received uint64
	// Acked counts positive acknowledgements (AA/CA, or suppressed by MSH-15 NE/ER).
	Acked uint64
	// Duplicates counts messages JetStream recognised as already stored (also in Acked).
	Duplicates uint64
	// Nacked counts negative acknowledgements by reason.
	Nacked map[Reason]uint64
	// ControlIDReused counts messages that reused an earlier message's control
	// ID with different content (stored as new messages).
	ControlIDReused uint64
	// DeadLettered counts DEAD records written.
	DeadLettered uint64
	// AcksSuppressed counts acknowledgements not sent because MSH-15 said so.
	AcksSuppressed uint64
	// StoreCount and StoreTotal give the mean store latency (PubAck wait).
	StoreCount uint64
	StoreTotal time.Duration
}

// Intake stores inbound HL7 messages in HL7_IN and acknowledges each only after
// JetStream confirmed the store. It implements mllp.Handler.
type Intake struct {
	js         jetstream.JetStream
	log        zerolog.Logger
	cfg        Config
	types      map[string]bool
	facilities map[string]bool
	now        func() time.Time

	stream atomic.Pointer[jetstream.Stream]
	macs   sync.Pool // keyed hash.Hash for patientKey

	received, acked, duplicates, dead, suppressed, reused atomic.Uint64
	storeCount, storeNanos                                atomic.Uint64
	nacked                                                [len(reasons)]atomic.Uint64
}

var _ mllp.Handler = (*Intake)(nil)

// ErrNoPartitionSecret is returned by Config.Validate when the secret is empty.
var ErrNoPartitionSecret = errors.New("intake: partition secret is empty")

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	if len(c.PartitionSecret) == 0 {
		return ErrNoPartitionSecret
	}
	switch c.AckMode {
	case "", AckModeAuto, AckModeOriginal, AckModeEnhanced:
	default:
		return fmt.Errorf("intake: unknown ack mode %q (want auto, original or enhanced)", c.AckMode)
	}
	for _, t := range c.AcceptTypes {
		if strings.TrimSpace(t) == "" || strings.Count(t, "^") > 1 {
			return fmt.Errorf("intake: accept type %q: want CODE^EVENT or CODE", t)
		}
	}
	return nil
}

// New returns an intake publishing to js. Call cfg.Validate first: an
// invalid AckMode is treated as auto and an empty secret still hashes (keyed by
// nothing), which the caller must not allow in production.
func New(js jetstream.JetStream, cfg Config, log zerolog.Logger) *Intake {
	if len(cfg.AcceptTypes) == 0 {
		cfg.AcceptTypes = config.DefaultAcceptTypes
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = hold.DefaultPartitions
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if cfg.AckMode == "" {
		cfg.AckMode = AckModeAuto
	}
	in := &Intake{
		js:    js,
		log:   log.With().Str("component", "intake").Logger(),
		cfg:   cfg,
		types: make(map[string]bool, len(cfg.AcceptTypes)),
		now:   cfg.Now,
	}
	if in.now == nil {
		in.now = time.Now
	}
	for _, t := range cfg.AcceptTypes {
		in.types[strings.ToUpper(strings.TrimSpace(t))] = true
	}
	if len(cfg.AllowedFacilities) > 0 {
		in.facilities = make(map[string]bool, len(cfg.AllowedFacilities))
		for _, f := range cfg.AllowedFacilities {
			in.facilities[strings.TrimSpace(f)] = true
		}
	}
	return in
}

// Stats returns a snapshot of the counters.
func (in *Intake) Stats() Stats {
	s := Stats{
		Received:        in.received.Load(),
		Acked:           in.acked.Load(),
		Duplicates:      in.duplicates.Load(),
		DeadLettered:    in.dead.Load(),
		ControlIDReused: in.reused.Load(),
		AcksSuppressed:  in.suppressed.Load(),
		StoreCount:      in.storeCount.Load(),
		StoreTotal:      time.Duration(in.storeNanos.Load()),
		Nacked:          make(map[Reason]uint64, len(reasons)),
	}
	for i, r := range reasons {
		s.Nacked[r] = in.nacked[i].Load()
	}
	return s
}

// Receipt describes a stored message.
type Receipt struct {
	// Stream and Sequence locate the stored message.
	Stream   string
	Sequence uint64
	// Duplicate is true when the message had been stored before (same Msg-Id
	// within the duplicate window); Sequence is then the earlier copy's.
	Duplicate bool
	// Subject is hl7.in.<partition>.
	Subject string
	// MsgID is the Nats-Msg-Id.
	MsgID string
}

// msgLog adds the per-message fields (connection, size, control ID, type) to
// each event without building a child logger per message: most messages log
// nothing above debug, and a child logger costs an allocation each.
type msgLog struct {
	l    *zerolog.Logger
	conn uint64
	size int64
	ctrl string
	typ  hl7.MessageType
}

func (m msgLog) with(e *zerolog.Event) *zerolog.Event {
	if e == nil {
		return nil
	}
	e = e.Uint64("conn", m.conn).Int64("size", m.size)
	if m.ctrl != "" || m.typ.Code != "" {
		e = e.Str("control_id", m.ctrl).Str("type", m.typ.String())
	}
	return e
}

func (m msgLog) Debug() *zerolog.Event { return m.with(m.l.Debug()) }
func (m msgLog) Warn() *zerolog.Event  { return m.with(m.l.Warn()) }
func (m msgLog) Error() *zerolog.Event { return m.with(m.l.Error()) }

// logger returns the connection's logger from ctx (set by the MLLP server), or
// the intake's.
func (in *Intake) logger(ctx context.Context) *zerolog.Logger {
	if l := zerolog.Ctx(ctx); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &in.log
}

// HandleMessage parses, checks and stores one frame and returns the ACK to send
// (nil when MSH-15 asks for none). It never returns a positive ACK before the
// PubAck.
func (in *Intake) HandleMessage(ctx context.Context, peer mllp.Peer, frame []byte) []byte {
	in.received.Add(1)
	receivedAt := in.now()
	log := msgLog{l: in.logger(ctx), conn: peer.ConnID, size: int64(len(frame))}

	// The frame stays valid (and unchanged) until HandleMessage returns, and
	// nothing read from m outlives the call: parse it in place rather than copy
	// it (16 MiB for the largest frame).
	m, err := hl7.ParseWithOptions(frame, hl7.ParseOptions{NoCopy: true})
	if err != nil {
		detail := hl7.ErrorDetailFor(err)
		ev := log.Warn().Str("decision", "reject").Str("reason", string(ReasonParse)).Int("err_code", detail.Code)
		var pe *hl7.ParseError
		if errors.As(err, &pe) {
			// The sentinel and location only: Detail may quote message content.
			ev = ev.Str("error", pe.Err.Error()).Str("segment", pe.Segment).Int("line", pe.Line).Int("field", pe.Field)
		}
		ev.Msg("unparseable message")
		// Without a parsed MSH, the mode comes from whatever header bytes there are.
		enhanced := in.enhancedFromBytes(frame)
		return in.reject(ctx, log, peer, receivedAt, frame, ReasonParse, parseDetail(err), enhanced, func(code hl7.AckCode) []byte {
			return hl7.BuildACKFromBytes(frame, code, detail)
		}, acceptAckFromBytes(frame))
	}

	msh := m.MSH()
	enhanced := in.enhanced(msh)
	// A header value longer than hl7's bounds is refused before the control
	// ID and type join the log fields, so none of it is logged.
	ref, ok := in.Check(m)
	if !ok && ref.HeaderTooLong {
		log.Warn().Str("decision", "reject").Str("reason", string(ref.Reason)).Int("field", ref.Detail.Field).Msg(ref.What)
		return in.rejectParsed(ctx, log, peer, receivedAt, m, msh, ref.Reason, enhanced, ref.Detail)
	}
	log.ctrl, log.typ = msh.ControlID, msh.MessageType
	if !ok {
		log.Warn().Str("decision", "reject").Str("reason", string(ref.Reason)).Str("segment", ref.Detail.Segment).Int("field", ref.Detail.Field).Msg(ref.What)
		return in.rejectParsed(ctx, log, peer, receivedAt, m, msh, ref.Reason, enhanced, ref.Detail)
	}

	rcpt, err := in.store(ctx, m, msh, peer, receivedAt, frame)
	if err == nil && rcpt.Duplicate {
		rcpt, err = in.checkDuplicate(ctx, log, m, msh, peer, receivedAt, frame, rcpt)
	}
	if err != nil {
		return in.storeFailed(log, err, enhanced, msh, func(code hl7.AckCode, d hl7.ErrorDetail) []byte {
			return hl7.BuildACK(m, code, d)
		})
	}
	in.acked.Add(1)
	if rcpt.Duplicate {
		in.duplicates.Add(1)
	}
	log.Debug().Str("decision", "accept").Str("partition", rcpt.Subject[len(bus.SubjectInPrefix):]).
		Uint64("seq", rcpt.Sequence).Bool("duplicate", rcpt.Duplicate).Msg("stored")
	code := hl7.AckCodeFor(enhanced, hl7.Accepted)
	if enhanced && !hl7.AcceptAckWanted(msh.AcceptAckType, true) {
		in.suppressed.Add(1)
		return nil
	}
	return hl7.BuildACK(m, code)
}

// Store publishes m (already parsed from frame) to HL7_IN and waits for the
// PubAck, bounded by the store timeout. It does not acknowledge anything; the
// Refusal is why the intake refuses a parsed message: the reason (a DEAD
// subject token and metric label), the ERR segment of its AR/CR, and a
// PHI-free sentence for the log.
type Refusal struct {
	Reason Reason
	Detail hl7.ErrorDetail
	What   string
	// HeaderTooLong marks a header value over hl7's bounds (never logged).
	HeaderTooLong bool
}

// Check runs the intake's acceptance checks on a parsed message, in the order
// HandleMessage runs them: header values within bounds, sending facility
// allowed, MSH-9 and MSH-10 present, message type accepted, one patient.
// ok is true when the message would be stored and acknowledged; otherwise the
// Refusal says what serve answers. resultgate explain runs the same checks.
func (in *Intake) Check(m *hl7.Message) (Refusal, bool) {
	msh := m.MSH()
	// A header value longer than hl7's bounds could never be stored (NATS
	// headers are limited to 64 KiB): AR with ERR 102 naming the field, never
	// AE, which would make the sender resend forever.
	if d, tooLong := m.CheckHeaderBounds(); tooLong {
		return Refusal{Reason: ReasonRequired, Detail: d, What: "header value too long", HeaderTooLong: true}, false
	}
	if in.facilities != nil && !in.facilities[msh.SendingFacility.NamespaceID] &&
		(msh.SendingFacility.UniversalID == "" || !in.facilities[msh.SendingFacility.UniversalID]) {
		return Refusal{Reason: ReasonFacility, What: "sending facility not allowed", Detail: hl7.ErrorDetail{
			Code: hl7.CodeInternalError, Severity: "E", Segment: "MSH", Sequence: 1, Field: 4, Message: TextFacilityDenied,
		}}, false
	}
	if msh.ControlID == "" || msh.MessageType.Code == "" {
		field, what := 10, "MSH-10 (message control ID) is empty"
		if msh.MessageType.Code == "" {
			field, what = 9, "MSH-9 (message type) is empty"
		}
		return Refusal{Reason: ReasonRequired, What: "required field missing", Detail: hl7.ErrorDetail{
			Code: hl7.CodeRequiredMissing, Severity: "E", Segment: "MSH", Sequence: 1, Field: field, Message: what,
		}}, false
	}
	if !in.accepts(msh.MessageType) {
		return Refusal{Reason: ReasonType, What: "message type not accepted", Detail: hl7.ErrorDetail{
			Code: hl7.CodeUnsupportedType, Severity: "E", Segment: "MSH", Sequence: 1, Field: 9,
			Message: TextTypeNotAccepted + ": " + msh.MessageType.Code + "^" + msh.MessageType.Event,
		}}, false
	}
	if occ := secondPatient(m); occ > 0 {
		return Refusal{Reason: ReasonPatients, What: "results for more than one patient", Detail: hl7.ErrorDetail{
			Code: hl7.CodeInternalError, Severity: "E", Segment: "PID", Sequence: occ, Field: 3, Message: TextOnePatient,
		}}, false
	}
	return Refusal{}, true
}

// MLLP path is HandleMessage.
func (in *Intake) Store(ctx context.Context, m *hl7.Message, peer mllp.Peer, frame []byte) (Receipt, error) {
	return in.store(ctx, m, m.MSH(), peer, in.now(), frame)
}

func (in *Intake) store(ctx context.Context, m *hl7.Message, msh hl7.MSH, peer mllp.Peer, receivedAt time.Time, frame []byte) (Receipt, error) {
	return in.storeWithID(ctx, m, msh, peer, receivedAt, frame, MsgID(msh.SendingApplication, msh.SendingFacility, msh.ControlID), false)
}

// checkDuplicate tells a resend from a reused control ID. JetStream reports a
// duplicate by Msg-Id alone; some senders restart their MSH-10 counter (daily,
// or after a reinstall), and acknowledging a different message as a duplicate
// would lose it. The stored copy is read back and compared after the MSH
// segment (a resend often differs in MSH-7 only): equal means a resend; different
// means a new message, stored under the Msg-Id extended with a hash of its
// content and marked with HeaderControlIDReused. If the stored copy cannot be
// read, the answer is "not stored, please resend": the next attempt decides.
func (in *Intake) checkDuplicate(ctx context.Context, log msgLog, m *hl7.Message, msh hl7.MSH, peer mllp.Peer, receivedAt time.Time, frame []byte, rcpt Receipt) (Receipt, error) {
	sctx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
	defer cancel()
	st, err := in.inStream(sctx)
	if err != nil {
		return Receipt{}, err
	}
	prev, err := st.GetMsg(sctx, rcpt.Sequence)
	if err != nil {
		return Receipt{}, fmt.Errorf("reading stored copy %d of a duplicate: %w", rcpt.Sequence, err)
	}
	if sameAfterMSH(prev.Data, frame) {
		return rcpt, nil
	}
	sum := contentHash(frame)
	id := rcpt.MsgID + "|" + hex.EncodeToString(sum[:12])
	log.Warn().Uint64("earlier_seq", rcpt.Sequence).Msg("control ID reused by the sender for different content; stored as a new message")
	rcpt, err = in.storeWithID(ctx, m, msh, peer, receivedAt, frame, id, true)
	if err == nil && !rcpt.Duplicate {
		in.reused.Add(1)
	}
	return rcpt, err
}

// patientKey is PatientKey with the intake's secret, reusing keyed HMAC states.
func (in *Intake) patientKey(pid string) string {
	if pid == "" {
		return ""
	}
	mac, _ := in.macs.Get().(hash.Hash)
	if mac == nil {
		mac = hmac.New(sha256.New, in.cfg.PartitionSecret)
	}
	mac.Reset()
	mac.Write([]byte(pid))
	var sum [sha256.Size]byte
	key := hex.EncodeToString(mac.Sum(sum[:0])[:hold.PatientKeyLen/2])
	in.macs.Put(mac)
	return key
}

// inStream returns HL7_IN's handle, looked up once.
func (in *Intake) inStream(ctx context.Context) (jetstream.Stream, error) {
	if s := in.stream.Load(); s != nil {
		return *s, nil
	}
	s, err := in.js.Stream(ctx, bus.StreamHL7In)
	if err != nil {
		return nil, fmt.Errorf("looking up stream %s: %w", bus.StreamHL7In, err)
	}
	in.stream.Store(&s)
	return s, nil
}

// afterMSH returns b after its first segment terminator (CR or LF).
func afterMSH(b []byte) []byte {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return b[i:]
	}
	return nil
}

// sameAfterMSH reports whether a and b hold the same segments after MSH, with
// segment terminators normalised: an interface engine that re-serialises a
// resend (LF or CRLF for CR, the final terminator dropped or doubled) sends
// the same message. MSH itself may differ (a resend's MSH-7). Linear in the
// sizes, no allocation.
func sameAfterMSH(a, b []byte) bool {
	a, b = afterMSH(a), afterMSH(b)
	for {
		sa, ra, oka := hl7.NextSegment(a)
		sb, rb, okb := hl7.NextSegment(b)
		if oka != okb {
			return false
		}
		if !oka {
			return true
		}
		if !bytes.Equal(sa, sb) {
			return false
		}
		a, b = ra, rb
	}
}

// contentHash is the SHA-256 of the segments after MSH, each followed by CR
// (terminators normalised as sameAfterMSH does): the Msg-Id suffix of a
// message whose control ID was reused for different content, so the same
// content resent in another serialisation is still stored once.
func contentHash(frame []byte) [sha256.Size]byte {
	h := sha256.New()
	rest := afterMSH(frame)
	for {
		seg, r, ok := hl7.NextSegment(rest)
		if !ok {
			break
		}
		h.Write(seg)
		h.Write([]byte{'\r'})
		rest = r
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func (in *Intake) storeWithID(ctx context.Context, m *hl7.Message, msh hl7.MSH, peer mllp.Peer, receivedAt time.Time, frame []byte, msgID string, reused bool) (Receipt, error) {
	pkey := ""
	if pid := m.First("PID"); pid != nil {
		if id, ok := pidIdentity(pid); ok {
			pkey = in.patientKey(id)
		}
	}
	part := hold.Partition(pkey, in.cfg.Partitions)
	// One backing array for every header value: a slice each would cost an
	// allocation per header per message.
	vals := [...]string{
		msgID,
		headerSafe(msh.ControlID),
		headerSafe(msh.MessageType.String()),
		headerSafe(hdString(msh.SendingApplication)),
		headerSafe(hdString(msh.SendingFacility)),
		headerSafe(msh.Version),
		peer.Addr.String(),
		strconv.FormatUint(peer.ConnID, 10),
		receivedAt.UTC().Format(time.RFC3339Nano),
		part,
		pkey,
		"true",
		headerSafe(peer.ClientCertSubject),
	}
	keys := [...]string{
		bus.HeaderMsgID, bus.HeaderHL7ControlID, bus.HeaderHL7MessageType, bus.HeaderHL7SendingApplication,
		bus.HeaderHL7SendingFacility, bus.HeaderHL7Version, bus.HeaderPeer, bus.HeaderConnID, bus.HeaderReceivedAt,
		bus.HeaderPartition, bus.HeaderPatientKey, bus.HeaderControlIDReused, bus.HeaderPeerCert,
	}
	all := vals[:]
	h := make(nats.Header, len(keys))
	for i, k := range keys {
		if all[i] == "" || (k == bus.HeaderControlIDReused && !reused) {
			continue
		}
		h[k] = all[i : i+1 : i+1]
	}
	subj := bus.InSubject(part)
	sctx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
	defer cancel()
	start := time.Now()
	ack, err := bus.Publish(sctx, in.js.Conn(), &nats.Msg{Subject: subj, Header: h, Data: frame},
		bus.PublishOpts{ExpectStream: bus.StreamHL7In})
	if err != nil {
		return Receipt{}, fmt.Errorf("publishing to %s: %w", subj, err)
	}
	d := time.Since(start)
	in.storeCount.Add(1)
	in.storeNanos.Add(uint64(d))
	if in.cfg.ObserveStore != nil {
		in.cfg.ObserveStore(d)
	}
	return Receipt{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate, Subject: subj, MsgID: msgID}, nil
}

// storeFailed answers a failed store: AE/CE with ERR 207 "message not stored,
// please resend", or AR/CR "message too large" when the message can never fit.
func (in *Intake) storeFailed(log msgLog, err error, enhanced bool, msh hl7.MSH, build func(hl7.AckCode, hl7.ErrorDetail) []byte) []byte {
	if errors.Is(err, nats.ErrMaxPayload) {
		in.nacked[ReasonTooLarge.index()].Add(1)
		log.Warn().Str("decision", "reject").Str("reason", string(ReasonTooLarge)).Msg("message larger than the NATS maximum payload")
		return in.maybeAck(enhanced, msh.AcceptAckType, false, build(hl7.AckCodeFor(enhanced, hl7.Rejected),
			hl7.ErrorDetail{Code: hl7.CodeInternalError, Severity: "E", Message: TextTooLarge}))
	}
	in.nacked[ReasonStore.index()].Add(1)
	log.Error().Err(err).Str("decision", "error").Str("reason", string(ReasonStore)).Msg("message not stored")
	return in.maybeAck(enhanced, msh.AcceptAckType, false, build(hl7.AckCodeFor(enhanced, hl7.Errored),
		hl7.ErrorDetail{Code: hl7.CodeInternalError, Severity: "E", Message: TextNotStored}))
}

// maybeAck returns ack unless enhanced mode and MSH-15 say no acknowledgement.
func (in *Intake) maybeAck(enhanced bool, acceptAckType string, success bool, ack []byte) []byte {
	if enhanced && !hl7.AcceptAckWanted(acceptAckType, success) {
		in.suppressed.Add(1)
		return nil
	}
	return ack
}

// rejectParsed dead-letters a parsed message and builds its AR/CR.
func (in *Intake) rejectParsed(ctx context.Context, log msgLog, peer mllp.Peer, receivedAt time.Time, m *hl7.Message, msh hl7.MSH, r Reason, enhanced bool, d hl7.ErrorDetail) []byte {
	return in.reject(ctx, log, peer, receivedAt, m.Raw(), r, d.Message, enhanced, func(code hl7.AckCode) []byte {
		return hl7.BuildACK(m, code, d)
	}, msh.AcceptAckType)
}

// reject records a refused message in DEAD, then answers AR/CR. If the DEAD
// record cannot be stored the answer is AE/CE ("please resend"), so that a
// refused message is never lost on both sides.
func (in *Intake) reject(ctx context.Context, log msgLog, peer mllp.Peer, receivedAt time.Time, data []byte, r Reason, why string, enhanced bool, build func(hl7.AckCode) []byte, acceptAckType string) []byte {
	if err := in.deadLetter(ctx, peer, receivedAt, data, r, why, 0); err != nil {
		in.nacked[ReasonStore.index()].Add(1)
		log.Error().Err(err).Str("decision", "error").Str("reason", string(r)).Msg("dead-letter record not stored")
		ack := hl7.BuildACKFromBytes(data, hl7.AckCodeFor(enhanced, hl7.Errored),
			hl7.ErrorDetail{Code: hl7.CodeInternalError, Severity: "E", Message: TextNotStored})
		return in.maybeAck(enhanced, acceptAckType, false, ack)
	}
	in.nacked[r.index()].Add(1)
	return in.maybeAck(enhanced, acceptAckType, false, build(hl7.AckCodeFor(enhanced, hl7.Rejected)))
}

// deadLetter stores data in DEAD under hl7.dead.<reason>. Identical resends of
// the same bad frame are stored once (Msg-Id is the SHA-256 of the bytes).
func (in *Intake) deadLetter(ctx context.Context, peer mllp.Peer, receivedAt time.Time, data []byte, r Reason, why string, size int64) error {
	sum := sha256.Sum256(data)
	h := nats.Header{
		bus.HeaderMsgID:      {"intake-" + string(r) + "-" + hex.EncodeToString(sum[:16])},
		bus.HeaderDeadReason: {string(r)},
		bus.HeaderDeadDetail: {headerSafe(why)},
		bus.HeaderDeadStage:  {"intake"},
		bus.HeaderPeer:       {peer.Addr.String()},
		bus.HeaderConnID:     {strconv.FormatUint(peer.ConnID, 10)},
		bus.HeaderReceivedAt: {receivedAt.UTC().Format(time.RFC3339Nano)},
		bus.HeaderDeadAt:     {in.now().UTC().Format(time.RFC3339Nano)},
	}
	if size > 0 {
		h[bus.HeaderSize] = []string{strconv.FormatInt(size, 10)}
	}
	if nc := in.js.Conn(); nc != nil && int64(len(data))+8192 > nc.MaxPayload() {
		data = data[:max(0, min(len(data), int(nc.MaxPayload())-8192))]
		if size == 0 {
			h[bus.HeaderSize] = []string{strconv.Itoa(len(data))}
		}
	}
	sctx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
	defer cancel()
	subj := bus.DeadSubject(string(r))
	if _, err := in.js.PublishMsg(sctx, &nats.Msg{Subject: subj, Header: h, Data: data}, jetstream.WithExpectStream(bus.StreamDead)); err != nil {
		return fmt.Errorf("publishing to %s: %w", subj, err)
	}
	in.dead.Add(1)
	return nil
}

// HandleTooLarge answers an oversize frame with AR/CR and ERR 207 "message too
// large", after recording its first bytes (at most MaxDeadPrefix) in DEAD.
func (in *Intake) HandleTooLarge(ctx context.Context, peer mllp.Peer, prefix []byte, size int64) []byte {
	in.received.Add(1)
	log := msgLog{l: in.logger(ctx), conn: peer.ConnID, size: size}
	if len(prefix) > MaxDeadPrefix {
		prefix = prefix[:MaxDeadPrefix]
	}
	enhanced := in.enhancedFromBytes(prefix)
	log.Warn().Str("decision", "reject").Str("reason", string(ReasonTooLarge)).Msg("message too large")
	d := hl7.ErrorDetail{Code: hl7.CodeInternalError, Severity: "E", Message: TextTooLarge}
	if err := in.deadLetter(ctx, peer, in.now(), prefix, ReasonTooLarge, fmt.Sprintf("%s: %d bytes", TextTooLarge, size), size); err != nil {
		// Resending will not help, but nothing is stored: the sender keeps it.
		log.Error().Err(err).Msg("dead-letter record not stored")
	}
	in.nacked[ReasonTooLarge.index()].Add(1)
	return in.maybeAck(enhanced, acceptAckFromBytes(prefix), false, hl7.BuildACKFromBytes(prefix, hl7.AckCodeFor(enhanced, hl7.Rejected), d))
}

// parseDetail describes a parse error without message content: the sentinel's
// text and the location (a ParseError's Detail may quote the message).
func parseDetail(err error) string {
	var pe *hl7.ParseError
	if !errors.As(err, &pe) || pe.Err == nil {
		return "message does not parse"
	}
	s := pe.Err.Error()
	if pe.Segment != "" {
		s += " in " + pe.Segment
	}
	if pe.Line > 0 {
		s += " (segment " + strconv.Itoa(pe.Line)
		if pe.Field > 0 {
			s += ", field " + strconv.Itoa(pe.Field)
		}
		s += ")"
	}
	return s
}

// accepts reports whether the message type is in the accept list.
func (in *Intake) accepts(t hl7.MessageType) bool {
	code := strings.ToUpper(t.Code)
	return in.types[code] || in.types[code+"^"+strings.ToUpper(t.Event)]
}

// enhanced reports whether to answer in enhanced mode.
func (in *Intake) enhanced(msh hl7.MSH) bool {
	switch in.cfg.AckMode {
	case AckModeOriginal:
		return false
	case AckModeEnhanced:
		return true
	}
	return msh.AcceptAckType != "" || msh.AppAckType != ""
}

// enhancedFromBytes is enhanced for a message that did not parse.
func (in *Intake) enhancedFromBytes(b []byte) bool {
	switch in.cfg.AckMode {
	case AckModeOriginal:
		return false
	case AckModeEnhanced:
		return true
	}
	h, ok := hl7.PeekMSH(b)
	return ok && h.Complete() && (len(bytes.TrimSpace(h.Field(15))) > 0 || len(bytes.TrimSpace(h.Field(16))) > 0)
}

// acceptAckFromBytes reads MSH-15 from the raw header (hl7.PeekMSH: only a
// header that ends within b counts, so a cut header is not misread), "" when
// unreadable.
func acceptAckFromBytes(b []byte) string {
	h, ok := hl7.PeekMSH(b)
	if !ok || !h.Complete() {
		return ""
	}
	return string(bytes.TrimSpace(h.Field(15)))
}

// MsgIDLen is the length of every Msg-Id MsgID returns.
const MsgIDLen = 22

// msgIDDomain separates MsgID's hash input from any other use of SHA-256; the
// version changes if the input's encoding ever does.
const msgIDDomain = "resultgate hl7 msg-id v1\x00"

// MsgID returns the Nats-Msg-Id of a message: a stable, fixed-length ID of its
// sending application (MSH-3), sending facility (MSH-4) and control ID (MSH-10),
// the unpadded base64url encoding of the first 16 bytes of the SHA-256 of the
// seven strings (three HD components each for MSH-3 and MSH-4, then MSH-10), each
// preceded by its length, so no two different triples share an input (a "|" or
// "^" inside a value cannot shift the boundaries). The same triple always gives
// the same ID, across restarts and instances.
//
// It is a hash because JetStream keeps every Msg-Id of HL7_IN's duplicate window
// in memory: 22 bytes instead of the joined values (often 60-90 bytes with OIDs)
// cut the server's heap per stored message (docs/BENCHMARKS.md, Memory). 128
// bits make an accidental collision negligible, and a collision could still not
// lose a message: a duplicate is only acknowledged as one after checkDuplicate
// has found the same content stored.
func MsgID(app, facility hl7.HD, controlID string) string {
	var buf [256]byte
	b := append(buf[:0], msgIDDomain...)
	for _, s := range [...]string{
		app.NamespaceID, app.UniversalID, app.UniversalIDType,
		facility.NamespaceID, facility.UniversalID, facility.UniversalIDType,
		controlID,
	} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// hdString joins the HD components with ^, dropping trailing empty ones;
// a ^ inside a component is percent-escaped.
func hdString(h hl7.HD) string {
	parts := []string{h.NamespaceID, h.UniversalID, h.UniversalIDType}
	n := len(parts)
	for n > 1 && parts[n-1] == "" {
		n--
	}
	for i := range parts[:n] {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(parts[i], "%", "%25"), "^", "%5E")
	}
	return strings.Join(parts[:n], "^")
}

// headerSafe replaces CR and LF, which would break a NATS header, with spaces.
func headerSafe(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// secondPatient returns the occurrence (1-based) of the first PID segment that
// names a different patient than the first PID (by PID.PrimaryIdentifier, with
// its assigning authority), or 0 when the message is about one patient. A
// repeated PID for the same patient is accepted.
func secondPatient(m *hl7.Message) int {
	var first *hl7.Segment
	firstID, n := "", 0
	for _, s := range m.Segments() {
		if s.Name() != "PID" {
			continue
		}
		n++
		if first == nil {
			first = s // read only if a second PID comes
			continue
		}
		if n == 2 {
			firstID, _ = pidIdentity(first)
		}
		if id, _ := pidIdentity(s); id != firstID {
			return n
		}
	}
	return 0
}

// pidIdentity is the PatientIdentity of a PID segment's primary identifier
// (hl7.PID.PrimaryIdentifier, with its assigning authority), and false when
// PID-3 names none. It reads only that identifier's components: the intake
// calls it for every message.
func pidIdentity(pid *hl7.Segment) (string, bool) {
	f, ok := hl7.PrimaryIdentifierField(pid)
	if !ok {
		return "", false
	}
	return hold.PatientIdentity(f.Component(1), f.Sub(4, 1), f.Sub(4, 2), f.Sub(4, 3)), true
}
