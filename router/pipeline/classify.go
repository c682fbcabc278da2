package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/notify"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// Policy is what the pipeline needs from the policy package: build the report,
// classify it, decide, and read a Consent. PolicyAdapter (policy.go) is the one
// production implementation; tests may state explicit rules of their own.
type Policy interface {
	// Report builds the policy's view of a parsed message (policy.FromHL7).
	Report(m *hl7.Message) (*policy.Report, error)
	// Classify tags the report; h answers whether the patient had a
	// malignancy before (it reads storage only when asked).
	Classify(r *policy.Report, h policy.History) policy.Classification
	// Decide returns the release decision.
	Decide(in policy.Input) policy.Decision
	// ParseConsent reads a FHIR R4 Consent into the patient's preference.
	ParseConsent(data []byte) (*policy.Preference, error)
}

// PooledPolicy is implemented by a Policy that can build the report and the
// classification in reusable memory (policy.FromHL7Pooled and
// Classifier.ClassifyPooled): the classify step, which is done with both when
// its message is, then calls release. Nothing it writes keeps their slices:
// hold records, audit events and the hold view keep strings and copies.
type PooledPolicy interface {
	ReportPooled(m *hl7.Message) (r *policy.Report, release func(), err error)
	ClassifyPooled(r *policy.Report, h policy.History) (c policy.Classification, release func())
}

// consumerName returns the durable classify consumer of a partition.
func consumerName(partition string) string { return "classify-" + partition }

// classifyConsumerConfig is the durable consumer of one partition. MaxAckPending
// 1 keeps the partition (hence each patient) in order across all instances: a
// correction is never processed before the result it corrects. MaxDeliver is
// unlimited on the server: the handler itself dead-letters after
// Holds.MaxDeliver attempts, so no message is ever dropped by the server
// without a DEAD record.
func classifyConsumerConfig(partition string, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       consumerName(partition),
		Description:   "classify step of partition " + partition,
		FilterSubject: bus.InSubject(partition),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1,
		AckWait:       ackWait,
		MaxDeliver:    -1,
	}
}

// handleInbound processes one inbound message and settles it: ack on success,
// DEAD record and term on a permanent failure or after the delivery bound,
// otherwise a delayed nak.
func (s *Service) handleInbound(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		s.log.Error().Err(err).Msg("inbound message without metadata; nak")
		_ = msg.Nak()
		return
	}
	log := s.log.With().Uint64("seq", meta.Sequence.Stream).Str("subject", msg.Subject()).Logger()
	perr := s.processInbound(ctx, msg, meta)
	if perr == nil {
		// A plain ack, not a confirmed one: the outputs are written with
		// stable IDs and the order index, written last, marks the message
		// done, so an ack the server never sees costs a redelivery after
		// AckWait that the re-run absorbs (it sends nothing twice), while
		// waiting for the confirmation cost a request/reply per message.
		if err := msg.Ack(); err != nil {
			log.Warn().Err(err).Msg("ack not sent; a redelivery will be absorbed")
		}
		s.metrics.outcome("acked")
		return
	}
	var pe *dead.Permanent
	reason, detail := bus.DeadRetries, dead.SafeDetail(perr, "processing failed repeatedly")
	toDead := false
	switch {
	case errors.As(perr, &pe):
		reason, detail, toDead = pe.Reason, dead.SafeDetail(pe.Err, pe.Reason+" failed"), true
	case int(meta.NumDelivered) >= s.cfg.Holds.MaxDeliver:
		toDead = true
	}
	if !toDead {
		s.metrics.retry()
		delay := s.cfg.Holds.backoff(int(meta.NumDelivered))
		log.Warn().Str("error", dead.SafeDetail(perr, "transient failure")).Uint64("delivered", meta.NumDelivered).Dur("retry_in", delay).Msg("classify failed; retrying")
		_ = msg.NakWithDelay(delay)
		return
	}
	deadSeq, err := s.dead.Put(ctx, msg, reason, detail)
	if err != nil {
		log.Error().Err(err).Msg("dead-lettering failed; nak")
		_ = msg.NakWithDelay(s.cfg.Holds.backoff(int(meta.NumDelivered)))
		return
	}
	// The message leaves HL7_IN's consumer (term) only once its dead letter
	// is audited; a failed append naks it, and the redelivery writes the
	// record and the event once each (stable IDs).
	// The event names the hold ID and control ID the decision event used, so
	// a decision whose result never reached the feed reads as not delivered.
	msgID := msg.Headers().Get(jetstream.MsgIDHeader)
	holdID := ""
	if msgID != "" {
		holdID = hold.HoldID(s.cfg.Secret, msgID)
	}
	if err := s.audit.Record(ctx, "dead-"+strconv.FormatUint(meta.Sequence.Stream, 10), audit.Event{
		Kind: bus.AuditDead, HoldID: holdID, MsgID: msgID, ControlID: msg.Headers().Get(bus.HeaderHL7ControlID),
		InboundSeq: meta.Sequence.Stream, Action: audit.ActionNotDelivered,
		Reason: reason + ": " + detail, Actor: "resultgate", Role: hold.RoleSystem, DeadSeq: deadSeq,
	}); err != nil {
		log.Error().Err(err).Msg("auditing the dead letter failed; nak")
		_ = msg.NakWithDelay(s.cfg.Holds.backoff(int(meta.NumDelivered)))
		return
	}
	if reason == bus.DeadUnattributed {
		// On-call learns of it now, not at the next look at the list; the
		// notice is written before the term, so a failure naks and the
		// redelivery notifies once (stable Msg-Id).
		if err := s.notifier.Triage(ctx, notify.TriageNotice{
			Reason: reason, Detail: detail, DeadSeq: deadSeq, InboundSeq: meta.Sequence.Stream,
			ControlID: msg.Headers().Get(bus.HeaderHL7ControlID), At: s.clock.Now(),
		}); err != nil {
			log.Error().Err(err).Msg("notifying on-call of a triage record failed; nak")
			_ = msg.NakWithDelay(s.cfg.Holds.backoff(int(meta.NumDelivered)))
			return
		}
	}
	if err := msg.TermWithReason(reason); err != nil {
		log.Warn().Err(err).Msg("term not confirmed")
	}
	s.metrics.outcome("dead")
	log.Error().Str("reason", reason).Str("detail", detail).Msg("inbound message dead-lettered")
}

// inboundContext is what one classify run knows about its message.
type inboundContext struct {
	ref        hold.InboundRef
	raw        []byte
	msg        *hl7.Message
	report     *policy.Report
	holdID     string
	patientKey string
	orderKey   string
	order      orderRef
	provider   string
	now        time.Time
	// createdHold is set when this run created the hold: the prior it
	// passes to finishHold is then the one it read, and no earlier run can
	// have indexed the hold with another.
	createdHold bool
}

// processInbound runs the classify step for one message. Every write uses an
// ID derived from the inbound Nats-Msg-Id, so running it twice (a redelivery
// after a crash between writes) converges on the same outputs.
func (s *Service) processInbound(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
	subj := msg.Subject()
	partition := subj[strings.LastIndexByte(subj, '.')+1:]
	msgID := msg.Headers().Get(jetstream.MsgIDHeader)
	if msgID == "" {
		msgID = "seq-" + strconv.FormatUint(meta.Sequence.Stream, 10)
	}
	in := &inboundContext{
		ref: hold.InboundRef{Stream: bus.StreamHL7In, Seq: meta.Sequence.Stream, MsgID: msgID, Partition: partition},
		raw: msg.Data(), now: s.clock.Now().UTC(),
	}
	in.holdID = hold.HoldID(s.cfg.Secret, msgID)
	// in.raw is the NATS message's own buffer, never written: parse it in place.
	m, err := hl7.ParseWithOptions(in.raw, hl7.ParseOptions{NoCopy: true})
	if err != nil {
		return dead.NewPermanent(bus.DeadParse, err)
	}
	in.msg = m
	in.ref.ControlID = m.ControlID()
	var r *policy.Report
	pooled, _ := s.policy.(PooledPolicy)
	if pooled != nil {
		var release func()
		r, release, err = pooled.ReportPooled(m)
		if release != nil {
			defer release()
		}
	} else {
		r, err = s.policy.Report(m)
	}
	if err != nil {
		return dead.NewPermanent(bus.DeadPolicy, err)
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = receivedAt(msg.Headers().Get(bus.HeaderReceivedAt), meta.Timestamp)
	}
	in.report = r
	in.patientKey = s.patientKey(r.PatientID)
	if in.patientKey == "" {
		// Nothing is released that cannot be attributed to one patient
		// (DESIGN non-negotiable 11): no hold, no release; the message
		// waits in triage (DEAD, reason unattributed) for an operator.
		return dead.NewPermanent(bus.DeadUnattributed, dead.ErrUnattributed)
	}
	if len(r.Orders) > 0 {
		in.order = s.orderOf(m, r)
		in.orderKey = in.order.key
		in.provider = r.Orders[0].OrderingProvider
	}

	// The lookups are independent: run them at once (latency is what limits
	// a partition, which handles one message at a time).
	var (
		existing  *hold.Hold
		holdErr   error
		entry     store.OrderEntry
		found     bool
		orderErr  error
		inputs    decisionInputs
		inputsErr error
		wg        sync.WaitGroup
	)
	wg.Add(2)
	go func() { defer wg.Done(); existing, holdErr = s.holds.Get(ctx, in.holdID) }()
	go func() { defer wg.Done(); entry, found, orderErr = s.orderEntry(ctx, in.order, in.patientKey) }()
	inputs, inputsErr = s.loadDecisionInputs(ctx, in.patientKey, in.order, r.PatientID)
	wg.Wait()
	// A re-run: the hold exists already, or the index says this very message
	// was handled. Finish the idempotent follow-ups and ack.
	if holdErr == nil {
		return s.finishHold(ctx, in, existing, nil)
	} else if !errors.Is(holdErr, hold.ErrHoldNotFound) {
		return holdErr
	}
	if err := errors.Join(orderErr, inputsErr); err != nil {
		return err
	}
	var prior *policy.Prior
	if found {
		if entry.HoldID == in.holdID {
			// The index is written last: this message was fully processed.
			if entry.State != hold.StateHeld {
				return nil
			}
			prior = entry.Prior
		} else {
			prior, err = s.priorOf(ctx, entry, in.patientKey)
			if err != nil {
				return err
			}
		}
	}
	hist := &lazyHistory{ctx: ctx, store: s.history, key: in.patientKey}
	var c policy.Classification
	if pooled != nil {
		var release func()
		c, release = pooled.ClassifyPooled(r, hist)
		defer release()
	} else {
		c = s.policy.Classify(r, hist)
	}
	if hist.err != nil {
		return hist.err
	}
	d := s.decide(*in.parsed(), c, inputs, prior, in.now)
	s.metrics.decision(string(d.Action))
	// The decision's audit event is written alongside the outputs; the ack
	// waits for both.
	auditDone := make(chan error, 1)
	go func() {
		auditDone <- s.audit.Record(ctx, "dec-"+in.holdID, audit.Event{
			Kind: bus.AuditDecision, At: in.now, HoldID: in.holdID, PatientKey: in.patientKey, OrderKey: in.orderKey,
			MsgID: msgID, ControlID: in.ref.ControlID, InboundSeq: in.ref.Seq,
			Action: string(d.Action), Disposition: d.Disposition, Tags: c.Tags, RulesetVersion: d.RulesetVersion,
			Bases: hold.BasesFromPolicy(d.Bases), Deadline: d.Deadline, Notify: string(d.Notify),
			Actor: "resultgate", Role: hold.RoleSystem,
		})
	}()
	err = s.applyDecision(ctx, in, c, d, prior, inputs)
	return errors.Join(err, <-auditDone)
}

// applyDecision writes the outputs of decision d for message in.
func (s *Service) applyDecision(ctx context.Context, in *inboundContext, c policy.Classification, d policy.Decision, prior *policy.Prior, inputs decisionInputs) error {
	msgID, m := in.ref.MsgID, in.msg
	switch d.Action {
	case policy.ActionHold:
		if d.Disposition == policy.DispositionRetractAndHold && prior != nil && prior.State == policy.PriorReleased && prior.HoldID != "" {
			if err := s.retractForRevision(ctx, in, prior, d); err != nil {
				return err
			}
		}
		h := s.newHold(in, c, d, prior)
		stored, created, err := s.holds.Create(ctx, h)
		if err != nil {
			return err
		}
		in.createdHold = created
		// The view learns of the hold now rather than from the bucket's
		// watcher, which then skips decoding the record (finishHold
		// observes it again once done).
		s.view.Observe(stored)
		if err := s.finishHold(ctx, in, stored, prior); err != nil {
			return err
		}
		changed, err := s.inputsChanged(ctx, stored, inputs)
		if err != nil {
			return err
		}
		if changed {
			if _, err := s.reevaluate(ctx, stored, in.parsed(), hold.PathPatientRevoked, "resultgate", hold.RoleSystem, "consent or determination changed while the hold was created"); err != nil &&
				!errors.Is(err, hold.ErrAlreadyReleased) && !errors.Is(err, hold.ErrHoldClosed) {
				return err
			}
		}
		return s.bindDeterminations(ctx, in.order, stored, in.parsed())
	case policy.ActionWithdraw:
		if prior != nil && prior.State == policy.PriorHeld && prior.HoldID != "" {
			if err := s.closePrior(ctx, prior.HoldID, in.holdID, hold.StateWithdrawn, "withdrawn by the sender", in.now); err != nil {
				return err
			}
		}
		if prior != nil && prior.State == policy.PriorReleased && prior.HoldID != "" {
			// The patient can see the version withdrawn (e.g. wrong patient):
			// every feed it reached gets the withdrawal, after it on the same
			// partition subject, linked to it. The FHIR Bundle of the
			// withdrawal has the same resource ids, entered-in-error.
			if err := s.gate.Emit(ctx, feed.Emit{
				HoldID: in.holdID, Inbound: in.ref, PatientKey: in.patientKey, Raw: in.raw, Msg: m, Retracts: prior.HoldID,
				Rel: hold.ReleaseInfo{Path: hold.PathRetraction, Actor: "resultgate", Role: hold.RoleSystem,
					Reason: "withdrawn by the sender: the released version is retracted", Notify: policy.NotifyQuiet, At: in.now},
			}); err != nil {
				return err
			}
		}
		return s.orders.Put(ctx, in.orderKey, store.OrderEntry{HoldID: in.holdID, State: hold.StateWithdrawn, MsgID: msgID, At: in.now, Prior: prior})
	default: // release
		if prior != nil && prior.State == policy.PriorHeld && prior.HoldID != "" {
			if err := s.closePrior(ctx, prior.HoldID, in.holdID, hold.StateSuperseded, "replaced by a correction released at once", in.now); err != nil {
				return err
			}
		}
		path := hold.PathImmediate
		reason := "no lawful basis to hold"
		if d.Disposition == policy.DispositionReleaseCorrection {
			path, reason = hold.PathCorrection, "correction of a result already released"
		}
		if err := s.gate.Emit(ctx, feed.Emit{
			HoldID: in.holdID, Inbound: in.ref, PatientKey: in.patientKey, Raw: in.raw, Msg: m,
			Rel: hold.ReleaseInfo{Path: path, Actor: "resultgate", Role: hold.RoleSystem, Reason: reason, Note: d.Note, Notify: d.Notify, At: in.now},
		}); err != nil {
			return err
		}
		// History counts what the patient saw: the malignancy is on record
		// once a result showing it is on the feed.
		if c.Has(policy.TagMalignancy) {
			if err := s.history.MarkMalignancy(ctx, in.patientKey, msgID, in.now); err != nil {
				return err
			}
		}
		return s.orders.Put(ctx, in.orderKey, store.OrderEntry{HoldID: in.holdID, State: hold.StateReleased, MsgID: msgID, At: in.now, Prior: prior})
	}
}

// retractForRevision takes back the released version prior of the result in
// while its correction is held (DispositionRetractAndHold): a synthesised
// withdrawal of the same order and observations, carrying none of the
// corrected content and the plain-language revision note, goes to every feed
// the release reached, linked to it.
func (s *Service) retractForRevision(ctx context.Context, in *inboundContext, prior *policy.Prior, d policy.Decision) error {
	raw := feed.RetractionOf(in.msg, in.raw, d.RevisionNote)
	m, err := hl7.Parse(raw)
	if err != nil {
		return dead.NewPermanent(bus.DeadInternal, fmt.Errorf("building the retraction of %s: %w", prior.HoldID, err))
	}
	return s.gate.Emit(ctx, feed.Emit{
		HoldID: in.holdID, Inbound: in.ref, PatientKey: in.patientKey, Raw: raw, Msg: m, Retracts: prior.HoldID,
		Rel: hold.ReleaseInfo{Path: hold.PathRetraction, Actor: "resultgate", Role: hold.RoleSystem,
			Reason: "corrected by the sender; the correction is held: the released version is retracted", Note: d.RevisionNote,
			Notify: policy.NotifyQuiet, At: in.now},
	})
}

// finishHold does the idempotent follow-ups of a created hold: close the
// version it replaces, index the order, notify the clinician.
func (s *Service) finishHold(ctx context.Context, in *inboundContext, h *hold.Hold, prior *policy.Prior) error {
	if h.Supersedes != "" {
		if err := s.closePrior(ctx, h.Supersedes, h.ID, hold.StateSuperseded, "replaced by a correction", h.CreatedAt); err != nil {
			return err
		}
	}
	if prior == nil && !in.createdHold {
		if e, ok, err := s.orders.Get(ctx, h.OrderKey); err != nil {
			return err
		} else if ok && e.HoldID == h.ID {
			prior = e.Prior
		}
	}
	if err := s.orders.Put(ctx, h.OrderKey, store.OrderEntry{HoldID: h.ID, State: hold.StateHeld, MsgID: h.Inbound.MsgID, At: h.CreatedAt, Prior: prior}); err != nil {
		return err
	}
	if h.State == hold.StateHeld {
		if err := s.notifier.Send(ctx, bus.NotifyHoldCreated, h, in.now); err != nil {
			return err
		}
	}
	if len(h.Transitions) > 0 {
		if err := s.audit.HoldEvent(ctx, h, h.Transitions[0], 1); err != nil {
			return err
		}
	}
	s.view.Observe(h)
	return nil
}

// newHold builds the hold record for a hold decision. A replacement of a held
// version keeps the original deadline: a correction never restarts the clock.
func (s *Service) newHold(in *inboundContext, c policy.Classification, d policy.Decision, prior *policy.Prior) *hold.Hold {
	deadline := d.Deadline
	h := &hold.Hold{
		ID: in.holdID, State: hold.StateHeld, Inbound: in.ref,
		PatientKey: in.patientKey, ProviderID: in.provider, ProviderKey: hold.ProviderKey(s.cfg.Secret, in.provider),
		OrderKey: in.orderKey, Tags: c.Tags, RulesetVersion: d.RulesetVersion, Bases: hold.BasesFromPolicy(d.Bases),
		Notify: d.Notify, Note: d.Note, CreatedAt: in.now,
	}
	if prior != nil && prior.State == policy.PriorHeld && prior.HoldID != "" {
		h.Supersedes = prior.HoldID
		if d.Disposition == policy.DispositionReplaceHeld && !prior.Deadline.IsZero() {
			deadline = prior.Deadline
		}
	}
	if deadline.IsZero() {
		// Policy guarantees a deadline on every hold; never hold without one.
		deadline = in.now.Add(s.cfg.Holds.FallbackDeadline)
	}
	h.Deadline = deadline.UTC()
	s.schedule(h, in.now)
	h.Transitions = []hold.Transition{{From: "", To: hold.StateHeld, Actor: "resultgate", Role: hold.RoleSystem, Reason: "policy decision (" + d.Disposition + ")", At: in.now}}
	return h
}

// schedule sets the reminder and escalation times of h from the configuration.
func (s *Service) schedule(h *hold.Hold, now time.Time) {
	h.RemindAt, h.EscalateAt = time.Time{}, time.Time{}
	if rb := s.cfg.Holds.ReminderBefore; rb > 0 {
		if t := h.Deadline.Add(-rb); t.After(now) {
			h.RemindAt = t
		}
	}
	if eb := s.cfg.Holds.EscalateBefore; eb > 0 {
		if t := h.Deadline.Add(-eb); t.After(now) {
			h.EscalateAt = t
		}
	}
}

// closePrior moves a held earlier version to state (superseded or withdrawn).
// Already closed or released versions are left as they are.
func (s *Service) closePrior(ctx context.Context, priorID, byID string, state hold.HoldState, reason string, at time.Time) error {
	h, err := s.holds.Mutate(ctx, priorID, func(h *hold.Hold) error {
		if h.State != hold.StateHeld {
			return store.ErrNoChange
		}
		h.Transitions = append(h.Transitions, hold.Transition{From: h.State, To: state, Actor: "sender", Role: hold.RoleSystem, Reason: reason, At: at})
		h.State = state
		if state == hold.StateSuperseded {
			h.SupersededBy = byID
		}
		return nil
	})
	if errors.Is(err, hold.ErrHoldNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.view.Observe(h)
	if h.State == state && len(h.Transitions) > 0 {
		last := h.Transitions[len(h.Transitions)-1]
		if last.To == state {
			return s.audit.Transition(ctx, h, last)
		}
	}
	return nil
}

// priorOf turns an order-index entry into the policy's Prior, reading the hold
// record (authoritative) when there is one.
func (s *Service) priorOf(ctx context.Context, e store.OrderEntry, patientKey string) (*policy.Prior, error) {
	p := &policy.Prior{State: string(e.State), HoldID: e.HoldID}
	switch e.State {
	case hold.StateReleased:
		p.State = policy.PriorReleased
	case hold.StateWithdrawn:
		p.State = policy.PriorWithdrawn
	}
	if e.State != hold.StateHeld {
		return p, nil
	}
	h, err := s.holds.Get(ctx, e.HoldID)
	if errors.Is(err, hold.ErrHoldNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if h.PatientKey != "" && patientKey != "" && h.PatientKey != patientKey {
		// Another patient's result on the same order (an anomaly: an order
		// is one patient's) is not an earlier version of this one: it must
		// neither supersede nor be superseded by it.
		return nil, nil
	}
	switch h.State {
	case hold.StateHeld:
		p.State, p.Deadline = policy.PriorHeld, h.Deadline
	case hold.StateReleased:
		p.State = policy.PriorReleased
	case hold.StateWithdrawn:
		p.State = policy.PriorWithdrawn
	case hold.StateSuperseded:
		// The index lags a newer version; treat as released-or-held by that.
		if h.SupersededBy != "" {
			if n, err := s.holds.Get(ctx, h.SupersededBy); err == nil {
				return s.priorOf(ctx, store.OrderEntry{HoldID: n.ID, State: n.State}, patientKey)
			}
		}
		p.State = policy.PriorWithdrawn
	}
	return p, nil
}

// patientKey returns the keyed hash of the identifier part of a PID-3 value.
// Consents name their patient by identifier without an HL7 assigning
// authority, so the pipeline keys history, Consents and holds by the
// identifier part alone.
func (s *Service) patientKey(pid string) string {
	pid = idNumber(pid)
	if pid == "" {
		return ""
	}
	return hold.PatientKey(s.cfg.Secret, hold.PatientIdentity(pid))
}

// idNumber returns the ID number of a policy.Report.PatientID ("id^^^auth"),
// trimmed: what the pipeline keys a patient by.
func idNumber(pid string) string {
	if i := strings.IndexByte(pid, '^'); i >= 0 {
		pid = pid[:i]
	}
	return strings.TrimSpace(pid)
}

// Attributable reports whether a result whose policy.Report.PatientID is pid
// can be attributed to a patient: its ID number is not empty. The classify
// step sends the others to triage (bus.DeadUnattributed); explain says so.
func Attributable(pid string) bool { return idNumber(pid) != "" }

func receivedAt(h string, fallback time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, h); err == nil {
		return t.UTC()
	}
	return fallback.UTC()
}
