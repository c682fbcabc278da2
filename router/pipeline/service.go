package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/resultgate/resultgate/report"
	"github.com/resultgate/resultgate/router/compliance"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/notify"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// ErrBasisActive means a clinician acknowledgement cannot end the hold yet: a
// basis runs until a time no review can shorten (e.g. the patient asked for a
// fixed delay, or a statute's not-before clock). An on-call override can.
var ErrBasisActive = errors.New("a basis of the hold has not ended and review does not end it")

// Service is the pipeline's Go API: the hold queue, the release paths,
// Consents, clinician determinations, the dead-letter queue and the audit
// trail. The NATS request/reply API and the HTTP API are thin adapters over it.
type Service struct {
	cfg      Config
	log      zerolog.Logger
	clock    Clock
	policy   Policy
	js       jetstream.JetStream
	holds    *store.Holds
	view     *holdview.View
	gate     *feed.Gate
	audit    *audit.Trail
	notifier *notify.Notifier
	dead     *dead.Letters
	history  *store.History
	consents *store.Consents
	dets     *store.Determinations
	orders   *store.Orders
	metrics  *Metrics
	// attempts tracks the classify attempts of this instance (classify.go).
	attempts attempts
}

// ListHolds returns the holds matching f from this instance's view, earliest
// deadline first.
func (s *Service) ListHolds(_ context.Context, f holdview.Filter) ([]*hold.Hold, error) {
	return s.view.List(f), nil
}

// GetHold returns the current record of hold id (read from the bucket).
func (s *Service) GetHold(ctx context.Context, id string) (*hold.Hold, error) {
	if !bus.ValidToken(id) {
		return nil, fmt.Errorf("hold id: %w", hold.ErrHoldNotFound)
	}
	return s.holds.Get(ctx, id)
}

// AckRequest is a clinician's acknowledgement of a held result.
type AckRequest struct {
	// By is the clinician's ID: the ordering provider or a covering clinician.
	By string `json:"by"`
	// Reason is optional.
	Reason string `json:"reason,omitempty"`
	// Note replaces the policy's plain-language note to the patient (optional).
	Note string `json:"note,omitempty"`
}

// Acknowledge releases hold id on a clinician's acknowledgement. The
// ordering provider or a covering clinician (Holds.Covering) may acknowledge
// when every basis of the hold is one a review ends. A clinician-determination
// basis runs until clinician release: it ends when the clinician who placed
// every determination holding the result (or one covering them) releases it,
// and those determinations are then recorded as released. A clinician who
// placed the determination may release the hold even when not its ordering
// provider, if nothing else holds it.
func (s *Service) Acknowledge(ctx context.Context, id string, req AckRequest) (*hold.Hold, error) {
	if strings.TrimSpace(req.By) == "" {
		return nil, fmt.Errorf("by: %w", hold.ErrBadRequest)
	}
	now := s.clock.Now().UTC()
	reason := req.Reason
	if reason == "" {
		reason = "clinician acknowledged"
	}
	cur, err := s.GetHold(ctx, id)
	if err != nil {
		return nil, err
	}
	dets, mine, err := s.ackDeterminations(ctx, cur, req.By)
	if err != nil {
		return nil, err
	}
	rel := hold.ReleaseInfo{Path: hold.PathAcknowledged, Actor: req.By, Role: hold.RoleClinician, Reason: reason, Note: req.Note, At: now}
	h, err := s.gate.Release(ctx, id, rel, func(h *hold.Hold) error {
		if r := s.ackRule(req.By, h, dets, mine, now); r != nil {
			return r
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	return h, s.releaseDeterminations(ctx, mine, h, req.By, hold.RoleClinician, now)
}

// ackDeterminations returns the determinations holding cur (when it is open
// and rests on one) and those of them that clinician by may end.
func (s *Service) ackDeterminations(ctx context.Context, cur *hold.Hold, by string) (dets, mine []hold.Determination, err error) {
	if !cur.Open() || !cur.HasBasis(string(policy.BasisClinicianDetermination)) {
		return nil, nil, nil
	}
	if dets, err = s.holdDeterminations(ctx, cur); err != nil {
		return nil, nil, err
	}
	for _, d := range dets {
		if s.mayEndDetermination(by, d) {
			mine = append(mine, d)
		}
	}
	return dets, mine, nil
}

// Refusal says why a clinician's acknowledgement cannot end a hold now: the
// basis that still holds it, the earliest time it may end (zero when only
// other people can end it) and the clinicians who placed a determination
// holding it. It wraps ErrBasisActive or hold.ErrForbidden; its text is the
// one the release answer has always carried.
type Refusal struct {
	// Basis is the basis that still holds the result (zero Kind when the
	// refusal is about who is asking).
	Basis policy.Basis
	// Until is when Basis lets a review end it (its not-before) or ends by
	// itself (its deadline); zero for a determination.
	Until time.Time
	// Placers lists the clinicians who placed the determinations holding it.
	Placers string
	msg     string
	err     error
}

func (r *Refusal) Error() string { return r.msg + ": " + r.err.Error() }

// Unwrap returns ErrBasisActive or hold.ErrForbidden.
func (r *Refusal) Unwrap() error { return r.err }

// ackRule is the rule a clinician's acknowledgement of h at now must pass:
// nil when by may end the hold, else why not. dets are the determinations
// holding h and mine those by may end (ackDeterminations). Acknowledge
// enforces it inside the release's compare-and-set; ReleaseCheck asks it
// beforehand, so the page offers Release exactly when the release would
// succeed.
func (s *Service) ackRule(by string, h *hold.Hold, dets, mine []hold.Determination, now time.Time) *Refusal {
	ordering := s.mayAcknowledge(by, h)
	if !ordering && len(mine) == 0 {
		return &Refusal{msg: fmt.Sprintf("%s is not the ordering provider, a covering clinician or the clinician who placed its determination", by), err: hold.ErrForbidden}
	}
	for _, b := range hold.PolicyBases(h.Bases) {
		if !now.Before(h.Deadline) {
			break
		}
		if b.Kind == policy.BasisClinicianDetermination {
			if len(mine) < len(dets) {
				return &Refusal{Basis: b, Placers: placers(dets), err: ErrBasisActive,
					msg: fmt.Sprintf("%s basis runs until released by the clinician who placed it (%s) or one covering them, or on-call overrides", b.Kind, placers(dets))}
			}
			continue
		}
		if b.Ended(now, now) {
			continue
		}
		if !ordering {
			return &Refusal{Basis: b, err: hold.ErrForbidden, msg: fmt.Sprintf("%s basis needs the review of the ordering provider or a covering clinician", b.Kind)}
		}
		until := b.NotBefore
		if until.IsZero() {
			until = b.Deadline
		}
		return &Refusal{Basis: b, Until: until, err: ErrBasisActive, msg: fmt.Sprintf("%s basis runs until %s", b.Kind, until.UTC().Format(time.RFC3339))}
	}
	return nil
}

// ReleaseCheck reports whether clinician by may end hold h by acknowledging
// it now: nil when Acknowledge would release it, else the *Refusal it would
// answer (the same rule, ackRule). A hold that is not open is refused with
// hold.ErrAlreadyReleased or hold.ErrHoldClosed.
func (s *Service) ReleaseCheck(ctx context.Context, h *hold.Hold, by string) error {
	switch h.State {
	case hold.StateHeld:
	case hold.StateReleased:
		return hold.ErrAlreadyReleased
	default:
		return hold.ErrHoldClosed
	}
	dets, mine, err := s.ackDeterminations(ctx, h, by)
	if err != nil {
		return err
	}
	if r := s.ackRule(by, h, dets, mine, s.clock.Now().UTC()); r != nil {
		return r
	}
	return nil
}

// OverrideCheck reports whether by, acting in role, may override a hold:
// the rule Override enforces (role oncall and, when Holds.OnCall lists
// clinicians, one of them).
func (s *Service) OverrideCheck(by, role string) error {
	if role != hold.RoleOnCall || (len(s.cfg.Holds.OnCall) > 0 && !slices.Contains(s.cfg.Holds.OnCall, by)) {
		return fmt.Errorf("override needs role %s: %w", hold.RoleOnCall, hold.ErrForbidden)
	}
	return nil
}

func (s *Service) mayAcknowledge(by string, h *hold.Hold) bool {
	if h.ProviderID != "" && by == h.ProviderID {
		return true
	}
	return slices.Contains(s.cfg.Holds.Covering[h.ProviderID], by) || slices.Contains(s.cfg.Holds.Covering["*"], by)
}

// placers lists the clinicians who placed ds, once each.
func placers(ds []hold.Determination) string {
	var by []string
	for _, d := range ds {
		if !slices.Contains(by, d.By) {
			by = append(by, d.By)
		}
	}
	return strings.Join(by, ", ")
}

// OverrideRequest is an on-call clinician's override of a hold.
type OverrideRequest struct {
	By string `json:"by"`
	// Role must be "oncall".
	Role string `json:"role"`
	// Reason is required.
	Reason string `json:"reason"`
	Note   string `json:"note,omitempty"`
}

// Override releases hold id on an on-call clinician's override: role oncall
// (and, when Holds.OnCall lists clinicians, one of them) and a reason are
// required. It ends the hold whatever its bases.
func (s *Service) Override(ctx context.Context, id string, req OverrideRequest) (*hold.Hold, error) {
	if strings.TrimSpace(req.By) == "" {
		return nil, fmt.Errorf("by: %w", hold.ErrBadRequest)
	}
	if err := s.OverrideCheck(req.By, req.Role); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return nil, fmt.Errorf("override: %w", hold.ErrReasonRequired)
	}
	now := s.clock.Now().UTC()
	rel := hold.ReleaseInfo{Path: hold.PathOverride, Actor: req.By, Role: hold.RoleOnCall, Reason: req.Reason, Note: req.Note, At: now}
	var dets []hold.Determination
	if cur, err := s.GetHold(ctx, id); err == nil && cur.Open() && cur.HasBasis(string(policy.BasisClinicianDetermination)) {
		if dets, err = s.holdDeterminations(ctx, cur); err != nil {
			return nil, err
		}
	}
	h, err := s.gate.Release(ctx, id, rel, nil)
	if err != nil {
		return h, err
	}
	// On-call's release ends the determinations that held the result too.
	return h, s.releaseDeterminations(ctx, dets, h, req.By, hold.RoleOnCall, now)
}

// ConsentPut stores a patient's Consent.
type ConsentPut struct {
	// Consent is the FHIR R4 Consent (JSON).
	Consent json.RawMessage `json:"consent"`
	// Patient overrides the patient identifier named in the Consent.
	Patient string `json:"patient,omitempty"`
	// By is who posted it (the patient, a proxy, staff).
	By string `json:"by"`
	// Role is By's role as the audit trail records it (the HTTP API passes
	// the caller's: clinician, admin); empty means the patient.
	Role string `json:"role,omitempty"`
}

// ConsentResult is the stored Consent and the holds it re-evaluated.
type ConsentResult struct {
	Record      store.ConsentRecord `json:"record"`
	Reevaluated []string            `json:"reevaluated,omitempty"`
	Released    []string            `json:"released,omitempty"`
}

// PutConsent validates and stores a Consent (history kept), audits it, and
// re-evaluates the patient's open holds: a revoked Consent (inactive) or a
// permit releases holds that rested only on the patient's request.
func (s *Service) PutConsent(ctx context.Context, req ConsentPut) (ConsentResult, error) {
	var res ConsentResult
	if len(req.Consent) == 0 || strings.TrimSpace(req.By) == "" {
		return res, fmt.Errorf("consent and by: %w", hold.ErrBadRequest)
	}
	pref, err := s.policy.ParseConsent(req.Consent)
	if err != nil {
		return res, fmt.Errorf("consent: %w: %w", hold.ErrBadRequest, err)
	}
	patient := req.Patient
	if patient == "" {
		patient = pref.PatientIdentifier
	}
	key := s.patientKey(patient)
	if key == "" {
		return res, fmt.Errorf("consent names no patient identifier: %w", hold.ErrBadRequest)
	}
	role := strings.TrimSpace(req.Role)
	if role == "" {
		role = hold.RolePatient
	}
	now := s.clock.Now().UTC()
	rec, err := s.consents.Put(ctx, store.ConsentRecord{PatientKey: key, Consent: req.Consent, Actor: req.By, Role: role, At: now})
	if err != nil {
		return res, err
	}
	res.Record = rec
	if err := s.audit.Record(ctx, fmt.Sprintf("consent-%s-%d", key, rec.Revision), audit.Event{
		Kind: bus.AuditConsent, At: now, PatientKey: key, Actor: req.By, Role: role,
		Reason: "consent " + pref.Status,
	}); err != nil {
		return res, err
	}
	var errs []error
	for _, h := range s.view.List(holdview.Filter{PatientKey: key, State: hold.StateHeld}) {
		after, err := s.reevaluate(ctx, h, nil, hold.PathPatientRevoked, req.By, role, "patient changed their preference")
		if err != nil && !errors.Is(err, hold.ErrAlreadyReleased) && !errors.Is(err, hold.ErrHoldClosed) {
			errs = append(errs, err)
			continue
		}
		res.Reevaluated = append(res.Reevaluated, h.ID)
		if after != nil && after.State == hold.StateReleased {
			res.Released = append(res.Released, h.ID)
		}
	}
	return res, errors.Join(errs...)
}

// GetConsent returns the patient's current Consent.
func (s *Service) GetConsent(ctx context.Context, patient string) (store.ConsentRecord, error) {
	return s.consents.Get(ctx, s.patientKey(patient))
}

// ConsentVersion returns the Consent of patient key with per-patient revision
// rev (0: the current one), or ErrConsentNotFound. The FHIR API reads a
// Consent by its logical id, the patient key (a keyed hash, no PHI).
func (s *Service) ConsentVersion(ctx context.Context, key string, rev uint64) (store.ConsentRecord, error) {
	if rev == 0 {
		return s.consents.Get(ctx, key)
	}
	recs, err := s.consents.History(ctx, key)
	if err != nil {
		return store.ConsentRecord{}, err
	}
	for _, r := range recs {
		if r.Revision == rev {
			return r, nil
		}
	}
	return store.ConsentRecord{}, fmt.Errorf("revision %d (not kept, or never written): %w", rev, store.ErrConsentNotFound)
}

// DeadList lists dead-letter records, oldest first.
func (s *Service) DeadList(ctx context.Context, limit int) ([]dead.Record, error) {
	return s.dead.List(ctx, limit)
}

// DeadReplay re-queues dead-letter record seq to its inbound subject.
func (s *Service) DeadReplay(ctx context.Context, seq uint64, by string) (dead.Record, error) {
	// The replay is audited before it is made: an append that fails leaves
	// the record where it is, and the operator's retry writes the event once
	// (stable ID) and replays once (stable Msg-Id).
	rec, err := s.dead.Get(ctx, seq)
	if err != nil {
		return rec, err
	}
	if err := s.audit.Record(ctx, fmt.Sprintf("replay-%d", seq), audit.Event{
		Kind: bus.AuditReplay, At: s.clock.Now().UTC(), MsgID: rec.MsgID, InboundSeq: rec.InboundSeq,
		Actor: by, Role: hold.RoleSystem, Reason: "dead-letter replay",
	}); err != nil {
		return rec, fmt.Errorf("auditing the replay of dead seq %d (nothing replayed): %w", seq, err)
	}
	return s.dead.Replay(ctx, seq)
}

// Audit returns audit events matching q, oldest first.
func (s *Service) Audit(ctx context.Context, q audit.Query) ([]audit.Event, error) {
	return s.audit.Query(ctx, q)
}

// Metrics returns a snapshot of the pipeline's counters.
func (s *Service) Metrics() MetricsSnapshot {
	m := s.metrics.Snapshot()
	m.AuditRetries = s.audit.Retries()
	m.AuditConflicts = s.audit.Conflicts()
	return m
}

// Releases lists what the patient feed carries (feed.Releases): results
// released at once, holds released, retractions.
func (s *Service) Releases(ctx context.Context, q feed.ReleasesQuery) ([]feed.FeedRecord, error) {
	return feed.Releases(ctx, s.js, q)
}

// Report builds the compliance report for holds created in [since, until)
// (router/compliance).
func (s *Service) Report(ctx context.Context, since, until time.Time) (*report.Report, error) {
	b := compliance.Builder{JS: s.js, Holds: s.holds, Policy: s.policy, Now: s.clock.Now, Log: s.log}
	return b.Report(ctx, since, until)
}

// desk is the triage desk over the pipeline's dead letters.
func (s *Service) desk() *dead.Desk {
	return &dead.Desk{Letters: s.dead, Audit: s.audit, Now: s.clock.Now}
}

// DeadFind lists dead-letter records by reason, with operators' discards
// (dead.Desk.Find).
func (s *Service) DeadFind(ctx context.Context, q dead.Query) ([]dead.Record, error) {
	return s.desk().Find(ctx, q)
}

// Triage lists the open results that name no patient (dead.Desk.Triage).
func (s *Service) Triage(ctx context.Context, limit int) ([]dead.Record, error) {
	return s.desk().Triage(ctx, limit)
}

// DeadDiscard discards a dead-letter record, audited (dead.Desk.Discard).
func (s *Service) DeadDiscard(ctx context.Context, req dead.DiscardRequest) (dead.Record, error) {
	return s.desk().Discard(ctx, req)
}

// Location is the site's zone (policy.time_zone), in which people read the
// times of holds that no statute's zone governs; UTC when none is configured.
func (s *Service) Location() *time.Location {
	if l, ok := s.policy.(interface{ Location() *time.Location }); ok && l.Location() != nil {
		return l.Location()
	}
	return time.UTC
}
