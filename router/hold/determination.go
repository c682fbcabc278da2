package hold

import (
	"errors"
	"strings"
	"time"
)

// Determination is a clinician's individual decision to hold the result of
// one order (Preventing Harm, 45 CFR 171.201). Its scope is one order, named
// by filler order number and issuer, and, when known, one patient: a result of
// another issuer or another patient is never held by it.
type Determination struct {
	// ID identifies the determination (for listing and withdrawal).
	// Determinations stored before IDs existed have none until rewritten.
	ID string `json:"id"`
	// Order is the filler order number (OBR-3/ORC-3 EI.1) as given by the
	// clinician.
	Order string `json:"order"`
	// Issuer is the order's issuer: the filler number's namespace (EI.2) or,
	// without one, the sending facility (MSH-4), upper-cased. Empty only on
	// determinations stored before issuers were recorded (LegacyOrderKey).
	Issuer string `json:"issuer,omitempty"`
	// OrderKey is OrderKey(Issuer, Order): the determinations bucket key.
	OrderKey string `json:"order_key"`
	// PatientKey is the keyed hash of the patient the determination was
	// placed for (never the identifier); empty means the patient of the
	// order's result, whoever it is (no result had arrived and the clinician
	// named none).
	PatientKey string `json:"patient_key,omitempty"`
	// PatientFrom says where PatientKey came from: PatientFromRequest,
	// PatientFromResult or "" (none).
	PatientFrom string `json:"patient_from,omitempty"`
	// Scope says in a sentence what the determination holds.
	Scope  string `json:"scope,omitempty"`
	Reason string `json:"reason"`
	// HarmType is the type of harm the determination prevents (HarmTypes).
	HarmType string    `json:"harm_type,omitempty"`
	By       string    `json:"by"`
	Role     string    `json:"role,omitempty"`
	At       time.Time `json:"at"`
	// Review is when the determination must be reviewed: it lapses then,
	// and a hold resting on it is released or decided again.
	Review time.Time `json:"review,omitzero"`
	// State is DeterminationActive (or "" on records stored before states
	// existed), DeterminationWithdrawn or DeterminationReleased.
	State DeterminationState `json:"state,omitempty"`
	// Ended records who ended the determination, when and why.
	Ended *DeterminationEnd `json:"ended,omitempty"`
}

// DeterminationState is the state of a determination.
type DeterminationState string

// Determination states.
const (
	// DeterminationActive: the determination holds the results it covers.
	DeterminationActive DeterminationState = "active"
	// DeterminationWithdrawn: a clinician or on-call withdrew it; it holds
	// nothing any more.
	DeterminationWithdrawn DeterminationState = "withdrawn"
	// DeterminationReleased: the placing clinician (or one covering them, or
	// on-call) released the held result: its "until clinician release" ended.
	DeterminationReleased DeterminationState = "released"
)

// Where a determination's patient came from.
const (
	PatientFromRequest = "request"
	PatientFromResult  = "result"
)

// DeterminationEnd is who ended a determination, when and why.
type DeterminationEnd struct {
	By     string    `json:"by"`
	Role   string    `json:"role"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Active reports whether the determination still holds results.
func (d *Determination) Active() bool {
	return d.State == "" || d.State == DeterminationActive
}

// Covers reports whether the active determination holds a result of
// patientKey (its order is matched by the bucket key).
func (d *Determination) Covers(patientKey string) bool {
	return d.Active() && (d.PatientKey == "" || d.PatientKey == patientKey)
}

// CanonicalIssuer returns an order issuer in its stored form: trimmed and
// upper-cased, so that "pathsys" typed by a clinician names the order
// PATHSYS sent.
func CanonicalIssuer(issuer string) string {
	return strings.ToUpper(strings.TrimSpace(issuer))
}

// DeterminationID returns the ID of a determination on orderKey placed by by
// at at: opaque, and stable for the same inputs.
func DeterminationID(secret []byte, orderKey, by string, at time.Time) string {
	return "d" + keyed(secret, "determination", orderKey+"\x00"+by+"\x00"+at.UTC().Format(time.RFC3339Nano))
}

// Types of harm under the Preventing Harm exception, 45 CFR 171.201(d).
const (
	// HarmLifeOrSafety: access is reasonably likely to endanger the life or
	// physical safety of the patient or another person (171.201(d)(3), the
	// standard when the patient themselves receives the result).
	HarmLifeOrSafety = "life-or-physical-safety"
	// HarmSubstantialOther: the result references another person and access
	// is reasonably likely to cause that person substantial harm
	// (171.201(d)(2)).
	HarmSubstantialOther = "substantial-harm-to-other"
)

// HarmTypes lists the accepted harm types.
var HarmTypes = []string{HarmLifeOrSafety, HarmSubstantialOther}

// Sentinel errors of determinations.
var (
	// ErrDeterminationNotFound means no determination has the given ID.
	ErrDeterminationNotFound = errors.New("determination not found")
	// ErrDeterminationEnded means the determination was already withdrawn or
	// released: there is nothing left to end.
	ErrDeterminationEnded = errors.New("determination already ended")
)
