// Package httpapi is resultgate's HTTP API for clinicians, on-call clinicians,
// compliance officers and integration systems: the hold worklist, releases and
// overrides, clinician determinations, patient Consents (FHIR R4) and the audit
// trail. Every request is authenticated (package auth) and authorised by role;
// every read of a hold's content and every denied request is audited.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resultgate/resultgate/router/feed"

	"github.com/resultgate/resultgate/router/pipeline"

	"github.com/resultgate/resultgate/router/holdview"

	"github.com/resultgate/resultgate/router/audit"

	"github.com/resultgate/resultgate/router/store"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// MaxBodyBytes bounds request bodies. A FHIR Consent is a few KB; 1 MiB leaves
// room for verbose ones without letting a client exhaust memory.
const MaxBodyBytes = 1 << 20

// Service is what the API needs from the routing pipeline.
type Service interface {
	ListHolds(ctx context.Context, f holdview.Filter) ([]*hold.Hold, error)
	GetHold(ctx context.Context, id string) (*hold.Hold, error)
	Acknowledge(ctx context.Context, id string, req pipeline.AckRequest) (*hold.Hold, error)
	Override(ctx context.Context, id string, req pipeline.OverrideRequest) (*hold.Hold, error)
	PlaceDetermination(ctx context.Context, req pipeline.PlaceRequest) (pipeline.PlaceResult, error)
	ListDeterminations(ctx context.Context, f pipeline.DeterminationFilter) ([]hold.Determination, error)
	WithdrawDetermination(ctx context.Context, req pipeline.WithdrawRequest) (pipeline.WithdrawResult, error)
	PutConsent(ctx context.Context, req pipeline.ConsentPut) (pipeline.ConsentResult, error)
	GetConsent(ctx context.Context, patient string) (store.ConsentRecord, error)
	ConsentVersion(ctx context.Context, key string, rev uint64) (store.ConsentRecord, error)
	Audit(ctx context.Context, q audit.Query) ([]audit.Event, error)
	Releases(ctx context.Context, q feed.ReleasesQuery) ([]feed.FeedRecord, error)
	RecordAccess(ctx context.Context, e pipeline.AccessEvent) error
	InboundMessage(ctx context.Context, h *hold.Hold) ([]byte, error)
	Triage(ctx context.Context, limit int) ([]dead.Record, error)
	// ReleaseCheck and OverrideCheck are the rules Acknowledge and Override
	// enforce, asked beforehand (what the page offers).
	ReleaseCheck(ctx context.Context, h *hold.Hold, by string) error
	OverrideCheck(by, role string) error
	// Location is the zone people read times in (policy.time_zone).
	Location() *time.Location
	DeadDiscard(ctx context.Context, req dead.DiscardRequest) (dead.Record, error)
}

// Authenticator checks a request's credentials.
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// API serves the HTTP API.
type API struct {
	svc    Service
	auth   Authenticator
	log    zerolog.Logger
	tokens TokenAdmin
	config any
	// origins are the allowed Origin header values of a state change.
	origins map[string]bool
}

// WithOrigins sets the origins a state change may come from
// (config http.public_origins, or http.addr's own): a browser's Origin
// header must be one of them. The request's own Host header is not trusted
// for this (DNS rebinding makes it the attacker's choice).
func (a *API) WithOrigins(origins []string) *API {
	a.origins = make(map[string]bool, len(origins))
	for _, o := range origins {
		a.origins[strings.TrimSuffix(strings.ToLower(o), "/")] = true
	}
	return a
}

// New returns the API over svc.
func New(svc Service, a Authenticator, log zerolog.Logger) *API {
	return &API{svc: svc, auth: a, log: log.With().Str("component", "httpapi").Logger()}
}

// Register mounts the API's routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	all := []auth.Role{auth.RoleClinician, auth.RoleOnCall, auth.RoleCompliance}
	mux.HandleFunc("GET /api/auth/config", a.authConfig) // unauthenticated: public sign-in settings
	mux.Handle("GET /api/me", a.with(nil, a.me))
	mux.Handle("GET /api/holds", a.with(all, a.listHolds))
	mux.Handle("GET /api/holds/{id}", a.with(all, a.getHold))
	mux.Handle("POST /api/holds/{id}/release", a.with([]auth.Role{auth.RoleClinician}, a.release))
	mux.Handle("POST /api/holds/{id}/override", a.with([]auth.Role{auth.RoleOnCall}, a.override))
	mux.Handle("POST /api/orders/{filler}/hold", a.with([]auth.Role{auth.RoleClinician, auth.RoleOnCall}, a.placeHold))
	mux.Handle("GET /api/triage", a.with(triageRoles, a.listTriage))
	mux.Handle("POST /api/triage/{seq}/discard", a.with(triageRoles, a.discardTriage))
	mux.Handle("GET /api/determinations", a.with([]auth.Role{auth.RoleClinician, auth.RoleOnCall}, a.listDeterminations))
	mux.Handle("POST /api/determinations/{id}/withdraw", a.with([]auth.Role{auth.RoleClinician, auth.RoleOnCall}, a.withdrawDetermination))
	mux.Handle("GET /api/audit", a.with([]auth.Role{auth.RoleCompliance, auth.RoleAdmin}, a.audit))
	mux.Handle("GET /api/audit.csv", a.with([]auth.Role{auth.RoleCompliance, auth.RoleAdmin}, a.auditCSV))
	mux.Handle("GET /api/report", a.with([]auth.Role{auth.RoleCompliance, auth.RoleAdmin}, a.report))
	mux.Handle("GET /api/releases", a.with([]auth.Role{auth.RoleCompliance, auth.RoleAdmin}, a.releases))
	mux.Handle("POST /fhir/Consent", a.with([]auth.Role{auth.RoleAdmin, auth.RoleClinician}, a.putConsent))
	mux.Handle("GET /fhir/Consent", a.with([]auth.Role{auth.RoleAdmin, auth.RoleClinician, auth.RoleOnCall, auth.RoleCompliance}, a.getConsent))
	mux.Handle("GET /fhir/Consent/{key}", a.with([]auth.Role{auth.RoleAdmin, auth.RoleClinician, auth.RoleOnCall, auth.RoleCompliance}, a.readConsent))
	mux.Handle("GET /fhir/Consent/{key}/_history/{vid}", a.with([]auth.Role{auth.RoleAdmin, auth.RoleClinician, auth.RoleOnCall, auth.RoleCompliance}, a.readConsent))
	admin := []auth.Role{auth.RoleAdmin}
	mux.Handle("GET /api/tokens", a.with(admin, a.listTokens))
	mux.Handle("POST /api/tokens", a.with(admin, a.createToken))
	mux.Handle("DELETE /api/tokens/{name}", a.with(admin, a.revokeToken))
	mux.Handle("GET /api/config", a.with(admin, a.getConfig))
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Status int    `json:"-"`
	Code   string `json:"error"`
	Reason string `json:"reason"`
	// Message says the refusal in words for the person who asked (no IDs,
	// times in their zone); Reason keeps the technical text.
	Message string `json:"message,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Reason }

func newErr(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// fromService maps the pipeline's sentinel errors to HTTP answers.
func fromService(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, hold.ErrHoldNotFound), errors.Is(err, store.ErrConsentNotFound), errors.Is(err, dead.ErrNotFound), errors.Is(err, hold.ErrDeterminationNotFound):
		return newErr(http.StatusNotFound, "not_found", "%s", err)
	case errors.Is(err, hold.ErrAlreadyReleased):
		return newErr(http.StatusConflict, "already_released", "%s", err)
	case errors.Is(err, hold.ErrHoldClosed), errors.Is(err, pipeline.ErrBasisActive), errors.Is(err, hold.ErrConflict), errors.Is(err, hold.ErrDeterminationEnded):
		return newErr(http.StatusConflict, "conflict", "%s", err)
	case errors.Is(err, hold.ErrReasonRequired):
		return newErr(http.StatusUnprocessableEntity, "reason_required", "%s", err)
	case errors.Is(err, hold.ErrForbidden):
		return newErr(http.StatusForbidden, "forbidden", "%s", err)
	case errors.Is(err, hold.ErrBadRequest):
		return newErr(http.StatusBadRequest, "bad_request", "%s", err)
	default:
		return newErr(http.StatusInternalServerError, "internal", "the request could not be completed; see the server log")
	}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// with authenticates, checks the role (nil allows every role), enforces the
// CSRF rule for state changes and turns errors into JSON answers.
func (a *API) with(roles []auth.Role, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fail := writeErr
		if strings.HasPrefix(r.URL.Path, "/fhir/") {
			fail = writeOutcome // a FHIR client gets FHIR, errors included
		}
		p, err := a.auth.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="resultgate"`)
			fail(w, newErr(http.StatusUnauthorized, "unauthorized", "%s", err))
			return
		}
		action := r.Method + " " + r.Pattern
		if roles != nil && !hasRole(roles, p.Role) {
			a.deny(r.Context(), p, action, r.PathValue("id"), "role "+string(p.Role)+" may not "+action)
			fail(w, newErr(http.StatusForbidden, "forbidden", "role %s may not %s", p.Role, action))
			return
		}
		if r.Method != http.MethodGet {
			if err := a.checkStateChange(r); err != nil {
				a.deny(r.Context(), p, action, r.PathValue("id"), err.Reason)
				fail(w, err)
				return
			}
		}
		if err := h(w, r, p); err != nil {
			ae := fromService(err)
			if ae.Status == http.StatusForbidden {
				a.deny(r.Context(), p, action, r.PathValue("id"), "not permitted on this hold")
			}
			if ae.Status >= 500 {
				a.log.Error().Err(err).Str("route", r.Pattern).Msg("API request failed")
			}
			fail(w, ae)
		}
	})
}

// checkStateChange rejects cross-site state changes: the request must say it
// is JSON (a cross-site form cannot send that without a CORS preflight, which
// this API never grants; a missing Content-Type is refused too) and, when the
// browser names an Origin, it must be one of the configured origins.
func (a *API) checkStateChange(r *http.Request) *apiError {
	ct := r.Header.Get("Content-Type")
	if ct == "" && (r.Method != http.MethodDelete || r.ContentLength > 0) {
		// A POST or PUT must say it is JSON; a DELETE carries no body.
		return newErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
	}
	if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/fhir+json") {
		return newErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json, not %s", ct)
	}
	if o := r.Header.Get("Origin"); o != "" {
		if a.origins == nil {
			// Without configured origins (an embedding without WithOrigins),
			// only the request's own host: the previous rule.
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				return newErr(http.StatusForbidden, "cross_origin", "cross-origin state change refused")
			}
		} else if !a.origins[strings.TrimSuffix(strings.ToLower(o), "/")] {
			return newErr(http.StatusForbidden, "cross_origin", "cross-origin state change refused: %s is not in http.public_origins", hl7.TruncateValue(o, 100, 0))
		}
	}
	return nil
}

func hasRole(roles []auth.Role, r auth.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// access records in the audit trail that p did action (on holdID, if any):
// the HIPAA access log of reads and of administrative actions.
func (a *API) access(ctx context.Context, p auth.Principal, action, holdID, what string) error {
	return a.svc.RecordAccess(ctx, pipeline.AccessEvent{Kind: bus.AuditAccess, Action: action, HoldID: holdID, Actor: p.Name, Role: string(p.Role), Reason: what})
}

// deny logs (without PHI) and audits a refused request.
func (a *API) deny(ctx context.Context, p auth.Principal, action, holdID, why string) {
	a.log.Warn().Str("actor", p.Name).Str("role", string(p.Role)).Str("action", action).Str("hold", holdID).Msg("request denied")
	if err := a.svc.RecordAccess(ctx, pipeline.AccessEvent{Kind: bus.AuditDenied, Action: action, HoldID: holdID, Actor: p.Name, Role: string(p.Role), Reason: why}); err != nil {
		a.log.Error().Err(err).Msg("auditing a denied request")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, e *apiError) { writeJSON(w, e.Status, e) }

// decodeBody reads a bounded JSON body strictly into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newErr(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", MaxBodyBytes)
		}
		if errors.Is(err, io.EOF) {
			return newErr(http.StatusBadRequest, "bad_request", "empty body; send a JSON object")
		}
		return newErr(http.StatusBadRequest, "bad_request", "malformed JSON: %s", err)
	}
	return nil
}

// meBody is GET /api/me: the signed-in principal and the zone in which the
// page shows times (policy.time_zone).
type meBody struct {
	auth.Principal
	TimeZone string `json:"time_zone"`
}

func (a *API) me(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	writeJSON(w, http.StatusOK, meBody{Principal: p, TimeZone: a.svc.Location().String()})
	return nil
}

// holdSummary is one row of the worklist: no result content.
type holdSummary struct {
	ID         string         `json:"id"`
	State      hold.HoldState `json:"state"`
	ControlID  string         `json:"control_id,omitempty"`
	ProviderID string         `json:"provider_id,omitempty"`
	Tags       []string       `json:"tags"`
	Bases      []string       `json:"bases"`
	Deadline   time.Time      `json:"deadline"`
	Remaining  string         `json:"remaining"`
	// BasisText says each basis in plain words (hold.BasesText), Bases
	// keeps the codes.
	BasisText []string `json:"basis_text"`
	// DeadlineText is the deadline in TimeZone (the site's zone); Left is
	// the time left in words ("2 d 3 h", "due").
	DeadlineText string    `json:"deadline_text"`
	Left         string    `json:"left"`
	TimeZone     string    `json:"time_zone"`
	CreatedAt    time.Time `json:"created_at"`
	// Patient and Test are read from the held message for the worklist row.
	Patient    *patientDoc `json:"patient,omitempty"`
	Test       string      `json:"test,omitempty"`
	Notify     string      `json:"notify,omitempty"`
	Supersedes string      `json:"supersedes,omitempty"`
	// PublishError says why a released result could not be put on the feed.
	PublishError string `json:"publish_error,omitempty"`
}

func summarise(h *hold.Hold, now time.Time, loc *time.Location) holdSummary {
	s := holdSummary{ID: h.ID, State: h.State, ControlID: h.Inbound.ControlID, ProviderID: h.ProviderID,
		Deadline: h.Deadline, CreatedAt: h.CreatedAt, Notify: string(h.Notify), Supersedes: h.Supersedes, PublishError: h.PublishError,
		Tags: []string{}, Bases: []string{}, BasisText: hold.BasesText(h.Bases, loc),
		DeadlineText: hold.When(h.Deadline, "", loc), Left: hold.Left(h.Deadline, now), TimeZone: loc.String()}
	for _, t := range h.Tags {
		s.Tags = append(s.Tags, t.Tag)
	}
	for _, b := range h.Bases {
		s.Bases = append(s.Bases, b.Kind)
	}
	if d := h.Deadline.Sub(now); d > 0 {
		s.Remaining = d.Round(time.Minute).String()
	} else {
		s.Remaining = "0s"
	}
	return s
}

func (a *API) listHolds(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q := r.URL.Query()
	f := holdview.Filter{Provider: q.Get("provider"), State: hold.HoldState(q.Get("status")), Tag: q.Get("tag")}
	if f.State == "" {
		f.State = hold.StateHeld
	}
	if p.Role == auth.RoleClinician {
		// A clinician's worklist is the holds they may release.
		if f.Provider != "" && f.Provider != p.ProviderID {
			return newErr(http.StatusForbidden, "forbidden", "a clinician lists only their own holds")
		}
		f.Provider = p.ProviderID
	}
	var before time.Time
	if s := q.Get("deadline_before"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return newErr(http.StatusBadRequest, "bad_request", "deadline_before: want RFC 3339, got %q", s)
		}
		before = t
	}
	limit, offset := 100, 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return newErr(http.StatusBadRequest, "bad_request", "limit: want 1 to 1000, got %q", s)
		}
		limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return newErr(http.StatusBadRequest, "bad_request", "offset: want a number >= 0, got %q", s)
		}
		offset = n
	}
	basis := q.Get("basis")
	holds, err := a.svc.ListHolds(r.Context(), f)
	if err != nil {
		return err
	}
	now := time.Now()
	var page []*hold.Hold
	matched := 0
	for _, h := range holds {
		if !before.IsZero() && !h.Deadline.Before(before) {
			continue
		}
		if basis != "" && !hasBasis(h, basis) {
			continue
		}
		matched++
		if matched <= offset || len(page) >= limit {
			continue
		}
		page = append(page, h)
	}
	out, err := a.rows(r.Context(), p, page, now)
	if err != nil {
		return err
	}
	resp := map[string]any{"holds": out, "total": matched, "offset": offset, "limit": limit}
	if offset+len(out) < matched {
		resp["next_offset"] = offset + len(out)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func hasBasis(h *hold.Hold, kind string) bool {
	for _, b := range h.Bases {
		if b.Kind == kind {
			return true
		}
	}
	return false
}

// mayRead reports whether p may see hold h's content.
func mayRead(p auth.Principal, h *hold.Hold) bool {
	switch p.Role {
	case auth.RoleOnCall, auth.RoleCompliance:
		return true
	case auth.RoleClinician:
		return p.ProviderID != "" && p.ProviderID == h.ProviderID
	}
	return false
}

// holdDetail is a hold with its evidence, bases, transitions and the result.
type holdDetail struct {
	*hold.Hold
	Remaining string     `json:"remaining"`
	Result    *resultDoc `json:"result,omitempty"`
	// BasisText, DeadlineText, Left and TimeZone are as in the worklist row.
	BasisText    []string `json:"basis_text"`
	DeadlineText string   `json:"deadline_text"`
	Left         string   `json:"left"`
	TimeZone     string   `json:"time_zone"`
	// ReleasedText is the release's time in TimeZone, once released.
	ReleasedText string `json:"released_text,omitempty"`
	// Actions says what the signed-in user may do with the hold now.
	Actions actionsDoc `json:"actions"`
}

func (a *API) getHold(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	id := r.PathValue("id")
	h, err := a.svc.GetHold(r.Context(), id)
	if err != nil {
		return err
	}
	if !mayRead(p, h) {
		return fmt.Errorf("hold %s: %w", id, hold.ErrForbidden)
	}
	raw, err := a.svc.InboundMessage(r.Context(), h)
	if err != nil {
		return err
	}
	// HIPAA access log: every read of result content.
	if err := a.access(r.Context(), p, "hold.read", h.ID, ""); err != nil {
		return fmt.Errorf("auditing the read: %w", err)
	}
	loc := a.svc.Location()
	sum := summarise(h, time.Now(), loc)
	d := holdDetail{Hold: h, Remaining: sum.Remaining, BasisText: sum.BasisText, DeadlineText: sum.DeadlineText, Left: sum.Left, TimeZone: sum.TimeZone}
	if h.Release != nil {
		d.ReleasedText = hold.When(h.Release.At, "", loc)
	}
	if d.Actions, err = a.actions(r.Context(), p, h); err != nil {
		return err
	}
	if m, err := hl7.Parse(raw); err == nil {
		d.Result = resultView(m)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

type releaseBody struct {
	Reason        string `json:"reason"`
	NoteToPatient string `json:"note_to_patient"`
}

func (a *API) release(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var b releaseBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if p.ProviderID == "" {
		return fmt.Errorf("this clinician has no provider ID: %w", hold.ErrForbidden)
	}
	h, err := a.svc.Acknowledge(r.Context(), r.PathValue("id"), pipeline.AckRequest{By: p.ProviderID, Reason: b.Reason, Note: b.NoteToPatient})
	if err != nil {
		return a.worded(r.Context(), r.PathValue("id"), err)
	}
	// The transition names the provider ID; this names the signed-in person
	// (token name or OIDC name claim). The release has happened, so a failure
	// here is logged rather than reported as a failed release.
	if err := a.access(r.Context(), p, "hold.release", h.ID, ""); err != nil {
		a.log.Error().Err(err).Str("hold", h.ID).Msg("auditing who released a hold")
	}
	writeJSON(w, http.StatusOK, summarise(h, time.Now(), a.svc.Location()))
	return nil
}

func (a *API) override(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var b releaseBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if strings.TrimSpace(b.Reason) == "" {
		return newErr(http.StatusUnprocessableEntity, "reason_required", "an on-call override needs a reason")
	}
	h, err := a.svc.Override(r.Context(), r.PathValue("id"), pipeline.OverrideRequest{By: p.Name, Role: hold.RoleOnCall, Reason: b.Reason, Note: b.NoteToPatient})
	if err != nil {
		return a.worded(r.Context(), r.PathValue("id"), err)
	}
	writeJSON(w, http.StatusOK, summarise(h, time.Now(), a.svc.Location()))
	return nil
}

type placeBody struct {
	// Issuer is the order's issuer: the filler number's namespace (OBR-3.2 or
	// ORC-3.2) or, without one, the sending facility (MSH-4). Required.
	Issuer string `json:"issuer"`
	// Patient is the patient identifier (PID-3) the determination is for
	// (optional; without it, the patient of the order's result).
	Patient  string `json:"patient"`
	Reason   string `json:"reason"`
	HarmType string `json:"harm_type"`
	// Review is the review date (RFC 3339, or a date meaning its start in
	// UTC); empty means the policy's default review period.
	Review string `json:"review"`
}

// clinicianID is who p acts as in determinations: their provider ID, or
// their name when they have none (on-call).
func clinicianID(p auth.Principal) string {
	if p.ProviderID != "" {
		return p.ProviderID
	}
	return p.Name
}

func (a *API) placeHold(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var b placeBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if strings.TrimSpace(b.Reason) == "" {
		return newErr(http.StatusUnprocessableEntity, "reason_required", "a clinician determination needs a reason")
	}
	if strings.TrimSpace(b.Issuer) == "" {
		return newErr(http.StatusBadRequest, "bad_request", "issuer: name the order's issuer (the filler number's namespace, OBR-3.2, or the sending facility, MSH-4): a filler number is unique only within its issuer")
	}
	var review time.Time
	if b.Review != "" {
		t, err := time.Parse(time.RFC3339, b.Review)
		if err != nil {
			if t, err = time.Parse("2006-01-02", b.Review); err != nil {
				return newErr(http.StatusBadRequest, "bad_request", "review: want an RFC 3339 time (2026-12-21T08:00:00Z) or a date (2026-12-21, UTC), got %q", b.Review)
			}
		}
		review = t
	}
	res, err := a.svc.PlaceDetermination(r.Context(), pipeline.PlaceRequest{
		Order: r.PathValue("filler"), Issuer: b.Issuer, Patient: b.Patient, Reason: b.Reason, HarmType: b.HarmType,
		By: clinicianID(p), Role: string(p.Role), Review: review,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

// releases lists what the patient feed carries (GET /api/releases?since=&path=
// &limit=): hold ID, control ID, patient key, path, actor, time, how the
// patient is told; never the result itself. The read is audited.
func (a *API) releases(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q := feed.ReleasesQuery{Path: hold.ReleasePath(r.URL.Query().Get("path"))}
	if s := r.URL.Query().Get("since"); s != "" {
		t, _, err := ParseWhen(s, time.Now())
		if err != nil {
			return newErr(http.StatusBadRequest, "bad_request", "since: %s", err)
		}
		q.Since = t
	}
	if q.Path != "" && !slices.Contains(hold.ReleasePaths, q.Path) {
		return newErr(http.StatusBadRequest, "bad_request", "path %q: not a release path", q.Path)
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return newErr(http.StatusBadRequest, "bad_request", "limit %q: want a positive whole number", s)
		}
		q.Limit = n
	}
	recs, err := a.svc.Releases(r.Context(), q)
	if err != nil {
		return err
	}
	if err := a.access(r.Context(), p, "releases.read", "", fmt.Sprintf("%d feed records", len(recs))); err != nil {
		return err
	}
	if recs == nil {
		recs = []feed.FeedRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"releases": recs})
	return nil
}

// listDeterminations lists clinician determinations: on-call sees every one,
// a clinician those they placed or may end as a covering clinician.
func (a *API) listDeterminations(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q := r.URL.Query()
	f := pipeline.DeterminationFilter{By: q.Get("by"), State: hold.DeterminationState(q.Get("state")), Order: q.Get("order"), Issuer: q.Get("issuer")}
	switch f.State {
	case "", hold.DeterminationActive, hold.DeterminationWithdrawn, hold.DeterminationReleased:
	default:
		return newErr(http.StatusBadRequest, "bad_request", "state: want active, withdrawn or released, got %q", f.State)
	}
	if p.Role == auth.RoleClinician {
		f.Visible = clinicianID(p)
	}
	ds, err := a.svc.ListDeterminations(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"determinations": ds, "total": len(ds)})
	return nil
}

type withdrawBody struct {
	Reason string `json:"reason"`
}

// withdrawDetermination withdraws a determination (audited) and answers with
// it and the holds re-evaluated.
func (a *API) withdrawDetermination(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var b withdrawBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if strings.TrimSpace(b.Reason) == "" {
		return newErr(http.StatusUnprocessableEntity, "reason_required", "withdrawing a determination needs a reason")
	}
	role := hold.RoleClinician
	if p.Role == auth.RoleOnCall {
		role = hold.RoleOnCall
	}
	res, err := a.svc.WithdrawDetermination(r.Context(), pipeline.WithdrawRequest{ID: r.PathValue("id"), By: clinicianID(p), Role: role, Reason: b.Reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
