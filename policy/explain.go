package policy

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Explanation is what `resultgate explain` shows for one message: the tags
// with their evidence and the decision. Its JSON field names are stable (issue
// 3, section 4): control_id, tags[].tag, tags[].evidence[].{segment,
// occurrence, field, rule, match}, decision.{action, bases[].{kind, until,
// deadline}, deadline, notify, note}, ruleset_version. Fields may be added.
type Explanation struct {
	ControlID string `json:"control_id"`
	Tags      []Tag  `json:"tags"`
	// Suppressed are matches that did not count (negated, context), for review.
	Suppressed     []Tag        `json:"suppressed,omitempty"`
	Decision       DecisionJSON `json:"decision"`
	RulesetVersion string       `json:"ruleset_version"`
}

// DecisionJSON is the JSON form of a Decision in an Explanation. Times are
// RFC 3339 in UTC; deadline is null when there is none.
type DecisionJSON struct {
	Action          Action      `json:"action"`
	Bases           []BasisJSON `json:"bases"`
	Deadline        *string     `json:"deadline"`
	EarliestRelease *string     `json:"earliest_release,omitempty"`
	Notify          Notify      `json:"notify"`
	Note            string      `json:"note"`
	NoteLanguage    string      `json:"note_language,omitempty"`
	Disposition     string      `json:"disposition"`
	Jurisdiction    string      `json:"jurisdiction,omitempty"`
	StateLaw        string      `json:"state_law,omitempty"`
	ComplianceRisk  bool        `json:"compliance_risk,omitempty"`
	Warnings        []string    `json:"warnings,omitempty"`
}

// BasisJSON is the JSON form of a Basis in an Explanation.
type BasisJSON struct {
	Kind           BasisKind  `json:"kind"`
	Until          string     `json:"until"`
	Deadline       *string    `json:"deadline"`
	NotBefore      *string    `json:"not_before,omitempty"`
	ReviewEnds     bool       `json:"review_ends"`
	Citation       string     `json:"citation,omitempty"`
	Source         string     `json:"source,omitempty"`
	Detail         string     `json:"detail,omitempty"`
	ComplianceRisk bool       `json:"compliance_risk,omitempty"`
	TimeZone       string     `json:"time_zone,omitempty"`
	TimeZoneFrom   string     `json:"time_zone_from,omitempty"`
	Evidence       []Evidence `json:"evidence,omitempty"`
}

func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// Explain assembles the explanation of one message.
func Explain(r *Report, c Classification, d Decision) Explanation {
	x := Explanation{
		Tags: c.Tags, Suppressed: c.Suppressed, RulesetVersion: c.RulesetVersion,
		Decision: DecisionJSON{
			Action: d.Action, Bases: []BasisJSON{}, Deadline: jsonTime(d.Deadline),
			Notify: d.Notify, Note: d.Note, NoteLanguage: d.NoteLanguage, Disposition: d.Disposition,
			Jurisdiction: d.Jurisdiction, StateLaw: d.StateLaw, ComplianceRisk: d.ComplianceRisk, Warnings: d.Warnings,
		},
	}
	if r != nil {
		x.ControlID = r.ControlID
	}
	if x.Tags == nil {
		x.Tags = []Tag{}
	}
	if d.Action == ActionHold {
		x.Decision.EarliestRelease = jsonTime(d.EarliestRelease)
	}
	for _, b := range d.Bases {
		x.Decision.Bases = append(x.Decision.Bases, BasisJSON{
			Kind: b.Kind, Until: b.Until, Deadline: jsonTime(b.Deadline), NotBefore: jsonTime(b.NotBefore),
			ReviewEnds: b.ReviewEnds, Citation: b.Citation, Source: b.Source, Detail: b.Detail,
			ComplianceRisk: b.ComplianceRisk, TimeZone: b.TimeZone, TimeZoneFrom: b.TimeZoneFrom, Evidence: b.Evidence,
		})
	}
	return x
}

// WriteText writes the explanation for an integration engineer to read.
// Times are shown in loc (the sending facility's zone) and in UTC; a basis
// whose clock counts days in another zone shows its times in that zone and
// names it.
func (x Explanation) WriteText(w io.Writer, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	atIn := func(s *string, loc *time.Location) string {
		if s == nil {
			return "none"
		}
		t, err := time.Parse(time.RFC3339, *s)
		if err != nil {
			return *s
		}
		return fmt.Sprintf("%s (%s)", t.In(loc).Format("Mon 2006-01-02 15:04 MST"), *s)
	}
	at := func(s *string) string { return atIn(s, loc) }
	fmt.Fprintf(&b, "Message %s  (rule set %s)\n", orDash(x.ControlID), orDash(x.RulesetVersion))
	if len(x.Tags) == 0 {
		b.WriteString("  Tags: none\n")
	} else {
		b.WriteString("  Tags:\n")
		writeTags(&b, x.Tags)
	}
	if len(x.Suppressed) > 0 {
		b.WriteString("  Not counted (negated, context or history):\n")
		writeTags(&b, x.Suppressed)
	}
	d := x.Decision
	fmt.Fprintf(&b, "  Decision: %s (%s)\n", strings.ToUpper(string(d.Action)), d.Disposition)
	if d.Jurisdiction != "" {
		fmt.Fprintf(&b, "    Jurisdiction: %s\n", d.Jurisdiction)
	}
	if d.StateLaw != "" {
		fmt.Fprintf(&b, "    State law: %s\n", d.StateLaw)
	}
	for i, bs := range d.Bases {
		bloc := loc
		if bs.TimeZone != "" {
			if l, err := time.LoadLocation(bs.TimeZone); err == nil {
				bloc = l
			}
		}
		fmt.Fprintf(&b, "    Basis %d: %s, until %s, deadline %s\n", i+1, bs.Kind, bs.Until, atIn(bs.Deadline, bloc))
		if bs.NotBefore != nil {
			fmt.Fprintf(&b, "      not before: %s\n", atIn(bs.NotBefore, bloc))
		}
		if bs.TimeZone != "" {
			fmt.Fprintf(&b, "      days counted in: %s (%s)\n", bs.TimeZone, bs.TimeZoneFrom)
		}
		if bs.ReviewEnds {
			b.WriteString("      a clinician's review ends it\n")
		}
		for _, kv := range [][2]string{{"citation", bs.Citation}, {"source", bs.Source}, {"detail", bs.Detail}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, "      %s: %s\n", kv[0], kv[1])
			}
		}
		if bs.ComplianceRisk {
			b.WriteString("      COMPLIANCE RISK\n")
		}
		for _, e := range bs.Evidence {
			fmt.Fprintf(&b, "      evidence: %s\n", evidenceLine(e))
		}
	}
	if d.Action == ActionHold {
		fmt.Fprintf(&b, "    Deadline: %s\n", at(d.Deadline))
		fmt.Fprintf(&b, "    Earliest release: %s\n", at(d.EarliestRelease))
	}
	fmt.Fprintf(&b, "    Notify: %s\n", d.Notify)
	if d.Note != "" {
		fmt.Fprintf(&b, "    Note (%s): %s\n", d.NoteLanguage, d.Note)
	}
	if d.ComplianceRisk {
		b.WriteString("    COMPLIANCE RISK: a basis rests on organisational policy only\n")
	}
	if len(d.Warnings) > 0 {
		b.WriteString("    Warnings:\n")
		for _, wn := range d.Warnings {
			fmt.Fprintf(&b, "      - %s\n", wn)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTags(b *strings.Builder, tags []Tag) {
	for _, t := range tags {
		fmt.Fprintf(b, "    %s\n", t.Tag)
		for _, e := range t.Evidence {
			fmt.Fprintf(b, "      %s\n", evidenceLine(e))
		}
	}
}

func evidenceLine(e Evidence) string {
	var b strings.Builder
	if e.Segment != "" {
		fmt.Fprintf(&b, "%s[%d] ", e.Segment, e.Occurrence)
	}
	if e.Field != "" {
		b.WriteString(e.Field + " ")
	}
	fmt.Fprintf(&b, "rule %s", orDash(e.Rule))
	if e.Match != "" {
		fmt.Fprintf(&b, " match %q", e.Match)
	}
	if e.Layer != "" {
		fmt.Fprintf(&b, " [%s]", e.Layer)
	}
	if e.Modifier != "" {
		fmt.Fprintf(&b, " (%s)", e.Modifier)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
