// Package policy decides, for one parsed result message, what the result is (tags
// with evidence) and what happens to it (release now, or hold on recorded lawful
// bases until a condition or a hard deadline), and how the patient is notified.
//
// It is pure: no I/O, no NATS, no wall clock. The router supplies the parsed
// message (as a Report), the patient's preference on file, clinician
// determinations, the patient's malignancy history and the time.
//
// Legal background (facts, not legal advice): 45 CFR 171.201 (preventing harm),
// 45 CFR 171.202(e) (privacy: respecting an individual's request not to share),
// the ONC information-blocking FAQs on delays, and state statutes such as
// Kentucky KRS 333.152, Montana MCA 50-16-806 and Texas Occupations Code 159.0062.
package policy

import "time"

// Location names where in the HL7 message a value was found.
type Location struct {
	// Segment is the segment ID, e.g. "OBX".
	Segment string `json:"segment"`
	// Occurrence is the 1-based occurrence of that segment ID in the message.
	Occurrence int `json:"occurrence"`
	// Field is the field path, e.g. "OBX-5" or "OBR-4.1".
	Field string `json:"field"`
}

// Coded is one coded value (CE/CWE/CNE and similar) with its location.
type Coded struct {
	Code   string   `json:"code,omitempty"`
	Text   string   `json:"text,omitempty"`
	System string   `json:"system,omitempty"` // HL7 table 0396 name: LN, I10, SCT, ICDO3, L, 99xxx...
	Alt    []Coded  `json:"alt,omitempty"`    // alternate (and v2.7+ second alternate) triplets
	Loc    Location `json:"loc"`
}

// Text is one free-text value, unescaped (formatting escapes such as \.br\ turned
// into line breaks), with its location.
type Text struct {
	Value string   `json:"value"`
	Loc   Location `json:"loc"`
}

// Observation is one OBX with its notes.
type Observation struct {
	SetID           string    `json:"set_id,omitempty"`
	ValueType       string    `json:"value_type,omitempty"` // OBX-2
	ID              Coded     `json:"id"`                   // OBX-3
	Codes           []Coded   `json:"codes,omitempty"`      // OBX-5 when coded
	Texts           []Text    `json:"texts,omitempty"`      // OBX-5 when text (TX/FT/ST/...)
	Status          string    `json:"status,omitempty"`     // OBX-11
	ObservedAt      time.Time `json:"observed_at,omitempty"`
	ReleaseCategory string    `json:"release_category,omitempty"` // OBX-26, HL7 table 0909
	// AbnormalFlags are the OBX-8 interpretation codes (HL7 table 0078: N, H, L,
	// A, AA, HH, LL, ...). Empty means none were sent. Sender flags SIDC and SWNL
	// (table 0909) depend on them.
	AbnormalFlags []string `json:"abnormal_flags,omitempty"`
	Notes         []Text   `json:"notes,omitempty"` // NTE after this OBX
	Loc           Location `json:"loc"`
}

// Order is one OBR (with its ORC when present), its observations and notes.
type Order struct {
	PlacerID          string        `json:"placer_id,omitempty"` // OBR-2 or ORC-2
	FillerID          string        `json:"filler_id,omitempty"` // OBR-3 or ORC-3
	Service           Coded         `json:"service"`             // OBR-4
	ServiceSection    string        `json:"service_section,omitempty"`
	ServiceSectionLoc Location      `json:"service_section_loc"`         // OBR-24
	ResultStatus      string        `json:"result_status,omitempty"`     // OBR-25
	ObservedAt        time.Time     `json:"observed_at,omitempty"`       // OBR-7
	FinalizedAt       time.Time     `json:"finalized_at,omitempty"`      // OBR-22; zero when absent
	OrderingProvider  string        `json:"ordering_provider,omitempty"` // ORC-12 or OBR-16 ID number
	Observations      []Observation `json:"observations,omitempty"`
	Notes             []Text        `json:"notes,omitempty"` // NTE after OBR
	Loc               Location      `json:"loc"`
}

// Report is the policy's view of one result message. It is built from a parsed
// HL7 message by FromHL7, or directly in tests.
type Report struct {
	ControlID string `json:"control_id"` // MSH-10
	// PatientID is the patient identifier (PID-3: the first MR-type identifier, else the first repetition; "id^^^authority").
	// It is PHI: used to match a Consent, never logged.
	PatientID    string    `json:"-"`
	Language     string    `json:"language,omitempty"`     // PID-15 identifier
	Jurisdiction string    `json:"jurisdiction,omitempty"` // set by the caller from config
	Orders       []Order   `json:"orders"`
	Diagnoses    []Coded   `json:"diagnoses,omitempty"` // DG1-3
	ReceivedAt   time.Time `json:"received_at"`
}

// Tag names. Others may be added by rule sets.
const (
	TagPathology           = "pathology"
	TagCytology            = "cytology"
	TagImaging             = "imaging"
	TagGenetic             = "genetic"
	TagTumorMarker         = "tumor-marker"
	TagMalignancy          = "malignancy"
	TagSuspectedMalignancy = "suspected-malignancy"
	TagNewCancer           = "new-cancer"
)

// Evidence says why a tag was given: where, by which rule, on what match.
type Evidence struct {
	Segment    string `json:"segment"`
	Occurrence int    `json:"occurrence"`
	Field      string `json:"field"`
	Rule       string `json:"rule"`
	Match      string `json:"match"`
	// Layer is the rule layer: service-section, loinc, local-code, service-name,
	// coded-value, structured-category, free-text, history (see the Layer
	// constants).
	Layer string `json:"layer,omitempty"`
	// Start and End are byte offsets of Match within the text value, for highlighting.
	Start int `json:"start,omitempty"`
	End   int `json:"end,omitempty"`
	// Modifier names the negation, hedge or context trigger that changed what
	// the match means, as "kind: phrase" (e.g. "hedge: suspicious for",
	// "negated: negative for", "known: recurrent"); empty for a plain match.
	Modifier string `json:"modifier,omitempty"`
}

// Tag is one tag with all its evidence.
type Tag struct {
	Tag      string     `json:"tag"`
	Evidence []Evidence `json:"evidence"`
}

// Classification is the classifier's output for one report.
type Classification struct {
	Tags           []Tag  `json:"tags"`
	RulesetVersion string `json:"ruleset_version"`
	// Suppressed lists, by the tag they would have given, matches that did not
	// count: negated ("negative for carcinoma"), context ("family history of",
	// "rule out"), or for new-cancer the prior malignancy that ruled it out.
	// It is for explanation only.
	Suppressed []Tag `json:"suppressed,omitempty"`
}

// Has reports whether the classification carries tag t.
func (c Classification) Has(t string) bool {
	for _, x := range c.Tags {
		if x.Tag == t {
			return true
		}
	}
	return false
}

// Action is what happens to a result now.
type Action string

// Actions.
const (
	ActionRelease Action = "release"
	ActionHold    Action = "hold"
	// ActionWithdraw means the result must not reach the portal at all and any
	// earlier version (held or released) is withdrawn: the sender deleted it or
	// marked it wrong (OBX-11 D or W, e.g. sent for the wrong patient). It is
	// not a hold: there is no deadline and nothing is released later.
	ActionWithdraw Action = "withdraw"
)

// Notify is how the patient is told a result is available.
type Notify string

// Notification directives.
const (
	NotifyPush  Notify = "push"
	NotifyQuiet Notify = "quiet"
)

// BasisKind is the lawful basis a hold rests on.
type BasisKind string

// Basis kinds (see DESIGN.md, "Lawful holds").
const (
	BasisPatientRequest         BasisKind = "patient-request"
	BasisStateLaw               BasisKind = "state-law"
	BasisClinicianDetermination BasisKind = "clinician-determination"
	BasisDataError              BasisKind = "data-error"
	BasisSenderFlag             BasisKind = "sender-flag"
	BasisOrganisationalPolicy   BasisKind = "organisational-policy"
)
