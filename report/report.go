// Package report computes resultgate's compliance report from hold records:
// holds by lawful basis and by tag, time from finalisation to release, how
// holds ended, on-call overrides, holds resting on organisational policy (a
// compliance risk under the information-blocking rule, 45 CFR 171), and the
// hold rate and time to release by patient age band, sex and preferred
// language with small-cell suppression.
//
// The package is pure computation: the caller (pipeline.Service.Report) reads
// the records and the demographics of their inbound messages; Compute turns
// them into aggregates. A Report carries no patient identifiers: hold IDs are
// opaque keyed hashes, and demographic groups under MinCell are suppressed.
// See docs/COMPLIANCE.md for every field.
package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resultgate/resultgate/router/hold"
)

// DefaultMinCell is the smallest group size published in the demographic
// breakdown; smaller non-zero counts are shown as "<5". Five is the threshold
// most health statistics publications use (and the one the issue asks for).
const DefaultMinCell = 5

// Basis kinds that the report treats specially (policy.BasisKind values).
const (
	// BasisOrganisationalPolicy is always reported as a compliance risk.
	BasisOrganisationalPolicy = "organisational-policy"
)

// Outcome keys of Report.Outcomes, in the order they are listed.
const (
	OutcomeClinician      = "clinician"
	OutcomeOverride       = "override"
	OutcomeDeadline       = "deadline"
	OutcomePatientRevoked = "patient-revoked"
	// OutcomePatientDelay is a patient's requested delay that ended as asked:
	// a normal ending, not drift to the hard deadline.
	OutcomePatientDelay = "patient-delay-ended"
	OutcomeReevaluated  = "reevaluated"
	OutcomeCorrection   = "correction"
	OutcomeStillHeld    = "still-held"
	OutcomeOther        = "other"
)

var outcomeOrder = []string{OutcomeClinician, OutcomeOverride, OutcomeDeadline, OutcomePatientDelay, OutcomePatientRevoked,
	OutcomeReevaluated, OutcomeCorrection, OutcomeStillHeld, OutcomeOther}

// Age bands at result time, in order, and the group for unknown values.
const (
	Age0to17   = "0-17"
	Age18to39  = "18-39"
	Age40to64  = "40-64"
	Age65up    = "65+"
	GroupUnset = "unknown"
)

var ageOrder = []string{Age0to17, Age18to39, Age40to64, Age65up, GroupUnset}

// Hold is the report's view of one hold record.
type Hold struct {
	ID    string
	State hold.HoldState
	Bases []Basis
	Tags  []string
	// CreatedAt places the hold in the period; it is also the clock start
	// when FinalisedAt is zero.
	CreatedAt time.Time
	// FinalisedAt is the latest OBR-22 of the result (zero when absent or
	// unreadable).
	FinalisedAt time.Time
	// Release is set when State is released.
	Release *Release
	// Demographics of the patient, from the inbound message.
	Demographics Demographics
}

// Basis is one lawful basis of a hold.
type Basis struct {
	Kind           string
	ComplianceRisk bool
	Citation       string
}

// Release says how and when a hold ended in the portal feed.
type Release struct {
	Path   hold.ReleasePath
	Actor  string
	Role   string
	Reason string
	At     time.Time
}

// Demographics are the patient attributes the consistency breakdown uses.
type Demographics struct {
	// Known is false when the inbound message could not be read (e.g. past
	// the HL7_IN retention); the patient then counts in every "unknown" group.
	Known bool
	// BirthDate is PID-7 (zero when absent or unreadable).
	BirthDate time.Time
	// Sex is PID-8 (table 0001), Language the code of PID-15.
	Sex      string
	Language string
}

// Result is a result decided in the period without a hold (released at once):
// the rest of the denominator of hold rates.
type Result struct {
	At           time.Time
	Demographics Demographics
}

// Input is everything Compute needs.
type Input struct {
	// Since and Until bound the period [Since, Until): holds by CreatedAt,
	// results by their decision time.
	Since, Until time.Time
	// GeneratedAt is when the report is made; holds still open then count as
	// still held.
	GeneratedAt time.Time
	Holds       []Hold
	// Unheld are the results released without a hold. When ResultsKnown is
	// false (the audit trail could not be read) hold rates are left out.
	Unheld       []Result
	ResultsKnown bool
	// MinCell is the suppression threshold (DefaultMinCell when zero).
	MinCell int
}

// Report is the compliance report. Its JSON field names are stable and
// documented in docs/COMPLIANCE.md.
type Report struct {
	Period        Period        `json:"period"`
	MinCell       int           `json:"min_cell"`
	Totals        Totals        `json:"totals"`
	ByBasis       []BasisCount  `json:"by_basis"`
	ByTag         []TagCount    `json:"by_tag"`
	TimeToRelease TimeToRelease `json:"time_to_release"`
	Outcomes      []Outcome     `json:"outcomes"`
	Overrides     []Override    `json:"overrides"`
	Risk          Risk          `json:"compliance_risk"`
	Breakdown     Breakdown     `json:"breakdown"`
	Notes         []string      `json:"notes"`
}

// Period is the reporting period [Since, Until) and when the report was made.
type Period struct {
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	GeneratedAt time.Time `json:"generated_at"`
}

// Totals counts the period's results and holds.
type Totals struct {
	// Results is every result decided in the period (held or not); null when
	// the audit trail could not be read.
	Results *int `json:"results"`
	Holds   int  `json:"holds"`
	// HoldRate is Holds/Results (null when Results is null or zero).
	HoldRate *float64 `json:"hold_rate"`
	Released int      `json:"released"`
	// Closed holds were superseded by a correction or withdrawn by the sender.
	Closed              int `json:"closed"`
	StillHeld           int `json:"still_held"`
	DemographicsMissing int `json:"demographics_missing"`
}

// BasisCount is the number of holds resting on one basis kind. A hold with
// several bases counts under each, so the rows can sum to more than the holds.
type BasisCount struct {
	Basis string `json:"basis"`
	// Label is the basis kind in plain words (hold.KindText).
	Label string  `json:"label"`
	Holds int     `json:"holds"`
	Share float64 `json:"share"`
	// ComplianceRisk is true when any hold under this basis is flagged.
	ComplianceRisk bool `json:"compliance_risk"`
}

// TagCount is the number of holds carrying one tag.
type TagCount struct {
	Tag   string  `json:"tag"`
	Holds int     `json:"holds"`
	Share float64 `json:"share"`
}

// Stats summarises durations in whole seconds. Median and P90 interpolate
// linearly between the closest ranks (Hyndman–Fan type 7, as R, NumPy and
// spreadsheet PERCENTILE.INC); with Count 0 they are null.
type Stats struct {
	Count         int    `json:"count"`
	MedianSeconds *int64 `json:"median_seconds"`
	P90Seconds    *int64 `json:"p90_seconds"`
	MaxSeconds    *int64 `json:"max_seconds"`
}

// TimeToRelease is the time from finalisation to release of the released
// holds of the period.
type TimeToRelease struct {
	// Clock names the clock start.
	Clock string `json:"clock"`
	// FallbackHolds were timed from the hold's creation because OBR-22 was
	// absent or unreadable.
	FallbackHolds int            `json:"fallback_holds"`
	Overall       Stats          `json:"overall"`
	ByBasis       []BasisStats   `json:"by_basis"`
	ByOutcome     []OutcomeStats `json:"by_outcome"`
}

// BasisStats is the time to release of the holds under one basis.
type BasisStats struct {
	Basis string `json:"basis"`
	// Label is the basis kind in plain words (hold.KindText).
	Label string `json:"label"`
	Stats
}

// OutcomeStats is the time to release by how the hold ended.
type OutcomeStats struct {
	Outcome string `json:"outcome"`
	Stats
}

// Outcome is how many of the period's holds ended one way.
type Outcome struct {
	Outcome string  `json:"outcome"`
	Holds   int     `json:"holds"`
	Share   float64 `json:"share"`
}

// Override is one on-call override: who, when, why. Reason is free text
// written by the overriding clinician.
type Override struct {
	HoldID string    `json:"hold_id"`
	Actor  string    `json:"actor"`
	Role   string    `json:"role"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Bases  []string  `json:"bases"`
}

// Risk lists the holds resting on a basis flagged as a compliance risk
// (organisational policy).
type Risk struct {
	Holds     int             `json:"holds"`
	HoldIDs   []string        `json:"hold_ids"`
	Citations []CitationCount `json:"citations"`
}

// CitationCount is the number of flagged holds citing one written policy.
type CitationCount struct {
	Citation string `json:"citation"`
	Holds    int    `json:"holds"`
}

// Breakdown is the hold rate and time to release by patient group.
type Breakdown struct {
	AgeBand  []Group `json:"age_band"`
	Sex      []Group `json:"sex"`
	Language []Group `json:"language"`
}

// Group is one patient group of a breakdown. Counts under MinCell are
// suppressed ("<5"); when that leaves one suppressed cell in a column, the
// next smallest is withheld too ("*") so it cannot be worked out from the
// total. Rates and times are null when a count they rest on is suppressed.
type Group struct {
	Group         string   `json:"group"`
	Results       Cell     `json:"results"`
	Holds         Cell     `json:"holds"`
	HoldRate      *float64 `json:"hold_rate"`
	Released      Cell     `json:"released"`
	TimeToRelease *Stats   `json:"time_to_release"`
}

// Cell is a count that may be suppressed. It marshals as a number, as "<N"
// (primary suppression) or as "*" (complementary suppression), and as null
// when unknown.
type Cell struct {
	N int
	// Suppressed is "" (shown), "<5" style or "*".
	Suppressed string
	Unknown    bool
}

// Shown reports whether the count is published.
func (c Cell) Shown() bool { return c.Suppressed == "" && !c.Unknown }

// String renders the cell as the text and CSV output show it.
func (c Cell) String() string {
	switch {
	case c.Unknown:
		return "n/a"
	case c.Suppressed != "":
		return c.Suppressed
	default:
		return strconv.Itoa(c.N)
	}
}

// MarshalJSON writes the number, the suppression marker or null.
func (c Cell) MarshalJSON() ([]byte, error) {
	switch {
	case c.Unknown:
		return []byte("null"), nil
	case c.Suppressed != "":
		return json.Marshal(c.Suppressed)
	default:
		return []byte(strconv.Itoa(c.N)), nil
	}
}

// UnmarshalJSON reads what MarshalJSON writes (N stays 0 when suppressed).
func (c *Cell) UnmarshalJSON(b []byte) error {
	*c = Cell{}
	s := string(b)
	switch {
	case s == "null":
		c.Unknown = true
	case strings.HasPrefix(s, `"`):
		return json.Unmarshal(b, &c.Suppressed)
	default:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("report cell: %w", err)
		}
		c.N = n
	}
	return nil
}

// Compute builds the report for in.
func Compute(in Input) *Report {
	minCell := in.MinCell
	if minCell <= 0 {
		minCell = DefaultMinCell
	}
	r := &Report{
		Period:  Period{Since: in.Since.UTC(), Until: in.Until.UTC(), GeneratedAt: in.GeneratedAt.UTC()},
		MinCell: minCell,
		ByBasis: []BasisCount{}, ByTag: []TagCount{}, Outcomes: []Outcome{}, Overrides: []Override{},
		Risk:      Risk{HoldIDs: []string{}, Citations: []CitationCount{}},
		Breakdown: Breakdown{AgeBand: []Group{}, Sex: []Group{}, Language: []Group{}},
		Notes:     []string{},
	}
	holds := make([]Hold, 0, len(in.Holds))
	for _, h := range in.Holds {
		if inPeriod(h.CreatedAt, in.Since, in.Until) {
			holds = append(holds, h)
		}
	}
	slices.SortFunc(holds, func(a, b Hold) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	var unheld []Result
	for _, u := range in.Unheld {
		if inPeriod(u.At, in.Since, in.Until) {
			unheld = append(unheld, u)
		}
	}

	n := len(holds)
	r.Totals.Holds = n
	if in.ResultsKnown {
		total := n + len(unheld)
		r.Totals.Results = &total
		if total > 0 {
			r.Totals.HoldRate = ratio(n, total)
		}
	} else {
		r.Notes = append(r.Notes, "The audit trail of decisions could not be read: hold rates are left out.")
	}

	basisHolds := map[string]int{}
	basisRisk := map[string]bool{}
	tagHolds := map[string]int{}
	outcomes := map[string]int{}
	riskCitations := map[string]int{}
	var all []int64
	byBasis := map[string][]int64{}
	byOutcome := map[string][]int64{}
	for _, h := range holds {
		kinds := basisKinds(h)
		for _, k := range kinds {
			basisHolds[k]++
		}
		for _, t := range uniq(h.Tags) {
			tagHolds[t]++
		}
		if risky, cites := riskOf(h); risky {
			r.Risk.Holds++
			r.Risk.HoldIDs = append(r.Risk.HoldIDs, h.ID)
			for _, k := range kinds {
				basisRisk[k] = basisRisk[k] || isRiskKind(h, k)
			}
			for _, c := range cites {
				riskCitations[c]++
			}
		}
		if !h.Demographics.Known {
			r.Totals.DemographicsMissing++
		}
		o := outcomeOf(h)
		outcomes[o]++
		switch {
		case h.State == hold.StateHeld:
			r.Totals.StillHeld++
		case h.State == hold.StateSuperseded || h.State == hold.StateWithdrawn:
			r.Totals.Closed++
		}
		if d, ok, fellBack := releaseDelay(h); ok {
			r.Totals.Released++
			if fellBack {
				r.TimeToRelease.FallbackHolds++
			}
			all = append(all, d)
			for _, k := range kinds {
				byBasis[k] = append(byBasis[k], d)
			}
			byOutcome[o] = append(byOutcome[o], d)
		}
		if h.State == hold.StateReleased && h.Release != nil && h.Release.Path == hold.PathOverride {
			r.Overrides = append(r.Overrides, Override{HoldID: h.ID, Actor: h.Release.Actor, Role: h.Release.Role,
				At: h.Release.At.UTC(), Reason: h.Release.Reason, Bases: kinds})
		}
	}
	for _, u := range unheld {
		if !u.Demographics.Known {
			r.Totals.DemographicsMissing++
		}
	}

	for k, c := range basisHolds {
		r.ByBasis = append(r.ByBasis, BasisCount{Basis: k, Label: hold.KindText(k), Holds: c, Share: share(c, n),
			ComplianceRisk: basisRisk[k] || k == BasisOrganisationalPolicy})
	}
	slices.SortFunc(r.ByBasis, func(a, b BasisCount) int { return cmp.Or(cmp.Compare(b.Holds, a.Holds), cmp.Compare(a.Basis, b.Basis)) })
	for t, c := range tagHolds {
		r.ByTag = append(r.ByTag, TagCount{Tag: t, Holds: c, Share: share(c, n)})
	}
	slices.SortFunc(r.ByTag, func(a, b TagCount) int { return cmp.Or(cmp.Compare(b.Holds, a.Holds), cmp.Compare(a.Tag, b.Tag)) })
	for _, o := range outcomeOrder {
		if c := outcomes[o]; c > 0 || o != OutcomeOther {
			r.Outcomes = append(r.Outcomes, Outcome{Outcome: o, Holds: c, Share: share(c, n)})
		}
	}
	for c, k := range riskCitations {
		r.Risk.Citations = append(r.Risk.Citations, CitationCount{Citation: c, Holds: k})
	}
	slices.SortFunc(r.Risk.Citations, func(a, b CitationCount) int {
		return cmp.Or(cmp.Compare(b.Holds, a.Holds), cmp.Compare(a.Citation, b.Citation))
	})
	slices.Sort(r.Risk.HoldIDs)
	slices.SortFunc(r.Overrides, func(a, b Override) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.HoldID, b.HoldID)) })

	r.TimeToRelease.Clock = "finalisation (latest OBR-22) to release"
	r.TimeToRelease.Overall = stats(all)
	r.TimeToRelease.ByBasis = []BasisStats{}
	for _, b := range r.ByBasis {
		r.TimeToRelease.ByBasis = append(r.TimeToRelease.ByBasis, BasisStats{Basis: b.Basis, Label: b.Label, Stats: stats(byBasis[b.Basis])})
	}
	r.TimeToRelease.ByOutcome = []OutcomeStats{}
	for _, o := range outcomeOrder {
		if d := byOutcome[o]; len(d) > 0 {
			r.TimeToRelease.ByOutcome = append(r.TimeToRelease.ByOutcome, OutcomeStats{Outcome: o, Stats: stats(d)})
		}
	}
	if f := r.TimeToRelease.FallbackHolds; f > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d released hold(s) had no readable OBR-22: their time to release is counted from the hold's creation.", f))
	}
	if m := r.Totals.DemographicsMissing; m > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d result(s) had no readable inbound message (past retention?): they count as unknown in every breakdown.", m))
	}
	if r.Risk.Holds > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d hold(s) rest on organisational policy, which may not be an information-blocking exception: review them.", r.Risk.Holds))
	}

	r.Breakdown = breakdown(holds, unheld, in.ResultsKnown, minCell)
	return r
}

func inPeriod(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
}

func basisKinds(h Hold) []string {
	out := make([]string, 0, len(h.Bases))
	for _, b := range h.Bases {
		k := b.Kind
		if k == "" {
			k = GroupUnset
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		out = append(out, GroupUnset)
	}
	return out
}

func uniq(s []string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		if x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func isRiskKind(h Hold, kind string) bool {
	for _, b := range h.Bases {
		if b.Kind == kind && (b.ComplianceRisk || b.Kind == BasisOrganisationalPolicy) {
			return true
		}
	}
	return false
}

// riskOf reports whether h rests on a basis flagged as a compliance risk, and
// the citations (written-policy references) of those bases.
func riskOf(h Hold) (bool, []string) {
	risky := false
	var cites []string
	for _, b := range h.Bases {
		if b.ComplianceRisk || b.Kind == BasisOrganisationalPolicy {
			risky = true
			c := strings.TrimSpace(b.Citation)
			if c == "" {
				c = "(no written-policy reference)"
			}
			if !slices.Contains(cites, c) {
				cites = append(cites, c)
			}
		}
	}
	return risky, cites
}

// outcomeOf says how a hold ended.
func outcomeOf(h Hold) string {
	switch h.State {
	case hold.StateHeld:
		return OutcomeStillHeld
	case hold.StateSuperseded, hold.StateWithdrawn:
		return OutcomeCorrection
	case hold.StateReleased:
		if h.Release == nil {
			return OutcomeOther
		}
		switch h.Release.Path {
		case hold.PathAcknowledged:
			return OutcomeClinician
		case hold.PathOverride:
			return OutcomeOverride
		case hold.PathDeadline:
			return OutcomeDeadline
		case hold.PathPatientRevoked:
			return OutcomePatientRevoked
		case hold.PathPatientDelayEnded:
			return OutcomePatientDelay
		case hold.PathReevaluated:
			return OutcomeReevaluated
		case hold.PathCorrection:
			return OutcomeCorrection
		}
	}
	return OutcomeOther
}

// releaseDelay returns the seconds from finalisation (or, when OBR-22 is
// missing, the hold's creation) to release. A release before the clock start
// (OBR-22 in the future, clock skew) counts as zero.
func releaseDelay(h Hold) (secs int64, ok, fellBack bool) {
	if h.State != hold.StateReleased || h.Release == nil || h.Release.At.IsZero() {
		return 0, false, false
	}
	start := h.FinalisedAt
	if start.IsZero() {
		start, fellBack = h.CreatedAt, true
	}
	d := h.Release.At.Sub(start)
	if d < 0 {
		d = 0
	}
	return int64(d / time.Second), true, fellBack
}

// stats summarises durations (seconds).
func stats(d []int64) Stats {
	s := Stats{Count: len(d)}
	if len(d) == 0 {
		return s
	}
	x := slices.Clone(d)
	slices.Sort(x)
	med, p90, mx := Percentile(x, 0.5), Percentile(x, 0.9), x[len(x)-1]
	s.MedianSeconds, s.P90Seconds, s.MaxSeconds = &med, &p90, &mx
	return s
}

// Percentile returns the p-quantile (0 ≤ p ≤ 1) of the sorted values,
// interpolating linearly between the closest ranks (Hyndman–Fan type 7) and
// rounding to the nearest second. It returns 0 for no values.
func Percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	h := float64(len(sorted)-1) * p
	lo := int(math.Floor(h))
	hi := min(lo+1, len(sorted)-1)
	v := float64(sorted[lo]) + (h-float64(lo))*float64(sorted[hi]-sorted[lo])
	return int64(math.Round(v))
}

func share(c, n int) float64 {
	if n == 0 {
		return 0
	}
	return round4(float64(c) / float64(n))
}

func ratio(c, n int) *float64 {
	v := round4(float64(c) / float64(n))
	return &v
}

func round4(v float64) float64 { return math.Round(v*10000) / 10000 }

// AgeAt returns the age in completed years at t of someone born on birth (the
// calendar dates in UTC), and false when birth is zero or after t.
func AgeAt(birth, t time.Time) (int, bool) {
	if birth.IsZero() || t.IsZero() {
		return 0, false
	}
	b, at := birth.UTC(), t.UTC()
	if at.Before(b) {
		return 0, false
	}
	age := at.Year() - b.Year()
	if at.Month() < b.Month() || (at.Month() == b.Month() && at.Day() < b.Day()) {
		age--
	}
	return age, true
}

// AgeBand returns the band of an age at result time.
func AgeBand(birth, t time.Time) string {
	age, ok := AgeAt(birth, t)
	switch {
	case !ok:
		return GroupUnset
	case age < 18:
		return Age0to17
	case age < 40:
		return Age18to39
	case age < 65:
		return Age40to64
	default:
		return Age65up
	}
}

// SexGroup normalises PID-8 (table 0001: F, M, O, U, A, N, X).
func SexGroup(d Demographics) string {
	s := strings.ToUpper(strings.TrimSpace(d.Sex))
	if !d.Known || s == "" {
		return GroupUnset
	}
	return s
}

// LanguageGroup normalises the PID-15 code (lower case, as sent otherwise).
func LanguageGroup(d Demographics) string {
	s := strings.ToLower(strings.TrimSpace(d.Language))
	if !d.Known || s == "" {
		return GroupUnset
	}
	return s
}

// resultTime is when a hold's result was final: the clock start of its
// time to release.
func resultTime(h Hold) time.Time {
	if !h.FinalisedAt.IsZero() {
		return h.FinalisedAt
	}
	return h.CreatedAt
}

func ageGroup(d Demographics, t time.Time) string {
	if !d.Known {
		return GroupUnset
	}
	return AgeBand(d.BirthDate, t)
}

type groupAcc struct {
	results, holds int
	delays         []int64
}

func breakdown(holds []Hold, unheld []Result, resultsKnown bool, minCell int) Breakdown {
	dims := []struct {
		key   func(Demographics, time.Time) string
		order []string
	}{
		{ageGroup, ageOrder},
		{func(d Demographics, _ time.Time) string { return SexGroup(d) }, nil},
		{func(d Demographics, _ time.Time) string { return LanguageGroup(d) }, nil},
	}
	var out [3][]Group
	for i, dim := range dims {
		acc := map[string]*groupAcc{}
		get := func(k string) *groupAcc {
			a := acc[k]
			if a == nil {
				a = &groupAcc{}
				acc[k] = a
			}
			return a
		}
		for _, h := range holds {
			a := get(dim.key(h.Demographics, resultTime(h)))
			a.results++
			a.holds++
			if d, ok, _ := releaseDelay(h); ok {
				a.delays = append(a.delays, d)
			}
		}
		for _, u := range unheld {
			get(dim.key(u.Demographics, u.At)).results++
		}
		keys := make([]string, 0, len(acc))
		for k := range acc {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if dim.order != nil {
				return cmp.Compare(slices.Index(dim.order, a), slices.Index(dim.order, b))
			}
			return cmp.Or(cmp.Compare(boolInt(a == GroupUnset), boolInt(b == GroupUnset)), cmp.Compare(a, b))
		})
		groups := make([]Group, 0, len(keys))
		for _, k := range keys {
			a := acc[k]
			res := Cell{N: a.results}
			if !resultsKnown {
				res = Cell{Unknown: true}
			}
			groups = append(groups, Group{Group: k, Results: res, Holds: Cell{N: a.holds}, Released: Cell{N: len(a.delays)}})
		}
		suppress(groups, minCell)
		for j := range groups {
			g, a := &groups[j], acc[keys[j]]
			if g.Results.Shown() && g.Holds.Shown() && g.Results.N > 0 {
				g.HoldRate = ratio(g.Holds.N, g.Results.N)
			}
			if g.Released.Shown() && g.Released.N > 0 {
				s := stats(a.delays)
				g.TimeToRelease = &s
			}
		}
		out[i] = groups
	}
	return Breakdown{AgeBand: out[0], Sex: out[1], Language: out[2]}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// suppress applies small-cell suppression to each count column of a
// breakdown: primary (1 ≤ n < minCell → "<minCell") and complementary (when
// exactly one cell of a column is suppressed, the smallest shown non-zero
// cell is withheld as "*", so the suppressed one cannot be derived from the
// published total).
func suppress(groups []Group, minCell int) {
	marker := "<" + strconv.Itoa(minCell)
	cols := []func(*Group) *Cell{
		func(g *Group) *Cell { return &g.Results },
		func(g *Group) *Cell { return &g.Holds },
		func(g *Group) *Cell { return &g.Released },
	}
	for _, col := range cols {
		suppressed := 0
		for i := range groups {
			c := col(&groups[i])
			if c.Unknown {
				continue
			}
			if c.N > 0 && c.N < minCell {
				c.Suppressed = marker
				suppressed++
			}
		}
		if suppressed != 1 {
			continue
		}
		best := -1
		for i := range groups {
			c := col(&groups[i])
			if c.Shown() && c.N > 0 && (best < 0 || c.N < col(&groups[best]).N) {
				best = i
			}
		}
		if best >= 0 {
			col(&groups[best]).Suppressed = "*"
		}
	}
}
