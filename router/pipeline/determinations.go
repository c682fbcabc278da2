package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/holdview"
	"github.com/resultgate/resultgate/router/store"
)

// Determination actions as the audit trail records them (Event.Action of
// kind determination).
const (
	DeterminationPlaced    = "placed"
	DeterminationWithdrawn = "withdrawn"
	DeterminationReleased  = "released"
)

// PlaceRequest places a clinician determination (Preventing Harm) on an order.
type PlaceRequest struct {
	// Order is the filler order number (OBR-3/ORC-3, EI.1).
	Order string `json:"order"`
	// Issuer is the order's issuer: the filler number's namespace (EI.2) or,
	// when the sender gives none, its sending facility (MSH-4). Required: a
	// filler number is unique only within its issuer.
	Issuer string `json:"issuer"`
	// Patient is the patient identifier (PID-3 CX.1) the determination is for
	// (optional). Only its keyed hash is stored. Without it the determination
	// is for the patient of the order's result.
	Patient string `json:"patient,omitempty"`
	Reason  string `json:"reason"`
	// HarmType is one of HarmTypes; empty is recorded as unspecified.
	HarmType string `json:"harm_type,omitempty"`
	By       string `json:"by"`
	Role     string `json:"role,omitempty"`
	// Review is when the determination is to be reviewed; zero means the
	// policy's clinician_determination.default_review after now.
	Review time.Time `json:"review,omitzero"`
}

// PlaceResult is the determination placed and what it affected.
type PlaceResult struct {
	hold.Determination
	// HoldID is the open hold the basis was added to, if any.
	HoldID string `json:"hold_id,omitempty"`
	// HoldState is the state of the order's latest result after placing (""
	// when no result has arrived yet: the next one will be held). The
	// determination's own state is State.
	HoldState hold.HoldState `json:"hold_state,omitempty"`
}

// determinationReviewer is implemented by a Policy that knows the review
// period of a determination placed without a review date (PolicyAdapter).
type determinationReviewer interface {
	DeterminationReview() time.Duration
}

// PlaceDetermination records a clinician determination on an order (filler
// number and issuer) for one patient: a later result on it is held on a
// clinician-determination basis, and a result held now gets the basis added
// (re-evaluated). A result already released stays released (State says so).
// The patient is the one named in the request or, without one, the patient
// of the order's held result; a named patient that is not the held result's
// is refused (ErrBadRequest), so a mistyped identifier never holds nothing
// silently.
func (s *Service) PlaceDetermination(ctx context.Context, req PlaceRequest) (PlaceResult, error) {
	var res PlaceResult
	req.Order, req.Issuer = strings.TrimSpace(req.Order), hold.CanonicalIssuer(req.Issuer)
	if req.Order == "" || req.Issuer == "" || strings.TrimSpace(req.By) == "" {
		return res, fmt.Errorf("order, issuer and by: %w", hold.ErrBadRequest)
	}
	if strings.TrimSpace(req.Reason) == "" {
		return res, fmt.Errorf("determination: %w", hold.ErrReasonRequired)
	}
	if req.HarmType != "" && !slices.Contains(hold.HarmTypes, req.HarmType) {
		return res, fmt.Errorf("harm type %q: want one of %s: %w", req.HarmType, strings.Join(hold.HarmTypes, ", "), hold.ErrBadRequest)
	}
	now := s.clock.Now().UTC()
	if !req.Review.IsZero() && !req.Review.After(now) {
		return res, fmt.Errorf("review %s is not in the future: %w", req.Review.UTC().Format(time.RFC3339), hold.ErrBadRequest)
	}
	order := orderRef{filler: req.Order, issuer: req.Issuer,
		key: hold.OrderKey(s.cfg.Secret, req.Issuer, req.Order), legacy: hold.LegacyOrderKey(s.cfg.Secret, req.Order)}
	held, entryState, entryID, err := s.heldOf(ctx, order)
	if err != nil {
		return res, err
	}
	d := hold.Determination{Order: req.Order, Issuer: req.Issuer, OrderKey: order.key, Reason: req.Reason, HarmType: req.HarmType,
		By: req.By, Role: req.Role, At: now, Review: req.Review.UTC(), State: hold.DeterminationActive}
	if d.Role == "" {
		d.Role = hold.RoleClinician
	}
	if d.Review.IsZero() {
		rv := 7 * 24 * time.Hour
		if r, ok := s.policy.(determinationReviewer); ok {
			rv = r.DeterminationReview()
		}
		d.Review = now.Add(rv)
	}
	switch {
	case strings.TrimSpace(req.Patient) != "":
		d.PatientKey, d.PatientFrom = s.patientKey(req.Patient), hold.PatientFromRequest
		if held != nil && held.PatientKey != d.PatientKey {
			return res, fmt.Errorf("the held result of order %s of %s is for another patient than the one named: %w", req.Order, req.Issuer, hold.ErrBadRequest)
		}
	case held != nil && held.PatientKey != "":
		d.PatientKey, d.PatientFrom = held.PatientKey, hold.PatientFromResult
	}
	d.ID = hold.DeterminationID(s.cfg.Secret, d.OrderKey, d.By, now)
	d.Scope = scopeOf(d)
	if err := s.dets.Add(ctx, d); err != nil {
		return res, err
	}
	if err := s.auditDetermination(ctx, d, DeterminationPlaced, d.By, d.Role, d.Reason, now); err != nil {
		return res, err
	}
	res.Determination = d
	res.HoldState, res.HoldID = entryState, entryID
	if held == nil {
		return res, nil
	}
	h, err := s.reevaluate(ctx, held, nil, hold.PathReevaluated, req.By, d.Role, "clinician determination placed")
	if h != nil {
		res.HoldState = h.State
	}
	return res, err
}

// scopeOf says in a sentence what determination d holds.
func scopeOf(d hold.Determination) string {
	who := "the patient of the order's result"
	switch d.PatientFrom {
	case hold.PatientFromRequest:
		who = "the patient named by the clinician"
	case hold.PatientFromResult:
		who = "the patient of the held result"
	}
	return fmt.Sprintf("results of order %s issued by %s, for %s", d.Order, d.Issuer, who)
}

// heldOf returns the order's latest result as the order index has it: the
// open hold (nil when the latest version is not held), its state and hold ID.
// An order last seen before issuers were keyed is found under its legacy key
// only when its held message names this issuer.
func (s *Service) heldOf(ctx context.Context, o orderRef) (*hold.Hold, hold.HoldState, string, error) {
	e, ok, err := s.orders.Get(ctx, o.key)
	legacy := false
	if err == nil && !ok {
		e, ok, err = s.orders.Get(ctx, o.legacy)
		legacy = true
	}
	if err != nil || !ok {
		return nil, "", "", err
	}
	if e.State != hold.StateHeld {
		if legacy {
			// A legacy released or withdrawn version cannot be told apart
			// from another issuer's: say nothing about it.
			return nil, "", "", nil
		}
		return nil, e.State, e.HoldID, nil
	}
	h, err := s.holds.Get(ctx, e.HoldID)
	if errors.Is(err, hold.ErrHoldNotFound) {
		return nil, "", "", nil
	}
	if err != nil {
		return nil, "", "", err
	}
	if legacy {
		src, err := s.parseStored(ctx, h.Inbound)
		if err != nil {
			return nil, "", "", err
		}
		if s.orderOf(src.msg, src.report).key != o.key {
			return nil, "", "", nil
		}
	}
	if !h.Open() {
		return nil, h.State, h.ID, nil
	}
	return h, h.State, h.ID, nil
}

// auditDetermination records action on determination d.
func (s *Service) auditDetermination(ctx context.Context, d hold.Determination, action, by, role, reason string, at time.Time) error {
	return s.audit.Record(ctx, "det-"+d.ID+"-"+action, audit.Event{
		Kind: bus.AuditDetermination, At: at, OrderKey: d.OrderKey, PatientKey: d.PatientKey, Determination: d.ID,
		Action: action, Actor: by, Role: role, Reason: reason, HarmType: d.HarmType,
	})
}

// DeterminationFilter selects determinations to list.
type DeterminationFilter struct {
	// By lists those placed by this clinician.
	By string `json:"by,omitempty"`
	// Visible lists those this clinician may withdraw or release: placed by
	// them or by a clinician they cover (Holds.Covering).
	Visible string `json:"visible,omitempty"`
	// State is active, withdrawn or released; empty lists all.
	State hold.DeterminationState `json:"state,omitempty"`
	// Order and Issuer narrow the list to one order.
	Order  string `json:"order,omitempty"`
	Issuer string `json:"issuer,omitempty"`
}

// ListDeterminations returns the determinations matching f, oldest first.
// Determinations stored before IDs existed are listed with an empty ID.
func (s *Service) ListDeterminations(ctx context.Context, f DeterminationFilter) ([]hold.Determination, error) {
	all, err := s.dets.List(ctx)
	if err != nil {
		return nil, err
	}
	out := []hold.Determination{}
	for _, d := range all {
		state := d.State
		if state == "" {
			state = hold.DeterminationActive
		}
		switch {
		case f.By != "" && d.By != f.By,
			f.Visible != "" && !s.mayEndDetermination(f.Visible, d),
			f.State != "" && state != f.State,
			f.Order != "" && d.Order != strings.TrimSpace(f.Order),
			f.Issuer != "" && d.Issuer != hold.CanonicalIssuer(f.Issuer):
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// mayEndDetermination reports whether clinician by may withdraw or release
// determination d: they placed it, or they cover the clinician who did.
func (s *Service) mayEndDetermination(by string, d hold.Determination) bool {
	return by == d.By || slices.Contains(s.cfg.Holds.Covering[d.By], by) || slices.Contains(s.cfg.Holds.Covering["*"], by)
}

// WithdrawRequest withdraws a determination.
type WithdrawRequest struct {
	ID string `json:"id"`
	By string `json:"by"`
	// Role is clinician (the placing clinician or one covering them) or
	// oncall (any determination; one of Holds.OnCall when it lists any).
	Role string `json:"role,omitempty"`
	// Reason is required.
	Reason string `json:"reason"`
}

// WithdrawResult is the withdrawn determination and the open holds it
// re-evaluated.
type WithdrawResult struct {
	Determination hold.Determination `json:"determination"`
	Reevaluated   []string           `json:"reevaluated,omitempty"`
	Released      []string           `json:"released,omitempty"`
}

// WithdrawDetermination withdraws determination req.ID (audited) and
// re-evaluates the open holds of its order: a hold that rested only on it is
// released. Only the placing clinician, one covering them, or on-call may
// withdraw, with a reason.
func (s *Service) WithdrawDetermination(ctx context.Context, req WithdrawRequest) (WithdrawResult, error) {
	var res WithdrawResult
	if strings.TrimSpace(req.ID) == "" || strings.TrimSpace(req.By) == "" {
		return res, fmt.Errorf("id and by: %w", hold.ErrBadRequest)
	}
	if strings.TrimSpace(req.Reason) == "" {
		return res, fmt.Errorf("withdrawal: %w", hold.ErrReasonRequired)
	}
	role := req.Role
	if role == "" {
		role = hold.RoleClinician
	}
	d, err := s.dets.Find(ctx, req.ID)
	if err != nil {
		return res, err
	}
	switch role {
	case hold.RoleOnCall:
		if len(s.cfg.Holds.OnCall) > 0 && !slices.Contains(s.cfg.Holds.OnCall, req.By) {
			return res, fmt.Errorf("%s is not on call: %w", req.By, hold.ErrForbidden)
		}
	case hold.RoleClinician:
		if !s.mayEndDetermination(req.By, d) {
			return res, fmt.Errorf("%s did not place determination %s and does not cover the clinician who did: %w", req.By, d.ID, hold.ErrForbidden)
		}
	default:
		return res, fmt.Errorf("role %q may not withdraw a determination: %w", role, hold.ErrForbidden)
	}
	now := s.clock.Now().UTC()
	d, err = s.endDetermination(ctx, d, hold.DeterminationWithdrawn, req.By, role, req.Reason, now)
	if err != nil {
		return res, err
	}
	res.Determination = d
	var errs []error
	for _, h := range s.view.List(holdview.Filter{State: hold.StateHeld}) {
		if !h.HasBasis(string(policy.BasisClinicianDetermination)) || (h.OrderKey != d.OrderKey && d.Issuer != "") {
			continue
		}
		if d.PatientKey != "" && h.PatientKey != d.PatientKey {
			continue
		}
		after, err := s.reevaluate(ctx, h, nil, hold.PathReevaluated, req.By, role, "clinician determination withdrawn")
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

// endDetermination moves active determination d to state (withdrawn or
// released) and audits it; an ended one answers ErrDeterminationEnded.
func (s *Service) endDetermination(ctx context.Context, d hold.Determination, state hold.DeterminationState, by, role, reason string, at time.Time) (hold.Determination, error) {
	out, err := s.dets.Update(ctx, d.OrderKey, d.ID, func(c *hold.Determination) error {
		if !c.Active() {
			return fmt.Errorf("determination %s is %s: %w", c.ID, c.State, hold.ErrDeterminationEnded)
		}
		c.State = state
		c.Ended = &hold.DeterminationEnd{By: by, Role: role, Reason: reason, At: at}
		return nil
	})
	if err != nil {
		return out, err
	}
	action := DeterminationWithdrawn
	if state == hold.DeterminationReleased {
		action = DeterminationReleased
	}
	return out, s.auditDetermination(ctx, out, action, by, role, reason, at)
}

// holdDeterminations returns the active determinations that cover open hold
// h (its order, with the legacy key, and its patient).
func (s *Service) holdDeterminations(ctx context.Context, h *hold.Hold) ([]hold.Determination, error) {
	src, err := s.parseStored(ctx, h.Inbound)
	if err != nil {
		return nil, err
	}
	order := s.orderOf(src.msg, src.report)
	if order.key == "" && h.OrderKey != "" {
		order = orderRef{key: h.OrderKey}
	}
	var out []hold.Determination
	for i, k := range order.keys() {
		if i > 0 && k == order.key {
			continue
		}
		ds, err := s.dets.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.Covers(h.PatientKey) {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// releaseDeterminations marks the determinations ds released by by (their
// "until clinician release" ended with the hold's release).
func (s *Service) releaseDeterminations(ctx context.Context, ds []hold.Determination, h *hold.Hold, by, role string, at time.Time) error {
	var errs []error
	for _, d := range ds {
		if d.ID == "" {
			continue // stored before IDs: it lapses at its review date
		}
		_, err := s.endDetermination(ctx, d, hold.DeterminationReleased, by, role, "held result "+h.ID+" released", at)
		if err != nil && !errors.Is(err, hold.ErrDeterminationEnded) {
			errs = append(errs, fmt.Errorf("ending determination %s after releasing hold %s: %w", d.ID, h.ID, err))
		}
	}
	return errors.Join(errs...)
}

// bindDeterminations records the patient of hold h, the first result held on
// the order, on the order's active determinations that name no patient
// (placed before any result, naming nobody): from then on they hold only that
// patient's results. Legacy determinations are left as they were placed.
// The binding is not audited: it narrows the scope the placement recorded.
//
// Two patients' first results on one order (an anomaly: an order is one
// patient's) may race: the one that binds second is decided again (src is its
// parsed message), so it is not held on the other patient's determination.
func (s *Service) bindDeterminations(ctx context.Context, o orderRef, h *hold.Hold, src *parsedInbound) error {
	if o.key == "" || h.PatientKey == "" || !h.HasBasis(string(policy.BasisClinicianDetermination)) {
		return nil
	}
	ds, err := s.dets.Get(ctx, o.key)
	if err != nil {
		return err
	}
	lost := false
	for _, d := range ds {
		if !d.Active() || d.ID == "" {
			continue
		}
		if d.PatientKey != "" {
			// Bound already: to this patient, nothing to do; to another (its
			// first result bound it after this one was decided), this hold
			// rests on a determination that is not its patient's.
			lost = lost || d.PatientKey != h.PatientKey
			continue
		}
		out, err := s.dets.Update(ctx, d.OrderKey, d.ID, func(c *hold.Determination) error {
			if !c.Active() || c.PatientKey != "" {
				return store.ErrNoChange
			}
			c.PatientKey, c.PatientFrom = h.PatientKey, hold.PatientFromResult
			c.Scope = scopeOf(*c)
			return nil
		})
		if err != nil {
			return fmt.Errorf("recording the patient of determination %s: %w", d.ID, err)
		}
		lost = lost || out.PatientKey != h.PatientKey
	}
	if !lost {
		return nil
	}
	_, err = s.reevaluate(ctx, h, src, hold.PathReevaluated, "resultgate", hold.RoleSystem, "clinician determination is for another patient's result on this order")
	if errors.Is(err, hold.ErrAlreadyReleased) || errors.Is(err, hold.ErrHoldClosed) {
		return nil
	}
	return err
}
