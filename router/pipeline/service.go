package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/notify"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

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
	gate     *Gate
	audit    *audit.Trail
	notifier *notify.Notifier
	dead     *dead.Letters
	history  *store.History
	consents *store.Consents
	dets     *store.Determinations
	orders   *store.Orders
	metrics  *Metrics
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

// Acknowledge releases hold id on a clinician's acknowledgement. Only the
// ordering provider or a covering clinician (Holds.Covering) may acknowledge,
// and only when every basis of the hold is one a review ends.
func (s *Service) Acknowledge(ctx context.Context, id string, req AckRequest) (*hold.Hold, error) {
	if strings.TrimSpace(req.By) == "" {
		return nil, fmt.Errorf("by: %w", hold.ErrBadRequest)
	}
	now := s.clock.Now().UTC()
	reason := req.Reason
	if reason == "" {
		reason = "clinician acknowledged"
	}
	rel := hold.ReleaseInfo{Path: hold.PathAcknowledged, Actor: req.By, Role: hold.RoleClinician, Reason: reason, Note: req.Note, At: now}
	return s.gate.Release(ctx, id, rel, func(h *hold.Hold) error {
		if !s.mayAcknowledge(req.By, h) {
			return fmt.Errorf("%s is not the ordering provider or a covering clinician: %w", req.By, hold.ErrForbidden)
		}
		for _, b := range hold.PolicyBases(h.Bases) {
			if now.Before(h.Deadline) && !b.Ended(now, now) {
				until := b.NotBefore
				if until.IsZero() {
					until = b.Deadline
				}
				return fmt.Errorf("%s basis runs until %s: %w", b.Kind, until.UTC().Format(time.RFC3339), ErrBasisActive)
			}
		}
		return nil
	})
}

func (s *Service) mayAcknowledge(by string, h *hold.Hold) bool {
	if h.ProviderID != "" && by == h.ProviderID {
		return true
	}
	return slices.Contains(s.cfg.Holds.Covering[h.ProviderID], by) || slices.Contains(s.cfg.Holds.Covering["*"], by)
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
	if req.Role != hold.RoleOnCall || (len(s.cfg.Holds.OnCall) > 0 && !slices.Contains(s.cfg.Holds.OnCall, req.By)) {
		return nil, fmt.Errorf("override needs role %s: %w", hold.RoleOnCall, hold.ErrForbidden)
	}
	if strings.TrimSpace(req.Reason) == "" {
		return nil, fmt.Errorf("override: %w", hold.ErrReasonRequired)
	}
	rel := hold.ReleaseInfo{Path: hold.PathOverride, Actor: req.By, Role: hold.RoleOnCall, Reason: req.Reason, Note: req.Note, At: s.clock.Now().UTC()}
	return s.gate.Release(ctx, id, rel, nil)
}

// PlaceRequest places a clinician determination (Preventing Harm) on an order.
type PlaceRequest struct {
	// Order is the filler order number (OBR-3).
	Order  string `json:"order"`
	Reason string `json:"reason"`
	// HarmType is one of HarmTypes; empty is recorded as unspecified.
	HarmType string `json:"harm_type,omitempty"`
	By       string `json:"by"`
	Role     string `json:"role,omitempty"`
}

// PlaceResult says what a determination affected.
type PlaceResult struct {
	// HoldID is the open hold the basis was added to, if any.
	HoldID string `json:"hold_id,omitempty"`
	// State is the state of the order's latest result after placing ("" when
	// no result has arrived yet: the next one will be held).
	State hold.HoldState `json:"state,omitempty"`
}

// PlaceDetermination records a clinician determination on an order: a later
// result on it is held on a clinician-determination basis, and a result held
// now gets the basis added (re-evaluated). A result already released stays
// released (State says so).
func (s *Service) PlaceDetermination(ctx context.Context, req PlaceRequest) (PlaceResult, error) {
	var res PlaceResult
	if strings.TrimSpace(req.Order) == "" || strings.TrimSpace(req.By) == "" {
		return res, fmt.Errorf("order and by: %w", hold.ErrBadRequest)
	}
	if strings.TrimSpace(req.Reason) == "" {
		return res, fmt.Errorf("determination: %w", hold.ErrReasonRequired)
	}
	if req.HarmType != "" && !slices.Contains(hold.HarmTypes, req.HarmType) {
		return res, fmt.Errorf("harm type %q: want one of %s: %w", req.HarmType, strings.Join(hold.HarmTypes, ", "), hold.ErrBadRequest)
	}
	now := s.clock.Now().UTC()
	d := hold.Determination{Order: req.Order, OrderKey: hold.OrderKey(s.cfg.Secret, req.Order), Reason: req.Reason, HarmType: req.HarmType, By: req.By, Role: req.Role, At: now}
	if d.Role == "" {
		d.Role = hold.RoleClinician
	}
	if err := s.dets.Add(ctx, d); err != nil {
		return res, err
	}
	if err := s.audit.Record(ctx, "det-"+d.OrderKey+"-"+now.Format(time.RFC3339Nano), audit.Event{
		Kind: bus.AuditDetermination, At: now, OrderKey: d.OrderKey, Actor: req.By, Role: d.Role, Reason: req.Reason, HarmType: req.HarmType,
	}); err != nil {
		return res, err
	}
	e, ok, err := s.orders.Get(ctx, d.OrderKey)
	if err != nil || !ok {
		return res, err
	}
	res.State, res.HoldID = e.State, e.HoldID
	if e.State != hold.StateHeld {
		return res, nil
	}
	h, err := s.holds.Get(ctx, e.HoldID)
	if err != nil {
		return res, err
	}
	res.State = h.State
	if !h.Open() {
		return res, nil
	}
	h, err = s.reevaluate(ctx, h, nil, hold.PathReevaluated, req.By, d.Role, "clinician determination placed")
	if h != nil {
		res.State = h.State
	}
	return res, err
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
	return m
}
