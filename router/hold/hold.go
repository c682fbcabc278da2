package hold

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/resultgate/resultgate/policy"
)

// Sentinel errors of the hold store and the release paths.
var (
	// ErrHoldNotFound means no hold record has the given ID.
	ErrHoldNotFound = errors.New("hold not found")
	// ErrAlreadyReleased means the hold was already released (by someone else,
	// or by its deadline): the result is in the portal feed once, not twice.
	ErrAlreadyReleased = errors.New("hold already released")
	// ErrHoldClosed means the hold is superseded or withdrawn: there is nothing
	// left to release.
	ErrHoldClosed = errors.New("hold is superseded or withdrawn")
	// ErrReasonRequired means an on-call override was requested without a reason.
	ErrReasonRequired = errors.New("reason required")
	// ErrForbidden means the actor may not perform the action on this hold (not
	// the ordering provider, not a covering clinician, not on call).
	ErrForbidden = errors.New("forbidden")
	// ErrBadRequest means a request is malformed or misses a required field.
	ErrBadRequest = errors.New("bad request")
	// ErrConflict means a compare-and-set kept failing because others kept
	// changing the same record; the caller may retry.
	ErrConflict = errors.New("hold record changed concurrently too often")
)

// HoldState is the state of a hold record.
type HoldState string

// Hold states. Held is the only open state; the others are final.
const (
	StateHeld       HoldState = "held"
	StateReleased   HoldState = "released"
	StateSuperseded HoldState = "superseded"
	StateWithdrawn  HoldState = "withdrawn"
)

// ReleasePath says how a result reached the portal feed.
type ReleasePath string

// Release paths.
const (
	// PathImmediate is a result released by the classify step without a hold.
	PathImmediate ReleasePath = "immediate"
	// PathAcknowledged is a clinician acknowledgement (ordering or covering).
	PathAcknowledged ReleasePath = "acknowledged"
	// PathOverride is an on-call override (reason required).
	PathOverride ReleasePath = "override"
	// PathDeadline is the hard deadline reached.
	PathDeadline ReleasePath = "deadline"
	// PathPatientRevoked is the patient revoking the request that held it.
	PathPatientRevoked ReleasePath = "patient-revoked"
	// PathCorrection is a correction from the sender released at once.
	PathCorrection ReleasePath = "correction"
	// PathReevaluated is a re-evaluation (new determination or Consent) that
	// left no basis.
	PathReevaluated ReleasePath = "reevaluated"
	// PathPatientDelayEnded is a patient's requested delay that ran its
	// course as asked (a request to hold for N hours, not until a review): the
	// end the patient chose, not a hard deadline cutting a review short.
	PathPatientDelayEnded ReleasePath = "patient-delay-ended"
	// PathRetraction is not a release but its undoing: the sender withdrew
	// (OBX-11 W or D) a result the patient can already see, and the feed
	// carries the withdrawal, linked to the release it takes back.
	PathRetraction ReleasePath = "retraction"
)

// ReleasePaths lists every release path, in the order above.
var ReleasePaths = []ReleasePath{
	PathImmediate, PathAcknowledged, PathOverride, PathDeadline,
	PathPatientRevoked, PathCorrection, PathReevaluated, PathPatientDelayEnded,
	PathRetraction,
}

// Roles of actors.
const (
	RoleClinician = "clinician"
	RoleOnCall    = "oncall"
	RoleSystem    = "system"
	RolePatient   = "patient"
)

// InboundRef points at the inbound message in HL7_IN instead of copying it, so
// hold records stay small; the gate fetches the bytes by sequence on release.
type InboundRef struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	MsgID     string `json:"msg_id"`
	Partition string `json:"partition"`
	ControlID string `json:"control_id,omitempty"`
}

// Basis is one lawful basis of a hold. Kind is a policy.BasisKind; Detail is
// the policy's full basis record as JSON (reference, clock, until).
type Basis struct {
	Kind   string          `json:"kind"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

// Transition is one state change of a hold, with who, when and why.
type Transition struct {
	From   HoldState   `json:"from"`
	To     HoldState   `json:"to"`
	Path   ReleasePath `json:"path,omitempty"`
	Actor  string      `json:"actor"`
	Role   string      `json:"role"`
	Reason string      `json:"reason,omitempty"`
	At     time.Time   `json:"at"`
}

// ReleaseInfo says who released a result, when, why and what to tell the
// patient. It travels with the portal feed message.
type ReleaseInfo struct {
	Path   ReleasePath   `json:"path"`
	Actor  string        `json:"actor"`
	Role   string        `json:"role"`
	Reason string        `json:"reason,omitempty"`
	Note   string        `json:"note,omitempty"`
	Notify policy.Notify `json:"notify,omitempty"`
	At     time.Time     `json:"at"`
}

// Hold is one hold record in the holds bucket, keyed by ID.
type Hold struct {
	ID      string     `json:"id"`
	State   HoldState  `json:"state"`
	Inbound InboundRef `json:"inbound"`
	// PatientKey is the keyed hash of the patient identifier (never the MRN).
	PatientKey string `json:"patient_key"`
	// ProviderKey is the keyed hash of the ordering provider (for subjects);
	// ProviderID is the ordering provider's ID number (ORC-12/OBR-16) used to
	// authorise acknowledgements.
	ProviderKey string `json:"provider_key,omitempty"`
	ProviderID  string `json:"provider_id,omitempty"`
	// OrderKey is the keyed hash of the order's issuer and filler number
	// (OrderKey); holds created before issuers were keyed carry the
	// LegacyOrderKey.
	OrderKey       string       `json:"order_key,omitempty"`
	Tags           []policy.Tag `json:"tags"`
	RulesetVersion string       `json:"ruleset_version"`
	Bases          []Basis      `json:"bases"`
	Deadline       time.Time    `json:"deadline"`
	RemindAt       time.Time    `json:"remind_at,omitzero"`
	EscalateAt     time.Time    `json:"escalate_at,omitzero"`
	Reminded       bool         `json:"reminded,omitempty"`
	Escalated      bool         `json:"escalated,omitempty"`
	// Notify and Note are the policy's patient-notification directive and
	// plain-language note; an acknowledging clinician may replace the note.
	Notify    policy.Notify `json:"notify,omitempty"`
	Note      string        `json:"note,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	// Release is set when State is released; Published turns true once the
	// portal feed holds both messages (the outbox flag the reconciler reads).
	Release   *ReleaseInfo `json:"release,omitempty"`
	Published bool         `json:"published"`
	// PublishError is set, without message content, when the released result
	// cannot be put on the feed at all (its FHIR mapping is refused): the
	// reconciler stops retrying it and the audit trail records why.
	PublishError string `json:"publish_error,omitempty"`
	// Supersedes and SupersededBy link corrections.
	Supersedes   string       `json:"supersedes,omitempty"`
	SupersededBy string       `json:"superseded_by,omitempty"`
	Transitions  []Transition `json:"transitions"`

	// Revision is the KV revision this record was read at (not stored).
	Revision uint64 `json:"-"`
}

// Open reports whether the hold still holds its result.
func (h *Hold) Open() bool { return h.State == StateHeld }

// HasBasis reports whether the hold rests on a basis of kind k.
func (h *Hold) HasBasis(k string) bool {
	for _, b := range h.Bases {
		if b.Kind == k {
			return true
		}
	}
	return false
}

// HasTag reports whether the hold's result carries tag.
func (h *Hold) HasTag(tag string) bool {
	for _, t := range h.Tags {
		if t.Tag == tag {
			return true
		}
	}
	return false
}

// TagNames returns the tag names of the hold.
func (h *Hold) TagNames() []string {
	out := make([]string, 0, len(h.Tags))
	for _, t := range h.Tags {
		out = append(out, t.Tag)
	}
	return out
}

// Clone returns a deep copy of h (through its JSON form, as stored), keeping
// its revision.
func (h *Hold) Clone() *Hold {
	b, _ := json.Marshal(h)
	var c Hold
	_ = json.Unmarshal(b, &c)
	c.Revision = h.Revision
	return &c
}

// Copy returns a deep copy of h that shares no memory with it: slices and
// strings are copied too, so the copy outlives memory h was built from (the
// classify step builds a new hold from a pooled classification and a message
// parsed in place). For a hold whose times are UTC without a monotonic
// reading, as the classify step builds them, it equals Clone's result at a
// fraction of the cost (no JSON encoding and decoding).
func (h *Hold) Copy() *Hold {
	c := *h
	cs := strings.Clone
	c.ID, c.State = cs(h.ID), HoldState(cs(string(h.State)))
	c.Inbound = InboundRef{Stream: cs(h.Inbound.Stream), Seq: h.Inbound.Seq, MsgID: cs(h.Inbound.MsgID),
		Partition: cs(h.Inbound.Partition), ControlID: cs(h.Inbound.ControlID)}
	c.PatientKey, c.ProviderKey, c.ProviderID, c.OrderKey = cs(h.PatientKey), cs(h.ProviderKey), cs(h.ProviderID), cs(h.OrderKey)
	if h.Tags != nil {
		c.Tags = make([]policy.Tag, len(h.Tags))
		for i, t := range h.Tags {
			c.Tags[i].Tag = cs(t.Tag)
			if t.Evidence != nil {
				c.Tags[i].Evidence = make([]policy.Evidence, len(t.Evidence))
				for j, e := range t.Evidence {
					e.Segment, e.Field, e.Rule, e.Match, e.Layer, e.Modifier = cs(e.Segment), cs(e.Field), cs(e.Rule), cs(e.Match), cs(e.Layer), cs(e.Modifier)
					c.Tags[i].Evidence[j] = e
				}
			}
		}
	}
	c.RulesetVersion = cs(h.RulesetVersion)
	if h.Bases != nil {
		c.Bases = make([]Basis, len(h.Bases))
		for i, b := range h.Bases {
			c.Bases[i] = Basis{Kind: cs(b.Kind)}
			if b.Detail != nil {
				c.Bases[i].Detail = append(json.RawMessage{}, b.Detail...)
			}
		}
	}
	c.Notify, c.Note = policy.Notify(cs(string(h.Notify))), cs(h.Note)
	if h.Release != nil {
		r := *h.Release
		r.Path, r.Actor, r.Role, r.Reason, r.Note, r.Notify = ReleasePath(cs(string(r.Path))), cs(r.Actor), cs(r.Role), cs(r.Reason), cs(r.Note), policy.Notify(cs(string(r.Notify)))
		c.Release = &r
	}
	c.PublishError, c.Supersedes, c.SupersededBy = cs(h.PublishError), cs(h.Supersedes), cs(h.SupersededBy)
	if h.Transitions != nil {
		c.Transitions = make([]Transition, len(h.Transitions))
		for i, t := range h.Transitions {
			t.From, t.To, t.Path = HoldState(cs(string(t.From))), HoldState(cs(string(t.To))), ReleasePath(cs(string(t.Path)))
			t.Actor, t.Role, t.Reason = cs(t.Actor), cs(t.Role), cs(t.Reason)
			c.Transitions[i] = t
		}
	}
	return &c
}

// keyed returns HMAC-SHA256(secret, domain NUL value) truncated to 96 bits in
// hex: an opaque, stable ID that reveals nothing about value.
func keyed(secret []byte, domain, value string) string {
	var sum [sha256.Size]byte
	return hex.EncodeToString(macSum(sum[:0], secret, domain, "\x00", value)[:12])
}

// HoldID returns the opaque hold ID of the inbound message with Nats-Msg-Id
// msgID. It is stable, so a re-run of the classify step finds the same record.
func HoldID(secret []byte, msgID string) string { return "h" + keyed(secret, "hold", msgID) }

// OrderKey returns the keyed hash of an order: its filler order number
// (OBR-3/ORC-3 EI.1) and its issuer (the number's namespace, EI.2, or without
// one the sending facility, MSH-4), since a filler number is unique only
// within its issuer. The issuer is compared in CanonicalIssuer form. An empty
// filler yields "".
func OrderKey(secret []byte, issuer, filler string) string {
	if filler == "" {
		return ""
	}
	return "o" + keyed(secret, "order-issuer", CanonicalIssuer(issuer)+"\x00"+filler)
}

// LegacyOrderKey is the order key of releases before 2026-12 (the filler
// number alone). Order-index entries, holds and determinations stored then
// are keyed by it; the pipeline reads it when the OrderKey has no entry
// (docs/DECISIONS.md, "Orders are keyed by issuer").
func LegacyOrderKey(secret []byte, filler string) string {
	if filler == "" {
		return ""
	}
	return "o" + keyed(secret, "order", filler)
}

// ProviderKey returns the keyed hash of an ordering provider ID, used in
// notification subjects.
func ProviderKey(secret []byte, provider string) string {
	if provider == "" {
		return "unknown"
	}
	return "c" + keyed(secret, "provider", provider)
}
