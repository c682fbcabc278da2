package httpapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/pipeline"
)

// This file holds what the API says in words for people: the worklist's
// patient, test and reasons, and what the signed-in user may do with a hold.
// The codes stay in the JSON beside the words.

// rowResult is the patient and test of a worklist row, read from the held
// message (PHI: answered only to authenticated users, audited, never logged).
type rowResult struct {
	Patient patientDoc `json:"patient"`
	Test    string     `json:"test,omitempty"`
}

// readRow reads the patient and the test names of h's held message.
func (a *API) readRow(ctx context.Context, h *hold.Hold) (*rowResult, error) {
	raw, err := a.svc.InboundMessage(ctx, h)
	if err != nil {
		return nil, err
	}
	m, err := hl7.Parse(raw)
	if err != nil {
		var pe *hl7.ParseError
		if errors.As(err, &pe) {
			err = pe.Err // the class only: a parse error's detail may quote the message
		}
		return nil, fmt.Errorf("parsing the held message: %w", err)
	}
	r := &rowResult{}
	if pid := m.First("PID"); pid != nil {
		r.Patient = patientDoc{
			ID:   pid.Field(3).Component(1),
			Name: joinNonEmpty(pid.Field(5).Component(2), pid.Field(5).Component(1)),
			DOB:  pid.Field(7).Component(1), Sex: pid.Field(8).Value(),
		}
		r.Patient.Born = formatDOB(r.Patient.DOB)
	}
	var tests []string
	for _, s := range m.Segments() {
		if s.Name() != "OBR" {
			continue
		}
		name := s.Field(4).Component(2)
		if name == "" {
			name = s.Field(4).Component(1)
		}
		if name != "" && !strings.Contains(strings.Join(tests, "\x00"), name) {
			tests = append(tests, name)
		}
	}
	r.Test = strings.Join(tests, ", ")
	return r, nil
}

// formatDOB writes an HL7 date of birth (YYYY[MM[DD[...]]]) as people read
// it ("5 May 1965"), or returns it unchanged when it is not one.
func formatDOB(s string) string {
	for _, f := range []struct {
		n       int
		in, out string
	}{
		{8, "20060102", "2 Jan 2006"}, {6, "200601", "Jan 2006"}, {4, "2006", "2006"},
	} {
		if len(s) >= f.n {
			if t, err := time.Parse(f.in, s[:f.n]); err == nil {
				return t.Format(f.out)
			}
		}
	}
	return s
}

// actionsDoc tells the page what the signed-in user may do with a hold now,
// computed by the rules the release and override handlers enforce
// (pipeline.Service.ReleaseCheck and OverrideCheck), and, when they may not,
// why and from when, in words.
type actionsDoc struct {
	// Release: this clinician's acknowledgement would end the hold now.
	Release bool `json:"release"`
	// Override: this on-call clinician may override the hold.
	Override bool `json:"override"`
	// Why says why the user cannot release it now (empty when they can).
	Why string `json:"why,omitempty"`
	// ReleasableFrom is when the user can release it (RFC 3339), when a
	// clock holds it; ReleasableFromText says it in the zone of its rule.
	ReleasableFrom     time.Time `json:"releasable_from,omitzero"`
	ReleasableFromText string    `json:"releasable_from_text,omitempty"`
	// Confirm, with Override, names the statute or determination that an
	// override sets aside: the page asks for confirmation naming it.
	Confirm []string `json:"confirm,omitempty"`
}

// actions computes what p may do with h (a full record) now.
func (a *API) actions(ctx context.Context, p auth.Principal, h *hold.Hold) (actionsDoc, error) {
	loc := a.svc.Location()
	var d actionsDoc
	if !h.Open() {
		d.Why = closedWords(h)
		return d, nil
	}
	switch p.Role {
	case auth.RoleClinician:
		if p.ProviderID == "" {
			d.Why = "Your sign-in carries no provider ID, so resultgate cannot tell whose results you may release. Ask your administrator."
			return d, nil
		}
		err := a.svc.ReleaseCheck(ctx, h, p.ProviderID)
		if err == nil {
			d.Release = true
			return d, nil
		}
		var r *pipeline.Refusal
		if !errors.As(err, &r) && !errors.Is(err, hold.ErrAlreadyReleased) && !errors.Is(err, hold.ErrHoldClosed) {
			return d, err
		}
		d.Why, d.ReleasableFrom, d.ReleasableFromText = refusalWords(err, h, loc)
	case auth.RoleOnCall:
		if err := a.svc.OverrideCheck(p.Name, hold.RoleOnCall); err != nil {
			d.Why = "You are not on the on-call list (holds.oncall), so you cannot override holds."
			return d, nil
		}
		d.Override = true
		for _, b := range hold.PolicyBases(h.Bases) {
			if b.Kind == policy.BasisStateLaw || b.Kind == policy.BasisClinicianDetermination {
				t := hold.BasisText(b, loc)
				if !slices.Contains(d.Confirm, t) {
					d.Confirm = append(d.Confirm, t)
				}
			}
		}
	default:
		d.Why = "Your role (" + string(p.Role) + ") reads held results; only the ordering clinician or on-call can release them."
	}
	return d, nil
}

// closedWords says why a hold that is not open cannot be released.
func closedWords(h *hold.Hold) string {
	switch h.State {
	case hold.StateReleased:
		return "This result has already been released to the patient portal."
	case hold.StateSuperseded:
		return "A corrected version of this result replaced it; open the correction instead."
	case hold.StateWithdrawn:
		return "The sender withdrew this result; there is nothing to release."
	}
	return "This hold is closed."
}

// refusalWords turns the release rule's refusal into words for the
// clinician, with the time it can be released (when a clock holds it) in its
// rule's zone.
func refusalWords(err error, h *hold.Hold, loc *time.Location) (why string, from time.Time, fromText string) {
	switch {
	case errors.Is(err, hold.ErrAlreadyReleased), errors.Is(err, hold.ErrHoldClosed):
		return closedWords(h), time.Time{}, ""
	}
	var r *pipeline.Refusal
	if !errors.As(err, &r) {
		return "The release was refused.", time.Time{}, ""
	}
	switch {
	case r.Basis.Kind == "":
		who := "the ordering provider"
		if h.ProviderID != "" {
			who += " (" + h.ProviderID + ")"
		}
		return "Only " + who + ", a clinician covering them, or on-call can release this result.", time.Time{}, ""
	case r.Basis.Kind == policy.BasisClinicianDetermination:
		return "A clinician's determination holds it: only " + r.Placers + " (or a clinician covering them) can release it, or on-call can override.", time.Time{}, ""
	case errors.Is(err, hold.ErrForbidden):
		return hold.BasisText(r.Basis, loc) + ". Only the ordering provider or a clinician covering them can end it.", time.Time{}, ""
	}
	when := hold.When(r.Until, r.Basis.TimeZone, loc)
	return hold.BasisText(r.Basis, loc) + ". You can release it from " + when + "; before then only on-call can override.", r.Until, when
}

// refusalMessage is the words of a refused release or override for the
// error answer's message (the reason keeps the technical text).
func refusalMessage(err error, h *hold.Hold, loc *time.Location) string {
	switch {
	case errors.Is(err, pipeline.ErrBasisActive), errors.Is(err, hold.ErrAlreadyReleased), errors.Is(err, hold.ErrHoldClosed):
		why, _, _ := refusalWords(err, h, loc)
		return why
	case errors.Is(err, hold.ErrForbidden):
		if h != nil {
			why, _, _ := refusalWords(err, h, loc)
			return why
		}
		return "You may not do this with this result."
	case errors.Is(err, hold.ErrConflict):
		return "Someone else changed this result at the same moment. Reload it and try again."
	case errors.Is(err, hold.ErrHoldNotFound):
		return "This held result no longer exists."
	case errors.Is(err, hold.ErrReasonRequired):
		return "An override needs a reason."
	}
	return ""
}

// rows builds the worklist rows of page (slim records from the view, in
// deadline order): each row's bases in words need the full record and its
// patient and test the held message, so each row costs a bucket read and a
// stream read, bounded by the page's limit. A row whose message cannot be
// read keeps its codes and says so through an empty patient. Reading
// patients' names is audited like opening a hold (holds.list).
func (a *API) rows(ctx context.Context, p auth.Principal, page []*hold.Hold, now time.Time) ([]holdSummary, error) {
	loc := a.svc.Location()
	out := make([]holdSummary, 0, len(page))
	read := 0
	for _, h := range page {
		full := h
		if f, err := a.svc.GetHold(ctx, h.ID); err == nil {
			full = f
		} else if !errors.Is(err, hold.ErrHoldNotFound) {
			return nil, err
		}
		s := summarise(full, now, loc)
		if mayRead(p, full) {
			if row, err := a.readRow(ctx, full); err == nil {
				s.Patient, s.Test = &row.Patient, row.Test
				read++
			} else {
				a.log.Warn().Err(err).Str("hold", h.ID).Msg("worklist row without its message")
			}
		}
		out = append(out, s)
	}
	if read > 0 {
		if err := a.access(ctx, p, "holds.list", "", strconv.Itoa(read)+" worklist rows with patient and test"); err != nil {
			return nil, fmt.Errorf("auditing the worklist read: %w", err)
		}
	}
	return out, nil
}

// worded adds to a refused release or override of hold id the refusal in
// words (apiError.Message).
func (a *API) worded(ctx context.Context, id string, err error) error {
	ae := fromService(err)
	var h *hold.Hold
	if bus.ValidToken(id) {
		h, _ = a.svc.GetHold(ctx, id)
	}
	if h == nil {
		h = &hold.Hold{ID: id}
	}
	ae.Message = refusalMessage(err, h, a.svc.Location())
	return ae
}
