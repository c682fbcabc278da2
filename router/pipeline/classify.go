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
// DEAD record, on-call notice and term on a permanent failure or once the
// delivery or time bound is reached, otherwise a delayed nak. Each attempt
// runs under holds.process_timeout (runAttempt), so a message holds its
// partition for at most holds.dead_after plus the writes that dead-letter it.
func (s *Service) handleInbound(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		s.log.Error().Err(err).Msg("inbound message without metadata; nak")
		_ = msg.Nak()
		return
	}
	seq := meta.Sequence.Stream
	log := s.log.With().Uint64("seq", seq).Str("subject", msg.Subject()).Logger()
	first := s.attempts.firstAttempt(seq)
	perr := s.runAttempt(ctx, msg, meta)
	if perr == nil {
		s.attempts.settled(seq)
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
	if ctx.Err() != nil {
		// The pipeline is stopping (or the handler's own bound ran out): not
		// the message's fault, and nothing can be written any more. The
		// server redelivers it, to this instance after a restart or to
		// another one.
		log.Warn().Str("error", dead.SafeDetail(perr, "interrupted")).Msg("classify interrupted; nak")
		_ = msg.Nak()
		return
	}
	if audit.Refused(perr) {
		// The audit trail refuses appends (deleted, truncated or
		// reconfigured) until an operator acts: no fault of this message,
		// and every message would fail the same way. It waits in HL7_IN,
		// retried at the longest back-off and never dead-lettered for it;
		// /readyz and the log say what to do. Its dead_after clock starts
		// again once the trail is back.
		s.attempts.settled(seq)
		s.metrics.retry()
		log.Error().Str("error", dead.SafeDetail(perr, "audit trail refused")).Msg("classify waits: the audit trail refuses appends until an operator restores it (resultgate audit verify, then audit init --accept-new)")
		_ = msg.NakWithDelay(s.cfg.Holds.backoff(len(s.cfg.Holds.RetryBackoff)))
		return
	}
	var pe *dead.Permanent
	reason, detail := bus.DeadRetries, dead.SafeDetail(perr, "processing failed repeatedly")
	if errors.Is(perr, errAttemptTimeout) {
		reason = bus.DeadProcessingTimeout
		detail = fmt.Sprintf("an attempt ran past holds.process_timeout (%s)", s.cfg.Holds.processTimeout())
	}
	delay := s.cfg.Holds.backoff(int(meta.NumDelivered))
	elapsed := time.Since(first)
	toDead := false
	switch {
	case errors.As(perr, &pe):
		reason, detail, toDead = pe.Reason, dead.SafeDetail(pe.Err, pe.Reason+" failed"), true
	case int(meta.NumDelivered) >= s.cfg.Holds.MaxDeliver:
		detail += fmt.Sprintf("; gave up after %d deliveries (holds.max_deliver)", meta.NumDelivered)
		toDead = true
	case elapsed+delay+s.cfg.Holds.processTimeout() > s.cfg.Holds.DeadAfter:
		detail += fmt.Sprintf("; gave up after %d deliveries in %s (holds.dead_after %s)", meta.NumDelivered, elapsed.Round(time.Millisecond), s.cfg.Holds.DeadAfter)
		toDead = true
	}
	if !toDead {
		s.metrics.retry()
		log.Warn().Str("error", dead.SafeDetail(perr, "transient failure")).Uint64("delivered", meta.NumDelivered).Dur("retry_in", delay).Msg("classify failed; retrying")
		_ = msg.NakWithDelay(delay)
		return
	}
	deadSeq, err := s.dead.Put(ctx, msg, reason, detail)
	if err != nil {
		log.Error().Err(err).Msg("dead-lettering failed; nak")
		_ = msg.NakWithDelay(delay)
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
	if err := s.audit.Record(ctx, "dead-"+strconv.FormatUint(seq, 10), audit.Event{
		Kind: bus.AuditDead, HoldID: holdID, MsgID: msgID, ControlID: msg.Headers().Get(bus.HeaderHL7ControlID),
		InboundSeq: seq, Action: audit.ActionNotDelivered,
		Reason: reason + ": " + detail, Actor: "resultgate", Role: hold.RoleSystem, DeadSeq: deadSeq,
	}); err != nil {
		log.Error().Err(err).Msg("auditing the dead letter failed; nak")
		_ = msg.NakWithDelay(delay)
		return
	}
	// On-call learns of every dead letter now, not at the next look at the
	// list (triage for an unattributed result, dead-letter otherwise); the
	// notice is written before the term, so a failure naks and the
	// redelivery notifies once (stable Msg-Id). It carries the reason, the
	// sequences, the partition and the count: no message content.
	subj := msg.Subject()
	if err := s.notifier.Triage(ctx, notify.TriageNotice{
		Reason: reason, Detail: detail, DeadSeq: deadSeq, InboundSeq: seq,
		Partition: subj[strings.LastIndexByte(subj, '.')+1:], Deliveries: int(meta.NumDelivered),
		ControlID: msg.Headers().Get(bus.HeaderHL7ControlID), At: s.clock.Now(),
	}); err != nil {
		log.Error().Err(err).Msg("notifying on-call of a dead letter failed; nak")
		_ = msg.NakWithDelay(delay)
		return
	}
	s.attempts.settled(seq)
	if err := msg.TermWithReason(reason); err != nil {
		log.Warn().Err(err).Msg("term not confirmed")
	}
	s.metrics.outcome("dead")
	log.Error().Str("reason", reason).Str("detail", detail).Msg("inbound message dead-lettered")
}

// errAttemptTimeout is the failure of a classify attempt that ran past
// holds.process_timeout.
var errAttemptTimeout = errors.New("classify attempt ran past holds.process_timeout")

// runAttempt runs processInbound for one delivery under the processing
// budget (holds.process_timeout) and returns its error, or errAttemptTimeout
// when the budget ran out first. The budget holds even for work that never
// looks at its context (parsing and the policy are pure CPU): the attempt
// runs in its own goroutine and the handler stops waiting for it.
//
// An attempt abandoned this way cannot write, ack or settle anything later:
//   - only handleInbound acks, naks or terms, never the attempt;
//   - the attempt's context is cancelled when the budget ends, before
//     handleInbound does anything else; every write of the classify step
//     takes that context, nats.go refuses a request whose context is done,
//     and processInbound checks it between its pure computation and its
//     first write;
//   - its result is discarded (nobody reads it);
//   - a redelivery of the same message on this instance first waits, within
//     its own budget, for the abandoned attempt to return, so two attempts of
//     one message never run side by side here.
//
// A write already sent when the budget ends may still be stored: that is the
// crash between two writes the classify step already absorbs (every output
// has a stable ID, so the next attempt converges on the same outputs).
func (s *Service) runAttempt(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
	seq := meta.Sequence.Stream
	actx, cancel := context.WithTimeout(ctx, s.cfg.Holds.processTimeout())
	defer cancel()
	if prev := s.attempts.running(seq); prev != nil {
		select {
		case <-prev:
		case <-actx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.metrics.timeout(false)
			return errAttemptTimeout
		}
	}
	res := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		res <- s.processInbound(actx, msg, meta)
	}()
	select {
	case err := <-res:
		return err
	case <-actx.Done():
	}
	cancel()
	select {
	case err := <-res:
		// It returned as the budget ended: its writes are done, and the
		// result stands.
		return err
	default:
	}
	s.attempts.abandon(seq, done, s.metrics)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errAttemptTimeout
}

// attempts tracks, per inbound sequence, the first attempt's time (for
// holds.dead_after) and an abandoned attempt still running.
type attempts struct {
	mu        sync.Mutex
	first     map[uint64]time.Time
	abandoned map[uint64]chan struct{}
}

// maxTracked bounds the first-attempt times kept: an entry is dropped when
// its message is settled here, and one whose message went to another instance
// is pruned once older than any bound could use.
const maxTracked = 4096

// firstAttempt returns when this instance first tried message seq (now, on
// the first attempt). After a restart the time starts again; the delivery
// count (holds.max_deliver) is the server's and survives.
func (a *attempts) firstAttempt(seq uint64) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if a.first == nil {
		a.first = map[uint64]time.Time{}
	}
	if t, ok := a.first[seq]; ok {
		return t
	}
	if len(a.first) >= maxTracked {
		for k, t := range a.first {
			if now.Sub(t) > time.Hour {
				delete(a.first, k)
			}
		}
	}
	a.first[seq] = now
	return now
}

// settled forgets message seq's first attempt (it was acked or dead-lettered).
func (a *attempts) settled(seq uint64) {
	a.mu.Lock()
	delete(a.first, seq)
	a.mu.Unlock()
}

// running returns the done channel of an abandoned attempt of seq that has
// not returned yet, or nil.
func (a *attempts) running(seq uint64) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.abandoned[seq]
}

// abandon records that the attempt of seq whose goroutine closes done was
// abandoned, until it returns.
func (a *attempts) abandon(seq uint64, done chan struct{}, m *Metrics) {
	m.timeout(true)
	a.mu.Lock()
	if a.abandoned == nil {
		a.abandoned = map[uint64]chan struct{}{}
	}
	a.abandoned[seq] = done
	a.mu.Unlock()
	go func() {
		<-done
		m.abandonedEnded()
		a.mu.Lock()
		if a.abandoned[seq] == done {
			delete(a.abandoned, seq)
		}
		a.mu.Unlock()
	}()
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
	// audited waits for the decision's audit event (written beside the
	// outputs) and returns its error; nil when there is none to wait for.
	// The writes that mark the message done (a hold record, the order
	// index) wait for it, so a redelivery after a failed append records the
	// decision instead of finding the work done without its event.
	audited func() error
	// createdHold is set when this run created the hold: the prior it
	// passes to finishHold is then the one it read, and no earlier run can
	// have indexed the hold with another.
	createdHold bool
}

// waitAudited returns the decision event's error, once it is written.
func (in *inboundContext) waitAudited() error {
	if in.audited == nil {
		return nil
	}
	return in.audited()
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
	if err := ctx.Err(); err != nil {
		return err // abandoned at its budget (runAttempt): write nothing
	}
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
	if err := ctx.Err(); err != nil {
		// The classification and the decision are pure computation that
		// does not look at ctx: an attempt abandoned at its budget
		// (runAttempt) stops here, before its first write.
		return err
	}
	s.metrics.decision(string(d.Action))
	// The decision's audit event is written alongside the outputs; the ack
	// waits for both.
	auditDone := make(chan error, 1)
	var (
		auditOnce sync.Once
		auditErr  error
	)
	in.audited = func() error {
		auditOnce.Do(func() { auditErr = <-auditDone })
		return auditErr
	}
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
	if aerr := in.waitAudited(); aerr != nil && !errors.Is(err, aerr) {
		err = errors.Join(err, aerr)
	}
	return err
}

// applyDecision writes the outputs of decision d for message in.
func (s *Service) applyDecision(ctx context.Context, in *inboundContext, c policy.Classification, d policy.Decision, prior *policy.Prior, inputs decisionInputs) error {
	msgID, m := in.ref.MsgID, in.msg
	switch d.Action {
	case policy.ActionHold:
		// A hold record marks the message done (a redelivery finds it): it
		// is written once the decision is on the audit trail.
		if err := in.waitAudited(); err != nil {
			return err
		}
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
		if err := in.waitAudited(); err != nil { // the index marks the message done
			return err
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
		if err := in.waitAudited(); err != nil { // the index marks the message done
			return err
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
	// The hold is stored: the view lists it before anyone is told of it (a
	// notification counts the holds waiting for its clinician), and learns
	// of it here rather than from the bucket's watcher, which then skips
	// decoding the record.
	s.view.Observe(h)
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
