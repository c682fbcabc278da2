package policy

import (
	"fmt"
	"strings"
	"time"
)

// End conditions (Basis.Until): how a basis ends before its deadline, if at all.
const (
	// UntilClinicianReview ends when a clinician reviews (acknowledges) the
	// result; the deadline is the maximum.
	UntilClinicianReview = "clinician-review"
	// UntilElapsed ends only when the deadline passes.
	UntilElapsed = "elapsed"
	// UntilEarlierOf ends at clinician review or when the delay has elapsed,
	// whichever comes first (also: "provider may release earlier").
	UntilEarlierOf = "earlier-of"
	// UntilLaterOf ends when a clinician has reviewed and the delay has
	// elapsed (NotBefore), or at the maximum (Deadline).
	UntilLaterOf = "later-of"
	// UntilNotBefore ends at NotBefore (= Deadline); nobody may release earlier.
	UntilNotBefore = "not-before"
	// UntilClinicianRelease ends when the clinician who made a Preventing-Harm
	// determination (or a reviewer) releases it through the API, or at its
	// review deadline.
	UntilClinicianRelease = "clinician-release"
	// UntilCorrection ends when the sender corrects the result, or at the deadline.
	UntilCorrection = "correction"
	// UntilWithdrawn marks the basis of a withdrawal: nothing is released.
	UntilWithdrawn = "withdrawn"
)

// Dispositions say how a decision relates to an earlier version of the result.
const (
	// DispositionNew is a result with no earlier version on record.
	DispositionNew = "new"
	// DispositionReplaceHeld replaces a held earlier version; the original
	// deadline is kept (a correction never restarts the clock).
	DispositionReplaceHeld = "replace-held"
	// DispositionReleaseCorrection releases a correction of a result the
	// patient can already see, at once.
	DispositionReleaseCorrection = "release-correction"
	// DispositionWithdraw withdraws the result and any earlier version.
	DispositionWithdraw = "withdraw"
	// DispositionRetractAndHold is a correction of a result the patient can
	// already see that is itself to be held (e.g. the amended report now
	// shows a malignancy and the patient asked for a clinician's review): the
	// released version is taken back at once, with a note that the result is
	// being revised, and the correction is held on its own bases. The patient
	// neither keeps a wrong result nor learns a cancer diagnosis alone.
	DispositionRetractAndHold = "retract-and-hold"
)

// Prior states (Prior.State).
const (
	PriorHeld      = "held"
	PriorReleased  = "released"
	PriorWithdrawn = "withdrawn"
)

// Determination is a licensed clinician's individual Preventing-Harm
// determination (45 CFR 171.201) for one patient, optionally one order, made
// through the API. It is reviewable and always ends: at Until, or after the
// configured default review period.
type Determination struct {
	// PatientID is the patient identifier as in Report.PatientID ("id^^^auth"
	// or just "id"). Required. It is PHI: stored with the hold, never logged.
	PatientID string `json:"patient_id"`
	// OrderFiller limits the determination to one order (OBR-3/ORC-3, or the
	// placer number); empty means every result for the patient.
	OrderFiller string `json:"order_filler,omitempty"`
	// By identifies the clinician (NPI or local ID). Required.
	By string `json:"by"`
	// Role is the clinician's role, e.g. "ordering physician". Required.
	Role string `json:"role"`
	// Reason is the clinician's reason. Required.
	Reason string `json:"reason"`
	// HarmType is the type of harm, e.g. "life-or-physical-safety" (for access
	// by the patient the harm standard is danger to life or physical safety,
	// 171.201(d)(3)) or "substantial-harm-to-other" (171.201(d)(2)).
	HarmType string `json:"harm_type,omitempty"`
	// At is when the determination was made.
	At time.Time `json:"at"`
	// Until is when it must be reviewed; zero means At plus the default.
	Until time.Time `json:"until,omitempty"`
}

// Prior is the state of an earlier version of the same result (same filler
// order number), supplied by the caller for corrections.
type Prior struct {
	// State is held, released or withdrawn.
	State string `json:"state"`
	// HoldID identifies the earlier hold, when held.
	HoldID string `json:"hold_id,omitempty"`
	// Deadline is the earlier hold's hard deadline, kept by a replacement.
	Deadline time.Time `json:"deadline,omitempty"`
}

// Input is everything a decision depends on.
type Input struct {
	Report         *Report
	Classification Classification
	// Preference is the patient's preference on file (from a FHIR Consent), or nil.
	Preference *Preference
	// Determinations are active clinician determinations for the patient.
	Determinations []Determination
	// Prior is the earlier version of this result, or nil.
	Prior *Prior
	// Facility is the sending facility (MSH-4), used to find the jurisdiction
	// when Report.Jurisdiction is empty.
	Facility string
	// SuspectedDataError, when not empty, says why the caller believes the
	// result is misidentified or corrupt (e.g. "patient identifiers disagree
	// with the order"). It creates a data-error basis.
	SuspectedDataError string
	// Now is the decision time.
	Now time.Time
}

// Basis is one lawful basis of a hold with its end condition and deadline.
type Basis struct {
	Kind BasisKind `json:"kind"`
	// Until is the end condition (UntilClinicianReview, UntilElapsed, ...).
	Until string `json:"until"`
	// Deadline is when the basis ends at the latest. Never zero on a hold.
	Deadline time.Time `json:"deadline"`
	// NotBefore is the earliest the basis can end (later-of, not-before);
	// zero when it can end at any time.
	NotBefore time.Time `json:"not_before,omitempty"`
	// ReviewEnds says a clinician's review ends the basis (once NotBefore
	// has passed).
	ReviewEnds bool `json:"review_ends"`
	// Citation is the law, regulation, standard or written policy relied on.
	Citation string `json:"citation,omitempty"`
	// Source names the instrument: the Consent and provision, the statute
	// preset, the determining clinician, the OBX.
	Source string `json:"source,omitempty"`
	// Detail explains the basis in a sentence, including any fallback taken.
	Detail string `json:"detail,omitempty"`
	// ComplianceRisk flags a basis that may not be a recognised exception
	// (organisational policy).
	ComplianceRisk bool `json:"compliance_risk,omitempty"`
	// TimeZone is the IANA zone the basis's clock counts days in (state law,
	// sender flags); empty for clocks of absolute hours.
	TimeZone string `json:"time_zone,omitempty"`
	// TimeZoneFrom says where TimeZone comes from, in the configuration's
	// terms (facility_time_zones.TXLAB, jurisdictions.US-TX.time_zone, preset
	// US-TX-OCC-159.0062, policy.time_zone, or the UTC default).
	TimeZoneFrom string `json:"time_zone_from,omitempty"`
	// Tags are the tags that brought the result under the basis.
	Tags []string `json:"tags,omitempty"`
	// Evidence points at what in the message triggered the basis.
	Evidence []Evidence `json:"evidence,omitempty"`
}

// Ended reports whether the basis has ended at now, given when a clinician
// reviewed the result (zero when nobody has).
func (b Basis) Ended(now, reviewedAt time.Time) bool {
	if !b.Deadline.IsZero() && !now.Before(b.Deadline) {
		return true
	}
	return b.ReviewEnds && !reviewedAt.IsZero() && !now.Before(b.NotBefore)
}

// Decision is the outcome for one result.
type Decision struct {
	Action Action  `json:"action"`
	Bases  []Basis `json:"bases"`
	// Deadline is the hard deadline of a hold: the latest basis deadline,
	// never later than receipt plus max_hold. Zero on release and withdraw.
	Deadline time.Time `json:"deadline,omitempty"`
	// EarliestRelease is the earliest time the hold can end even with a
	// clinician's review (bases that only elapse, and NotBefore).
	EarliestRelease time.Time `json:"earliest_release,omitempty"`
	Notify          Notify    `json:"notify"`
	// Note is the plain-language note for the patient, in NoteLanguage.
	Note string `json:"note,omitempty"`
	// RevisionNote is, with DispositionRetractAndHold, the plain-language note
	// that goes with the retraction of the version the patient saw.
	RevisionNote string `json:"revision_note,omitempty"`
	NoteLanguage string `json:"note_language,omitempty"`
	// Disposition relates the decision to an earlier version (DispositionNew, ...).
	Disposition string `json:"disposition"`
	// Jurisdiction is the jurisdiction whose rules were applied.
	Jurisdiction string `json:"jurisdiction,omitempty"`
	// StateLaw says in a sentence whether a state-law rule applies and, when
	// none does, why: no jurisdiction, a jurisdiction declared without state
	// law, or a result the rule does not cover.
	StateLaw       string `json:"state_law,omitempty"`
	RulesetVersion string `json:"ruleset_version"`
	// ComplianceRisk is true when any basis is flagged.
	ComplianceRisk bool `json:"compliance_risk,omitempty"`
	// Warnings are facts a reviewer should see: fallbacks taken, inputs
	// ignored and why, bases that had already ended.
	Warnings []string `json:"warnings,omitempty"`
}

// Ended reports whether a hold has ended at now: every basis has ended or the
// hard deadline has passed.
func (d Decision) Ended(now, reviewedAt time.Time) bool {
	if d.Action != ActionHold {
		return true
	}
	if !now.Before(d.Deadline) {
		return true
	}
	for _, b := range d.Bases {
		if !b.Ended(now, reviewedAt) {
			return false
		}
	}
	return true
}

// EndsAt returns when a hold ends if a clinician reviews it at reviewedAt
// (zero: nobody reviews): the latest end over its bases, where a basis that a
// review ends ends at the later of the review and its NotBefore, and any
// other at its deadline. It is zero for a release or withdrawal. The router
// uses it to schedule the release after an acknowledgement.
func (d Decision) EndsAt(reviewedAt time.Time) time.Time {
	if d.Action != ActionHold {
		return time.Time{}
	}
	var end time.Time
	for _, b := range d.Bases {
		e := b.Deadline
		if b.ReviewEnds && !reviewedAt.IsZero() {
			r := reviewedAt
			if b.NotBefore.After(r) {
				r = b.NotBefore
			}
			if r.Before(e) {
				e = r
			}
		}
		if e.After(end) {
			end = e
		}
	}
	if end.IsZero() || end.After(d.Deadline) {
		end = d.Deadline
	}
	return end
}

// Engine decides releases under one configuration. It is safe for concurrent
// use; build it once with NewEngine.
type Engine struct {
	cfg        Config
	cal        *Calendar
	cals       map[string]*Calendar // by IANA zone: facility and rule zones
	maxHold    time.Duration
	lang       string
	quiet      map[string]bool
	templates  map[string]map[string]string
	rules      map[string]JurisdictionRule // resolved
	senderMax  map[string]time.Duration
	senderDays map[string]int
	senderOff  map[string]bool
}

// NewEngine validates cfg and builds an engine. The zero Config is valid and
// means: UTC, Monday–Friday, no state law, sender flags per table 0909, no
// organisational policy, 30-day ceiling, built-in notes in English and Spanish.
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cal, err := NewCalendar(cfg.TimeZone, cfg.Holidays, cfg.BusinessDays)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, cal: cal, maxHold: cfg.MaxHold.D(), lang: cfg.DefaultLanguage,
		quiet: map[string]bool{}, templates: map[string]map[string]string{},
		rules: map[string]JurisdictionRule{}, senderMax: map[string]time.Duration{},
		senderDays: map[string]int{}, senderOff: map[string]bool{},
		cals: map[string]*Calendar{},
	}
	if e.maxHold == 0 {
		e.maxHold = DefaultMaxHold
	}
	if e.lang == "" {
		e.lang = DefaultLanguage
	}
	quiet := cfg.Notify.QuietTags
	if quiet == nil {
		quiet = DefaultQuietTags
	}
	for _, t := range quiet {
		e.quiet[t] = true
	}
	for tag, m := range DefaultTemplates {
		e.templates[tag] = m
	}
	for tag, m := range cfg.Templates {
		merged := map[string]string{}
		for l, s := range m {
			merged[l] = s
		}
		e.templates[tag] = merged
	}
	zones := []string{}
	for j, r := range cfg.Jurisdictions {
		e.rules[j] = r.resolve()
		zones = append(zones, e.rules[j].TimeZone)
	}
	for _, z := range cfg.FacilityTimeZones {
		zones = append(zones, z)
	}
	for _, z := range zones {
		if _, ok := e.cals[z]; ok || z == "" {
			continue
		}
		c, err := NewCalendar(z, cfg.Holidays, cfg.BusinessDays)
		if err != nil {
			return nil, err
		}
		e.cals[z] = c
	}
	for _, code := range SenderFlagCodes {
		r := cfg.SenderFlags[code]
		e.senderOff[code] = r.Ignore
		e.senderDays[code] = DefaultSenderFlagBusinessDays
		if r.BusinessDays > 0 {
			e.senderDays[code] = r.BusinessDays
		}
		e.senderMax[code] = DefaultSenderFlagMax
		if r.Max > 0 {
			e.senderMax[code] = r.Max.D()
		}
	}
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Calendar returns the engine's calendar.
func (e *Engine) Calendar() *Calendar { return e.cal }

// JurisdictionFor returns the jurisdiction for a report: Report.Jurisdiction,
// else the sending facility's, else the configured default.
func (e *Engine) JurisdictionFor(r *Report, facility string) string {
	if r != nil && r.Jurisdiction != "" {
		return r.Jurisdiction
	}
	if j, ok := e.cfg.FacilityJurisdictions[facility]; ok && facility != "" {
		return j
	}
	return e.cfg.Jurisdiction
}

// FacilityZone returns the calendar a facility's clocks count days in, and
// where its zone comes from: facility_time_zones, else policy.time_zone, else
// UTC. Sender-flag clocks use it, and HL7 timestamps without an offset are
// read in its zone.
func (e *Engine) FacilityZone(facility string) (*Calendar, string) {
	if z, ok := e.cfg.FacilityTimeZones[facility]; ok && facility != "" {
		return e.cals[z], "facility_time_zones." + facility
	}
	if e.cfg.TimeZone != "" {
		return e.cal, "policy.time_zone"
	}
	return e.cal, "UTC default: policy.time_zone not set"
}

// LocationFor returns the zone a facility's timestamps without an offset are
// read in (FacilityZone's).
func (e *Engine) LocationFor(facility string) *time.Location {
	c, _ := e.FacilityZone(facility)
	return c.Location()
}

// StatuteZone returns the calendar the statute clock of jurisdiction j counts
// days in for a result of facility, and where its zone comes from: the
// facility's own zone (facility_time_zones, for a facility in the other zone
// of a state that spans two), else the rule's (time_zone, or its preset's),
// else policy.time_zone, else UTC.
func (e *Engine) StatuteZone(j, facility string) (*Calendar, string) {
	if z, ok := e.cfg.FacilityTimeZones[facility]; ok && facility != "" {
		return e.cals[z], "facility_time_zones." + facility
	}
	if r, ok := e.rules[j]; ok && r.TimeZone != "" {
		from := "jurisdictions." + j + ".time_zone"
		if own := e.cfg.Jurisdictions[j]; own.TimeZone == "" && r.Statute != "" {
			from = "preset " + r.Statute
		}
		return e.cals[r.TimeZone], from
	}
	return e.FacilityZone("")
}

// decision carries the state of one Decide call.
type decision struct {
	e        *Engine
	in       Input
	r        *Report
	now      time.Time
	start    time.Time // receipt (fallback now): patient delays and max_hold count from here
	ceiling  time.Time // start + max_hold
	warnings []string
	// immediate records an explicit instruction to share at once (SIMM, or
	// the patient's permit without deny), which suppresses the
	// organisational policy.
	immediate []string
}

func (d *decision) warn(format string, args ...any) {
	d.warnings = append(d.warnings, fmt.Sprintf(format, args...))
}

// Decide returns the release decision for one result. It never returns a hold
// without a basis, nor one without a deadline no later than receipt plus
// max_hold.
func (e *Engine) Decide(in Input) Decision {
	d := &decision{e: e, in: in, r: in.Report, now: in.Now}
	if d.r == nil {
		d.r = &Report{}
		d.warn("no report: nothing to release")
	}
	if d.now.IsZero() {
		d.now = d.r.ReceivedAt
	}
	d.start = d.r.ReceivedAt
	if d.start.IsZero() {
		d.start = d.now
		d.warn("receipt time unknown: delays counted from the decision time")
	}
	if d.now.IsZero() {
		// Neither clock given: deadlines would be meaningless. Use the zero
		// time consistently; callers always pass Now.
		d.warn("decision time unknown")
	}
	d.ceiling = d.start.Add(e.maxHold)

	out := Decision{
		Disposition:    DispositionNew,
		RulesetVersion: in.Classification.RulesetVersion,
		Jurisdiction:   e.JurisdictionFor(in.Report, in.Facility),
	}
	out.Notify = e.notify(in.Classification)

	// 1. Deleted or marked wrong by the sender: withdraw, never release.
	if ev, ok := withdrawn(d.r); ok {
		out.Action = ActionWithdraw
		out.Disposition = DispositionWithdraw
		out.Notify = NotifyQuiet
		out.Bases = []Basis{{
			Kind: BasisDataError, Until: UntilWithdrawn,
			Citation: "HL7 v2 OBX-11 result status (table 0085)",
			Source:   "sender",
			Detail:   "every observation is deleted (D) or marked wrong (W, e.g. wrong patient): the result and any earlier version are withdrawn",
			Evidence: ev,
		}}
		if in.Prior != nil {
			d.warn("earlier version (%s) is withdrawn", in.Prior.State)
		}
		out.Warnings = d.warnings
		return out
	}

	correction := isCorrection(d.r)
	releasedPrior := in.Prior != nil && in.Prior.State == PriorReleased && correction
	if correction && in.Prior == nil {
		d.warn("correction (status C) with no earlier version on record: decided as a new result")
	}

	var bases []Basis
	bases = append(bases, d.patientRequest()...)
	law, lawSays := d.stateLaw(out.Jurisdiction)
	out.StateLaw = lawSays
	bases = append(bases, law...)
	bases = append(bases, d.clinician()...)
	bases = append(bases, d.dataError()...)
	bases = append(bases, d.senderFlags()...)
	bases = append(bases, d.organisational()...)

	// Cap every basis at the ceiling and drop those that have ended.
	kept := bases[:0]
	for _, b := range bases {
		if b.Deadline.IsZero() || b.Deadline.After(d.ceiling) {
			b.Deadline = d.ceiling
			b.Detail = appendSentence(b.Detail, fmt.Sprintf("capped by max_hold (%s after receipt)", Duration(e.maxHold)))
		}
		if b.NotBefore.After(b.Deadline) {
			b.NotBefore = b.Deadline
		}
		if !d.now.Before(b.Deadline) {
			d.warn("%s basis (%s) already ended at %s", b.Kind, b.Until, b.Deadline.UTC().Format(time.RFC3339))
			continue
		}
		kept = append(kept, b)
	}
	bases = kept

	if in.Prior != nil && in.Prior.State == PriorHeld {
		out.Disposition = DispositionReplaceHeld
		if !in.Prior.Deadline.IsZero() {
			// The replacement keeps the original deadline: a correction
			// never extends a hold.
			kept := bases[:0]
			for _, b := range bases {
				if b.Deadline.After(in.Prior.Deadline) {
					b.Deadline = in.Prior.Deadline
					b.Detail = appendSentence(b.Detail, "deadline kept from the held version it replaces")
				}
				if b.NotBefore.After(b.Deadline) {
					b.NotBefore = b.Deadline
				}
				if d.now.Before(b.Deadline) {
					kept = append(kept, b)
				}
			}
			bases = kept
		}
	}

	out.Note, out.NoteLanguage = e.note(in.Classification, d.r.Language)
	if len(bases) == 0 {
		out.Action = ActionRelease
		out.Bases = []Basis{}
		if releasedPrior {
			// The patient can already see the result; its correction goes out
			// at once so the wrong version does not stay in front of them.
			out.Disposition = DispositionReleaseCorrection
		}
		out.Warnings = d.warnings
		return out
	}
	if releasedPrior {
		// The correction is to be held, but the patient sees the version it
		// corrects: that version is taken back now (the pipeline publishes
		// the retraction with RevisionNote) and the correction is held.
		out.Disposition = DispositionRetractAndHold
		out.RevisionNote = revisionNote
	}
	out.Action = ActionHold
	out.Bases = bases
	for _, b := range bases {
		if b.Deadline.After(out.Deadline) {
			out.Deadline = b.Deadline
		}
		earliest := b.Deadline
		if b.ReviewEnds {
			earliest = b.NotBefore
		}
		if earliest.After(out.EarliestRelease) {
			out.EarliestRelease = earliest
		}
		if b.ComplianceRisk {
			out.ComplianceRisk = true
		}
	}
	if out.EarliestRelease.IsZero() || out.EarliestRelease.Before(d.now) {
		out.EarliestRelease = d.now
	}
	out.Warnings = d.warnings
	return out
}

// revisionNote tells the patient why a result they could see was taken back
// while its correction waits for their clinician.
const revisionNote = "This result is being revised. Your care team will share the updated result with you."

func (e *Engine) notify(c Classification) Notify {
	for _, t := range c.Tags {
		if e.quiet[t.Tag] {
			return NotifyQuiet
		}
	}
	return NotifyPush
}

// withdrawn reports whether every observation (at least one) is deleted or
// marked wrong, with the evidence.
func withdrawn(r *Report) ([]Evidence, bool) {
	var ev []Evidence
	n := 0
	for _, o := range r.Orders {
		for _, x := range o.Observations {
			n++
			s := strings.ToUpper(x.Status)
			if s != "D" && s != "W" {
				return nil, false
			}
			ev = append(ev, statusEvidence(x))
		}
	}
	return ev, n > 0
}

func statusEvidence(x Observation) Evidence {
	return Evidence{
		Segment: "OBX", Occurrence: x.Loc.Occurrence, Field: "OBX-11",
		Rule: "result-status-" + strings.ToUpper(x.Status), Match: x.Status, Layer: "status",
	}
}

// isCorrection reports whether the report corrects an earlier version.
func isCorrection(r *Report) bool {
	for _, o := range r.Orders {
		if strings.EqualFold(o.ResultStatus, "C") {
			return true
		}
		for _, x := range o.Observations {
			if strings.EqualFold(x.Status, "C") {
				return true
			}
		}
	}
	return false
}

// finalised returns the clock start for statutes: the latest OBR-22 (the
// last order finalised governs the report), else receipt, else now, and
// whether it fell back.
func (d *decision) finalised() (time.Time, string) {
	var t time.Time
	for _, o := range d.r.Orders {
		if o.FinalizedAt.After(t) {
			t = o.FinalizedAt
		}
	}
	if !t.IsZero() {
		return t, ""
	}
	if !d.r.ReceivedAt.IsZero() {
		return d.r.ReceivedAt, "OBR-22 (results rpt/status chng date/time) absent: clock counted from receipt time"
	}
	return d.now, "OBR-22 and receipt time absent: clock counted from the decision time"
}

// matchTags returns the first tag combination fully present, or nil.
func matchTags(c Classification, appliesTo [][]string) []string {
	for _, set := range appliesTo {
		all := len(set) > 0
		for _, t := range set {
			if !c.Has(t) {
				all = false
				break
			}
		}
		if all {
			return set
		}
	}
	return nil
}

// tagEvidence returns the first evidence item of each tag, to show why the
// basis applies.
func tagEvidence(c Classification, tags []string) []Evidence {
	var ev []Evidence
	for _, t := range c.Tags {
		if inList(tags, t.Tag) && len(t.Evidence) > 0 {
			ev = append(ev, t.Evidence[0])
		}
	}
	return ev
}

func appendSentence(s, add string) string {
	if s == "" {
		return add
	}
	return s + "; " + add
}

func earlierTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
