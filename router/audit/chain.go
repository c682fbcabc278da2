package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/router/bus"
)

// The hash chain. Every AUDIT event carries, in bus.HeaderAuditPrev, the link
// of the event stored just before it:
//
//	link(e) = hex SHA-256("resultgate-audit-v1" ‖ seq(e) as 8 bytes big-endian ‖
//	          len(subject) ‖ subject ‖ len(payload) ‖ payload ‖ Prev(e))
//
// with the lengths as 8 bytes big-endian and Prev(e) the event's own header
// (bus.AuditGenesis on the first event; empty on events written before the
// chain existed). The sequence is in the link, so an event cannot be moved,
// and the predecessor's link is in it, so no event before it can be removed
// or changed without breaking every link after it. Anyone who may read AUDIT
// can check the chain (`resultgate audit verify`); the checkpoints
// (checkpoint.go) are signed with the instance secret, so that a writer
// without the secret cannot rewrite the trail and its checkpoints together.

// ErrTrailTruncated is returned by Record when the AUDIT stream's last
// sequence is behind one this process has already seen, or behind the last
// checkpoint: the trail lost events (the stream was deleted and recreated, or
// its limits changed). Nothing is appended until an operator has looked
// (`resultgate audit verify`, then `resultgate audit init --accept-new`).
var ErrTrailTruncated = errors.New("audit trail truncated")

// ErrTrailReconfigured is returned by Record when AUDIT's protections differ
// from resultgate's (a limit, a discard or retention policy, a transform):
// events could expire or be dropped, so nothing is appended until an operator
// has restored them (`resultgate audit init --accept-new`).
var ErrTrailReconfigured = errors.New("audit trail reconfigured")

// ErrTrailMissing is returned by Record when the AUDIT stream does not
// exist: it was deleted (serve never recreates it beside existing streams).
// Nothing is appended until an operator has restored it (`resultgate audit
// init --accept-new`).
var ErrTrailMissing = errors.New("audit trail missing")

// Refused reports whether err is the trail refusing appends until an
// operator acts on it (missing, truncated or reconfigured): no fault of the
// event being recorded, so its caller waits and tries again rather than
// giving up on the work the event records.
func Refused(err error) bool {
	return errors.Is(err, ErrTrailMissing) || errors.Is(err, ErrTrailTruncated) || errors.Is(err, ErrTrailReconfigured)
}

// maxConflicts bounds how often one append is linked again because another
// instance appended first; each retry reads the new head, so only sustained
// contention from many instances reaches it.
const maxConflicts = 64

// chainHead is the last event of the trail as this process knows it, read
// or written at.
type chainHead struct {
	ok   bool
	seq  uint64
	link string
	at   time.Time
}

// headRevalidate is how long a Trail trusts the head it knows before it reads
// the head and AUDIT's configuration again: a limit added to AUDIT while
// serve runs stops appends within this time, not only after a failure.
var headRevalidate = 10 * time.Second

// Link returns the chain link of the event stored at seq on subject with
// payload data and chain header prev.
func Link(seq uint64, subject string, data []byte, prev string) string {
	h := sha256.New()
	var n [8]byte
	h.Write([]byte("resultgate-audit-v1"))
	binary.BigEndian.PutUint64(n[:], seq)
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(subject)))
	h.Write(n[:])
	h.Write([]byte(subject))
	binary.BigEndian.PutUint64(n[:], uint64(len(data)))
	h.Write(n[:])
	h.Write(data)
	h.Write([]byte(prev))
	return hex.EncodeToString(h.Sum(nil))
}

// appendLinked publishes one event linked to the head, reading the head first
// when it is not known. Any failure forgets the head, so the next try reads
// it again (a timed-out publish may have been stored: the retry then finds
// it at the head and the Msg-Id makes the publish a duplicate).
func (a *Trail) appendLinked(ctx context.Context, subj, msgID string, data []byte) error {
	if !a.head.ok || time.Since(a.head.at) > headRevalidate {
		h, err := a.readHead(ctx)
		if err != nil {
			return err
		}
		a.head = h
	}
	prev := a.head.link
	m := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	m.Header.Set(bus.HeaderAuditPrev, prev)
	ack, err := bus.Publish(ctx, a.js.Conn(), m, bus.PublishOpts{MsgID: msgID,
		ExpectStream: bus.StreamAudit, ExpectLastSeq: a.head.seq, HasExpectLastSeq: true})
	if err != nil {
		a.head.ok = false
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			// Nothing stores audit.>: AUDIT may have been deleted.
			if _, serr := a.js.Stream(ctx, bus.StreamAudit); errors.Is(serr, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("appending to the audit trail: %w (%w)", ErrTrailMissing, err)
			}
		}
		return err
	}
	if !ack.Duplicate {
		a.head = chainHead{ok: true, seq: ack.Sequence, link: Link(ack.Sequence, subj, data, prev), at: a.head.at}
		a.highest = max(a.highest, ack.Sequence)
	}
	return nil
}

// readHead reads the last event of AUDIT and returns it as the chain head. An
// empty stream (new, or every event aged out under a configured max age) has
// the genesis link at its last sequence.
func (a *Trail) readHead(ctx context.Context) (chainHead, error) {
	s, err := a.js.Stream(ctx, bus.StreamAudit)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return chainHead{}, fmt.Errorf("reading the audit chain head: %w (%w)", ErrTrailMissing, err)
	}
	if err != nil {
		return chainHead{}, fmt.Errorf("reading the audit chain head: %w", err)
	}
	if d := configDrift(s.CachedInfo().Config, CheckOptions{}.expected()); len(d) > 0 {
		return chainHead{}, fmt.Errorf("AUDIT %s: %w", strings.Join(d, ", "), ErrTrailReconfigured)
	}
	h, err := headOf(ctx, s)
	if err != nil {
		return chainHead{}, err
	}
	floor := a.highest
	if cp, err := LoadCheckpoint(ctx, a.js); err == nil && cp != nil {
		if cp.Accepted != nil {
			// An operator accepted the trail as it stands (audit init).
			floor, a.highest = cp.Seq, cp.Seq
		} else {
			floor = max(floor, cp.Seq)
		}
	}
	if h.seq < floor {
		return chainHead{}, fmt.Errorf("AUDIT ends at sequence %d, but sequence %d was already written: %w", h.seq, floor, ErrTrailTruncated)
	}
	a.highest = max(a.highest, h.seq)
	return h, nil
}

// headOf returns the chain head of stream s, whose cached info was read
// just before (js.Stream).
func headOf(ctx context.Context, s jetstream.Stream) (chainHead, error) {
	// The state first: an empty stream's head is the genesis link at its
	// last sequence. Asking for the last message first and, when there was
	// none, for the last sequence afterwards raced with other writers: the
	// sequence could be a later writer's event, and the next event then
	// linked to the genesis instead of to it (TestChainConcurrentWriters
	// caught it under load). A writer appending after this state read makes
	// the publish's expected last sequence fail, and the head is read again.
	// The state js.Stream read is that earlier read: no second request.
	info := s.CachedInfo()
	if info.State.Msgs == 0 {
		return chainHead{ok: true, seq: info.State.LastSeq, link: bus.AuditGenesis, at: time.Now()}, nil
	}
	m, err := s.GetLastMsgForSubject(ctx, bus.SubjectAuditAll)
	if err != nil {
		return chainHead{}, fmt.Errorf("reading the audit chain head: %w", err)
	}
	return chainHead{ok: true, seq: m.Sequence, link: Link(m.Sequence, m.Subject, m.Data, m.Header.Get(bus.HeaderAuditPrev)), at: time.Now()}, nil
}

// isWrongLastSeq reports whether err is JetStream's refusal of a publish
// whose expected last sequence is not the stream's (another writer appended).
func isWrongLastSeq(err error) bool {
	var jerr jetstream.JetStreamError
	if !errors.As(err, &jerr) || jerr.APIError() == nil {
		return false
	}
	switch jerr.APIError().ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return true
	}
	return false
}
