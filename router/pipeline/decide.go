package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/store"
)

// parsedInbound is an inbound message parsed once, with the policy's report
// of it: what the classify step holds while it decides, and what a
// re-evaluation reads back from HL7_IN when its caller does not hold it.
type parsedInbound struct {
	msg    *hl7.Message
	report *policy.Report
}

// parsed returns the message of the classify run as a parsedInbound.
func (in *inboundContext) parsed() *parsedInbound {
	return &parsedInbound{msg: in.msg, report: in.report}
}

// parseStored fetches inbound message ref from HL7_IN and parses it (a
// fetched copy, read in place).
func (s *Service) parseStored(ctx context.Context, ref hold.InboundRef) (*parsedInbound, error) {
	st, err := s.gate.InStream(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := st.GetMsg(ctx, ref.Seq)
	if err != nil {
		return nil, fmt.Errorf("fetching inbound seq %d: %w", ref.Seq, err)
	}
	m, err := hl7.ParseWithOptions(raw.Data, hl7.ParseOptions{NoCopy: true})
	if err != nil {
		return nil, fmt.Errorf("re-parsing inbound seq %d: %s", ref.Seq, dead.SafeDetail(err, "parse failed"))
	}
	r, err := s.policy.Report(m)
	if err != nil {
		return nil, fmt.Errorf("re-reading inbound seq %d: %s", ref.Seq, dead.SafeDetail(err, "report failed"))
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = receivedAt(raw.Header.Get(bus.HeaderReceivedAt), raw.Time)
	}
	return &parsedInbound{msg: m, report: r}, nil
}

// decisionInputs is what a decision reads besides the message: the patient's
// Consent (with its bucket revision, 0 for none) and the clinicians'
// determinations on the order (with the order keys read and the sum of their
// bucket revisions, which every placement, withdrawal and release changes).
type decisionInputs struct {
	pref       *policy.Preference
	consentRev uint64
	dets       []policy.Determination
	orderKeys  []string
	detsRev    uint64
}

// loadDecisionInputs reads the decision inputs of a message of patientKey on
// order, both at once (latency is what limits a partition). The classify
// step and re-evaluation assemble their inputs here and nowhere else.
func (s *Service) loadDecisionInputs(ctx context.Context, patientKey string, order orderRef, patientID string) (decisionInputs, error) {
	var (
		in      decisionInputs
		prefErr error
		done    = make(chan struct{})
	)
	go func() { defer close(done); in.pref, in.consentRev, prefErr = s.preferenceRev(ctx, patientKey) }()
	in.orderKeys = order.keys()
	dets, rev, detsErr := s.determinations(ctx, in.orderKeys, patientKey, patientID)
	<-done
	in.dets, in.detsRev = dets, rev
	return in, errors.Join(prefErr, detsErr)
}

// decide asks the policy for the decision on src with classification c.
func (s *Service) decide(src parsedInbound, c policy.Classification, in decisionInputs, prior *policy.Prior, now time.Time) policy.Decision {
	return s.policy.Decide(policy.Input{
		Report: src.report, Classification: c, Preference: in.pref, Determinations: in.dets, Prior: prior,
		Facility: src.msg.MSH().SendingFacility.NamespaceID, Now: now,
	})
}

// reevaluate decides hold h again with the current Consent and determinations
// (its tags as classified then): no basis left releases it by path; otherwise
// the bases and deadline are updated. The re-evaluation is audited. src is the
// held message as the caller has it parsed (the classify step); nil fetches
// and parses it from HL7_IN (the API, after a Consent or a determination).
func (s *Service) reevaluate(ctx context.Context, h *hold.Hold, src *parsedInbound, path hold.ReleasePath, actor, role, why string) (*hold.Hold, error) {
	// h may be the view's slim record: decide on the full one (tags with evidence).
	h, err := s.holds.Get(ctx, h.ID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	if src == nil {
		if src, err = s.parseStored(ctx, h.Inbound); err != nil {
			return nil, err
		}
	}
	order := s.orderOf(src.msg, src.report)
	if order.key == "" && h.OrderKey != "" {
		order = orderRef{key: h.OrderKey}
	}
	inputs, err := s.loadDecisionInputs(ctx, h.PatientKey, order, src.report.PatientID)
	if err != nil {
		return nil, err
	}
	var prior *policy.Prior
	if h.Supersedes != "" {
		prior = &policy.Prior{State: policy.PriorHeld, HoldID: h.Supersedes, Deadline: h.Deadline}
	}
	d := s.decide(*src, policy.Classification{Tags: h.Tags, RulesetVersion: h.RulesetVersion}, inputs, prior, now)
	if err := s.audit.Record(ctx, fmt.Sprintf("reeval-%s-%d", h.ID, h.Revision), audit.Event{
		Kind: bus.AuditReevaluation, At: now, HoldID: h.ID, PatientKey: h.PatientKey, OrderKey: h.OrderKey,
		Action: string(d.Action), Disposition: d.Disposition, Tags: h.Tags, RulesetVersion: d.RulesetVersion,
		Bases: hold.BasesFromPolicy(d.Bases), Deadline: d.Deadline, Actor: actor, Role: role, Reason: why,
	}); err != nil {
		return nil, err
	}
	switch d.Action {
	case policy.ActionRelease:
		return s.gate.Release(ctx, h.ID, hold.ReleaseInfo{Path: path, Actor: actor, Role: role, Reason: why, Notify: d.Notify, Note: d.Note, At: now}, nil)
	case policy.ActionHold:
		out, err := s.holds.Mutate(ctx, h.ID, func(c *hold.Hold) error {
			if !c.Open() {
				return store.ErrNoChange
			}
			c.Bases = hold.BasesFromPolicy(d.Bases)
			if !d.Deadline.IsZero() && c.Supersedes == "" {
				c.Deadline = d.Deadline.UTC()
			}
			c.Reminded, c.Escalated = false, false
			s.schedule(c, now)
			if d.Note != "" {
				c.Note = d.Note
			}
			c.Notify = d.Notify
			return nil
		})
		if err != nil {
			return out, err
		}
		s.view.Observe(out)
		return out, nil
	default:
		return h, nil
	}
}

// preference returns the patient's parsed Consent, or nil when none is on file.
func (s *Service) preference(ctx context.Context, patientKey string) (*policy.Preference, error) {
	p, _, err := s.preferenceRev(ctx, patientKey)
	return p, err
}

// preferenceRev is preference with the Consent's bucket revision (0: none).
func (s *Service) preferenceRev(ctx context.Context, patientKey string) (*policy.Preference, uint64, error) {
	rec, err := s.consents.Get(ctx, patientKey)
	if errors.Is(err, store.ErrConsentNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	p, err := s.policy.ParseConsent(rec.Consent)
	if err != nil {
		// It was validated when stored; a rule change may reject it now. Decide
		// without it (release rather than hold on an unreadable basis) and say so.
		s.log.Warn().Str("patient_key", patientKey).Str("error", dead.SafeDetail(err, "consent no longer readable")).Msg("stored consent ignored")
		return nil, rec.Revision, nil
	}
	return p, rec.Revision, nil
}

// inputsChanged reports whether the patient's Consent or the order's
// determinations changed since the decision read them (revisions
// read.consentRev and read.detsRev). A Consent put or a determination placed while the
// hold was being created may have missed it (the view did not show it yet);
// the classify step then re-evaluates the new hold itself.
func (s *Service) inputsChanged(ctx context.Context, h *hold.Hold, read decisionInputs) (bool, error) {
	rec, err := s.consents.Get(ctx, h.PatientKey)
	switch {
	case errors.Is(err, store.ErrConsentNotFound):
		if read.consentRev != 0 {
			return true, nil
		}
	case err != nil:
		return false, err
	case rec.Revision != read.consentRev:
		return true, nil
	}
	_, rev, err := s.determinations(ctx, read.orderKeys, h.PatientKey, "")
	if err != nil {
		return false, err
	}
	return rev != read.detsRev, nil
}

// determinations returns the active clinician determinations on the order
// keys (its own, then its legacy key) that cover patientKey, in the policy's
// form for the patient of the report, and the sum of the keys' bucket
// revisions. A determination of another issuer is under another key; one
// placed for another patient does not cover this one.
func (s *Service) determinations(ctx context.Context, orderKeys []string, patientKey, patientID string) ([]policy.Determination, uint64, error) {
	var (
		out []policy.Determination
		sum uint64
	)
	// The legacy key is read with the order's own, in one request.
	sets, revs, err := s.dets.GetRevs(ctx, orderKeys)
	if err != nil {
		return nil, 0, err
	}
	for i, k := range orderKeys {
		if i > 0 && k == orderKeys[0] {
			sets[i], revs[i] = nil, 0 // counted once
		}
	}
	for i, ds := range sets {
		sum += revs[i]
		for _, d := range ds {
			if !d.Covers(patientKey) {
				continue
			}
			role := d.Role
			if role == "" {
				role = hold.RoleClinician
			}
			out = append(out, policy.Determination{PatientID: patientID, OrderFiller: d.Order, By: d.By, Role: role, Reason: d.Reason, HarmType: d.HarmType, At: d.At, Until: d.Review})
		}
	}
	return out, sum, nil
}
