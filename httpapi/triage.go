package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/resultgate/resultgate/router/dead"

	"github.com/resultgate/resultgate/auth"
)

// triageRoles may see and close the triage list: on-call, who is notified of
// each record (notify.oncall), and administrators.
var triageRoles = []auth.Role{auth.RoleOnCall, auth.RoleAdmin}

// listTriage answers GET /api/triage: the unattributed results (DEAD, reason
// unattributed) no operator has discarded, oldest first. Records carry
// sequences, the reason and times, never message content.
func (a *API) listTriage(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	recs, err := a.svc.Triage(r.Context(), 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recs)
	return nil
}

type discardBody struct {
	Reason string `json:"reason"`
}

// discardTriage answers POST /api/triage/{seq}/discard: the signed-in user
// closes a triage record without replaying it, with a reason (audited as
// kind discard with their name and role).
func (a *API) discardTriage(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return newErr(http.StatusBadRequest, "bad_request", "seq: want a DEAD stream sequence, got %q", r.PathValue("seq"))
	}
	var b discardBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if strings.TrimSpace(b.Reason) == "" {
		return newErr(http.StatusUnprocessableEntity, "reason_required", "a discard needs a reason (e.g. corrected and resent by the sender)")
	}
	rec, err := a.svc.DeadDiscard(r.Context(), dead.DiscardRequest{Seq: seq, By: p.Name, Role: string(p.Role), Reason: b.Reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}
