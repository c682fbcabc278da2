package dead

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// Desk is the triage desk over the dead letters: listing (with operators'
// discards), and discarding with who and why, audited.
type Desk struct {
	Letters *Letters
	Audit   *audit.Trail
	Now     func() time.Time
}

// Query selects dead-letter records.
type Query struct {
	// Reason keeps the records of one reason (e.g. "unattributed"); empty
	// keeps all.
	Reason string `json:"reason,omitempty"`
	// Open leaves out the records an operator discarded.
	Open bool `json:"open,omitempty"`
	// Limit caps the records read; default and maximum 10000.
	Limit int `json:"limit,omitempty"`
}

// DeadFind lists the dead-letter records q selects, oldest first, each with
// its discard (from the audit trail) when an operator discarded it.
func (s *Desk) Find(ctx context.Context, q Query) ([]Record, error) {
	recs, err := s.Letters.ListReason(ctx, q.Reason, q.Limit)
	if err != nil {
		return nil, err
	}
	discards, err := s.discards(ctx)
	if err != nil {
		return nil, err
	}
	out := recs[:0]
	for _, r := range recs {
		if d, ok := discards[r.Seq]; ok {
			if q.Open {
				continue
			}
			r.Discarded = &d
		}
		out = append(out, r)
	}
	return out, nil
}

// Triage lists the unattributed results no operator has discarded yet: the
// on-call triage list.
func (s *Desk) Triage(ctx context.Context, limit int) ([]Record, error) {
	return s.Find(ctx, Query{Reason: bus.DeadUnattributed, Open: true, Limit: limit})
}

// discards reads the discard events of the audit trail, by DEAD sequence
// (the first one of a record counts).
func (s *Desk) discards(ctx context.Context) (map[uint64]Discard, error) {
	evs, err := s.Audit.Query(ctx, audit.Query{Kinds: []string{bus.AuditDiscard}})
	if err != nil {
		return nil, fmt.Errorf("reading discards: %w", err)
	}
	out := make(map[uint64]Discard, len(evs))
	for _, e := range evs {
		if _, seen := out[e.DeadSeq]; !seen && e.DeadSeq != 0 {
			out[e.DeadSeq] = Discard{By: e.Actor, Reason: e.Reason, At: e.At}
		}
	}
	return out, nil
}

// DiscardRequest asks to close a dead-letter record without replaying it.
type DiscardRequest struct {
	Seq uint64 `json:"seq"`
	// By is who discards it; Role their role (system when empty: an operator
	// on the NATS API or the CLI).
	By   string `json:"by"`
	Role string `json:"role,omitempty"`
	// Reason says why, e.g. "corrected and resent by the LIS as control ID
	// 4711" or "test message sent to production by mistake".
	Reason string `json:"reason"`
}

// DeadDiscard closes dead-letter record seq without replaying it: an
// operator's decision, audited (kind discard, with who and why). The record
// stays on DEAD (the stream is the record of what arrived); it leaves the
// open lists. Discarding a discarded record changes nothing and returns it
// with its first discard.
func (s *Desk) Discard(ctx context.Context, req DiscardRequest) (Record, error) {
	seq, by, reason, role := req.Seq, strings.TrimSpace(req.By), strings.TrimSpace(req.Reason), req.Role
	if role == "" {
		role = hold.RoleSystem
	}
	if by == "" {
		return Record{}, fmt.Errorf("discarding dead seq %d: who discards it (by) is required: %w", seq, hold.ErrBadRequest)
	}
	if reason == "" {
		return Record{}, fmt.Errorf("discarding dead seq %d: %w", seq, hold.ErrReasonRequired)
	}
	rec, err := s.Letters.Lookup(ctx, seq)
	if err != nil {
		return rec, err
	}
	if rec.Stage == "intake" {
		// The intake's refusals were answered AR/CR: the sender holds them
		// and nothing waits on them here.
		return rec, fmt.Errorf("dead seq %d was refused by the intake and waits on nothing: %w", seq, hold.ErrBadRequest)
	}
	discards, err := s.discards(ctx)
	if err != nil {
		return rec, err
	}
	if d, ok := discards[seq]; ok {
		rec.Discarded = &d
		return rec, nil
	}
	now := s.Now().UTC()
	if err := s.Audit.Record(ctx, fmt.Sprintf("discard-%d", seq), audit.Event{
		Kind: bus.AuditDiscard, At: now, MsgID: rec.MsgID, InboundSeq: rec.InboundSeq, DeadSeq: seq,
		Actor: by, Role: role, Reason: reason,
	}); err != nil {
		return rec, fmt.Errorf("auditing the discard of dead seq %d (nothing discarded): %w", seq, err)
	}
	rec.Discarded = &Discard{By: by, Reason: reason, At: now}
	return rec, nil
}
