package pipeline

import (
	"context"
	"fmt"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/nats-io/nuid"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// AccessEvent is one entry of the access log: who did or tried what, on which
// hold. It carries no PHI: identifiers are hold IDs and the actor's own name.
type AccessEvent struct {
	Kind   string // AuditAccess or AuditDenied
	Action string // e.g. "hold.read", "hold.release", "audit.read"
	HoldID string
	Actor  string
	Role   string
	Reason string // why it was denied (no PHI)
}

// RecordAccess appends e to the audit trail. Each call is a distinct event, so
// it gets a fresh message ID.
func (s *Service) RecordAccess(ctx context.Context, e AccessEvent) error {
	return s.audit.Record(ctx, "acc-"+nuid.Next(), audit.Event{
		Kind: e.Kind, Action: e.Action, HoldID: e.HoldID, Actor: e.Actor, Role: e.Role,
		Reason: e.Reason, At: s.clock.Now().UTC(),
	})
}

// InboundMessage returns the raw inbound HL7 message a hold refers to.
func (s *Service) InboundMessage(ctx context.Context, h *hold.Hold) ([]byte, error) {
	stream := h.Inbound.Stream
	if stream == "" {
		stream = bus.StreamHL7In
	}
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	m, err := st.GetMsg(ctx, h.Inbound.Seq)
	if err != nil {
		return nil, fmt.Errorf("reading inbound message %d: %w", h.Inbound.Seq, err)
	}
	return m.Data, nil
}
