package policy

import (
	"fmt"
	"strings"
	"time"
)

// Citations recorded on bases.
const (
	CitationPatientRequest = "patient's own request to delay (ONC information-blocking FAQ; 85 FR 25813); 45 CFR 171.202(e)"
	CitationPreventingHarm = "45 CFR 171.201 (preventing harm: individualized determination by a licensed health care professional)"
	CitationSenderFlag     = "HL7 v2 OBX-26 patient results release category (table 0909)"
	CitationDataError      = "45 CFR 171.201 (preventing harm: data known or reasonably suspected to be misidentified, corrupt or erroneous); HL7 v2 OBX-11 (table 0085)"
)

// patientRequest returns one basis per deny provision of the patient's
// preference that covers this result.
func (d *decision) patientRequest() []Basis {
	p := d.in.Preference
	if p == nil {
		return nil
	}
	if !p.MatchesPatient(d.r.PatientID) {
		d.warn("patient preference %s ignored: it is for another patient", p.ConsentID)
		return nil
	}
	if p.Revoked() {
		d.warn("patient preference %s is revoked (Consent.status inactive): no patient-request basis", p.ConsentID)
		return nil
	}
	if !p.Start.IsZero() && d.now.Before(p.Start) {
		d.warn("patient preference %s not yet in effect (starts %s)", p.ConsentID, p.Start.UTC().Format(time.RFC3339))
		return nil
	}
	if !p.End.IsZero() && !d.now.Before(p.End) {
		d.warn("patient preference %s expired at %s", p.ConsentID, p.End.UTC().Format(time.RFC3339))
		return nil
	}
	if len(p.Provisions) == 0 {
		d.immediate = append(d.immediate, "the patient asked to see results at once")
		return nil
	}
	var out []Basis
	for _, pv := range p.Provisions {
		match, ok := pv.Matches(d.r, d.in.Classification)
		if !ok {
			continue
		}
		max := pv.Max
		maxNote := ""
		if max <= 0 {
			max = d.e.cfg.PatientRequest.DefaultMax.D()
			if max <= 0 {
				max = DefaultPatientRequestMax
			}
			maxNote = " (default maximum: the Consent names none)"
		}
		b := Basis{
			Kind: BasisPatientRequest, Until: pv.Until,
			Citation: CitationPatientRequest,
			Source:   "Consent/" + p.ConsentID + " " + pv.Path,
			Evidence: []Evidence{{Segment: "Consent", Field: pv.Path + ".code", Rule: "consent-deny", Match: match, Layer: "patient-preference"}},
		}
		maxAt := d.start.Add(max)
		delayAt := d.start.Add(pv.Delay)
		switch pv.Until {
		case UntilClinicianReview:
			b.ReviewEnds, b.Deadline = true, maxAt
			b.Detail = fmt.Sprintf("the patient asked to see %s results only after a clinician has reviewed them; maximum %s%s", match, Duration(max), maxNote)
		case UntilElapsed:
			b.Deadline = earlierTime(delayAt, maxAt)
			b.Detail = fmt.Sprintf("the patient asked to see %s results %s after they arrive", match, Duration(pv.Delay))
		case UntilEarlierOf:
			b.ReviewEnds, b.Deadline = true, earlierTime(delayAt, maxAt)
			b.Detail = fmt.Sprintf("the patient asked to see %s results after clinician review or %s, whichever comes first", match, Duration(pv.Delay))
		case UntilLaterOf:
			b.ReviewEnds, b.NotBefore, b.Deadline = true, earlierTime(delayAt, maxAt), maxAt
			b.Detail = fmt.Sprintf("the patient asked to see %s results after clinician review and at least %s, whichever comes later; maximum %s%s", match, Duration(pv.Delay), Duration(max), maxNote)
		default:
			d.warn("patient preference %s %s: unsupported end condition %q ignored", p.ConsentID, pv.Path, pv.Until)
			continue
		}
		out = append(out, b)
	}
	return out
}

// stateLaw returns the state-law basis of the jurisdiction's rule, if the
// rule covers the result, and a sentence saying whether a state-law rule
// applies and, when none does, why.
func (d *decision) stateLaw(j string) ([]Basis, string) {
	if j == "" {
		return nil, fmt.Sprintf("no state-law rule applies: no jurisdiction is configured for this result (sending facility %q is not in policy.facility_jurisdictions and policy.jurisdiction is not set)", d.in.Facility)
	}
	rule, ok := d.e.rules[j]
	if !ok {
		d.warn("jurisdiction %s has no rule in policy.jurisdictions: no state law applied", j)
		return nil, fmt.Sprintf("no state-law rule applies: jurisdiction %s has no rule in policy.jurisdictions", j)
	}
	if rule.NoStateLaw {
		says := fmt.Sprintf("no state-law rule applies: jurisdiction %s is configured with no_state_law", j)
		if rule.Note != "" {
			says += " (" + rule.Note + ")"
		}
		return nil, says
	}
	tags := matchTags(d.in.Classification, rule.AppliesTo)
	if tags == nil {
		return nil, fmt.Sprintf("no state-law rule applies: the %s rule (%s) covers results tagged %s, and this result has none of those combinations", j, rule.Citation, tagSets(rule.AppliesTo))
	}
	from, fallback := d.finalised()
	cal, zoneFrom := d.e.StatuteZone(j, d.in.Facility)
	end := cal.Apply(rule.Clock, from)
	b := Basis{
		Kind: BasisStateLaw, Citation: rule.Citation, Deadline: end, Tags: tags,
		Source:   "jurisdiction " + j,
		Evidence: tagEvidence(d.in.Classification, tags),
	}
	if rule.Clock.Hours == 0 {
		// A clock of hours is absolute; days are counted in a zone.
		b.TimeZone, b.TimeZoneFrom = cal.Location().String(), zoneFrom
	}
	if rule.Statute != "" {
		b.Source += " (preset " + rule.Statute + ")"
	}
	clock := rule.Clock.String()
	switch {
	case rule.Clock.NotBeforeDay > 0:
		b.Until, b.NotBefore = UntilNotBefore, end
		b.Detail = fmt.Sprintf("%s: not released before day %d after finalisation (%s, %s)", j, rule.Clock.NotBeforeDay, from.In(cal.Location()).Format("2006-01-02"), cal.Location())
	case rule.ProviderMayReleaseEarlier != nil && *rule.ProviderMayReleaseEarlier:
		b.Until, b.ReviewEnds = UntilEarlierOf, true
		b.Detail = fmt.Sprintf("%s: held %s after finalisation unless the provider directs earlier release", j, clock)
	default:
		b.Until = UntilElapsed
		b.Detail = fmt.Sprintf("%s: held %s after finalisation", j, clock)
	}
	if fallback != "" {
		b.Detail = appendSentence(b.Detail, fallback)
		d.warn("state law %s: %s", j, fallback)
	}
	if rule.Note != "" {
		b.Detail = appendSentence(b.Detail, rule.Note)
	}
	says := fmt.Sprintf("the %s rule applies (%s): %s after finalisation", j, rule.Citation, clock)
	if b.TimeZone != "" {
		says += fmt.Sprintf(", days counted in %s (%s)", b.TimeZone, zoneFrom)
	}
	return []Basis{b}, says
}

// tagSets formats tag combinations as [a+b], [c].
func tagSets(sets [][]string) string {
	parts := make([]string, len(sets))
	for i, s := range sets {
		parts[i] = "[" + strings.Join(s, "+") + "]"
	}
	return strings.Join(parts, ", ")
}

// clinician returns one basis per valid determination covering the result.
func (d *decision) clinician() []Basis {
	var out []Basis
	for i, det := range d.in.Determinations {
		if !samePatient(det.PatientID, d.r.PatientID) {
			continue
		}
		if det.OrderFiller != "" && !d.hasOrder(det.OrderFiller) {
			continue
		}
		var missing []string
		for _, f := range []struct{ name, v string }{{"by", det.By}, {"role", det.Role}, {"reason", det.Reason}} {
			if strings.TrimSpace(f.v) == "" {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			d.warn("clinician determination %d ignored: missing %s", i, strings.Join(missing, ", "))
			continue
		}
		at := det.At
		if at.IsZero() {
			at = d.now
		}
		end := det.Until
		review := ""
		if end.IsZero() {
			rv := d.e.cfg.ClinicianDetermination.DefaultReview.D()
			if rv <= 0 {
				rv = DefaultDeterminationReview
			}
			end = at.Add(rv)
			review = fmt.Sprintf("; no review date given: review due %s after the determination", Duration(rv))
		}
		harm := det.HarmType
		if harm == "" {
			harm = "unspecified"
		}
		out = append(out, Basis{
			Kind: BasisClinicianDetermination, Until: UntilClinicianRelease, Deadline: end,
			Citation: CitationPreventingHarm,
			Source:   fmt.Sprintf("determination by %s (%s) at %s", det.By, det.Role, at.UTC().Format(time.RFC3339)),
			Detail:   fmt.Sprintf("individual Preventing-Harm determination, harm type %s: %s%s", harm, det.Reason, review),
		})
	}
	return out
}

func (d *decision) hasOrder(id string) bool {
	for _, o := range d.r.Orders {
		if hl7IDPart(o.FillerID) == hl7IDPart(id) || hl7IDPart(o.PlacerID) == hl7IDPart(id) {
			return true
		}
	}
	return false
}

// dataError returns a basis when the result is suspect: some observations
// deleted or marked wrong, no patient identifier, or the caller's suspicion.
func (d *decision) dataError() []Basis {
	var reasons []string
	var ev []Evidence
	for _, o := range d.r.Orders {
		for _, x := range o.Observations {
			if s := strings.ToUpper(x.Status); s == "W" || s == "D" {
				ev = append(ev, statusEvidence(x))
			}
		}
	}
	if len(ev) > 0 {
		reasons = append(reasons, fmt.Sprintf("%d observation(s) deleted or marked wrong (OBX-11 D/W) beside others that are not", len(ev)))
	}
	if strings.TrimSpace(d.r.PatientID) == "" {
		reasons = append(reasons, "no patient identifier (PID-3)")
		ev = append(ev, Evidence{Segment: "PID", Occurrence: 1, Field: "PID-3", Rule: "patient-id-missing", Layer: "status"})
	}
	if s := strings.TrimSpace(d.in.SuspectedDataError); s != "" {
		reasons = append(reasons, s)
	}
	if len(reasons) == 0 {
		return nil
	}
	max := d.e.cfg.DataError.Max.D()
	if max <= 0 {
		max = DefaultDataErrorMax
	}
	return []Basis{{
		Kind: BasisDataError, Until: UntilCorrection, Deadline: d.start.Add(max),
		Citation: CitationDataError, Source: "sender",
		Detail:   "suspected data error: " + strings.Join(reasons, "; ") + "; awaiting a correction from the sender",
		Evidence: ev,
	}}
}

// senderFlags returns the bases from OBX-26 release categories, one per
// category present.
func (d *decision) senderFlags() []Basis {
	type group struct {
		ev       []Evidence
		abnormal bool
		noFlags  bool
	}
	groups := map[string]*group{}
	var order []string
	for _, o := range d.r.Orders {
		for _, x := range o.Observations {
			code := strings.ToUpper(strings.TrimSpace(x.ReleaseCategory))
			if i := strings.IndexByte(code, '^'); i >= 0 {
				code = code[:i]
			}
			if code == "" {
				continue
			}
			g, ok := groups[code]
			if !ok {
				g = &group{}
				groups[code] = g
				order = append(order, code)
			}
			g.ev = append(g.ev, Evidence{Segment: "OBX", Occurrence: x.Loc.Occurrence, Field: "OBX-26", Rule: "sender-flag-" + code, Match: code, Layer: "sender-flag"})
			if abnormal(x.AbnormalFlags) {
				g.abnormal = true
			}
			if len(x.AbnormalFlags) == 0 {
				g.noFlags = true
			}
		}
	}
	from, fallback := d.finalised()
	cal, zoneFrom := d.e.FacilityZone(d.in.Facility)
	var out []Basis
	for _, code := range order {
		g := groups[code]
		if !inList(SenderFlagCodes, code) {
			d.warn("unknown OBX-26 release category %q ignored", code)
			continue
		}
		if d.e.senderOff[code] {
			d.warn("OBX-26 release category %s ignored by configuration", code)
			continue
		}
		days := d.e.senderDays[code]
		b := Basis{Kind: BasisSenderFlag, Citation: CitationSenderFlag, Source: "OBX-26 " + code, Evidence: g.ev}
		delayed := func(what string) {
			b.Until = UntilElapsed
			b.Deadline = cal.AddBusinessDays(from, days)
			b.TimeZone, b.TimeZoneFrom = cal.Location().String(), zoneFrom
			b.Detail = fmt.Sprintf("%s: %s, shared after %s", code, what, pluralUnit(days, "business day"))
			if fallback != "" {
				b.Detail = appendSentence(b.Detail, fallback)
			}
		}
		switch code {
		case "SIMM":
			d.immediate = append(d.immediate, "the sender marked the result SIMM (share immediately)")
			continue
		case "STBD":
			d.warn("OBX-26 STBD (share to be determined): no sender-flag basis")
			continue
		case "SID":
			delayed("share in 1 day regardless of range")
		case "SWNL":
			if !g.abnormal {
				if g.noFlags {
					d.warn("OBX-26 SWNL with no OBX-8 flags: treated as within normal limits")
				}
				continue
			}
			delayed("out of the reference range")
		case "SIDC":
			if g.abnormal {
				b.Until, b.ReviewEnds = UntilClinicianReview, true
				b.Deadline = d.start.Add(d.e.senderMax[code])
				b.Detail = fmt.Sprintf("SIDC: out of the reference range, withheld until physician release; maximum %s", Duration(d.e.senderMax[code]))
			} else {
				delayed("within the reference range")
			}
		case "SWTH":
			b.Until, b.ReviewEnds = UntilClinicianReview, true
			b.Deadline = d.start.Add(d.e.senderMax[code])
			b.Detail = fmt.Sprintf("SWTH: withheld until physician release; maximum %s (a hold never stays open)", Duration(d.e.senderMax[code]))
		}
		out = append(out, b)
	}
	return out
}

// abnormal reports whether any OBX-8 flag marks the value outside the
// reference range (anything but N, normal, or empty).
func abnormal(flags []string) bool {
	for _, f := range flags {
		f = strings.ToUpper(strings.TrimSpace(f))
		if f != "" && f != "N" {
			return true
		}
	}
	return false
}

// organisational returns the organisational-policy basis when configured,
// applicable and not overridden by an explicit instruction to share.
func (d *decision) organisational() []Basis {
	op := d.e.cfg.OrganisationalPolicy
	if op == nil {
		return nil
	}
	tags := matchTags(d.in.Classification, op.AppliesTo)
	if tags == nil {
		return nil
	}
	if len(d.immediate) > 0 {
		d.warn("organisational policy not applied: %s", strings.Join(d.immediate, "; "))
		return nil
	}
	max := d.start.Add(op.Max.D())
	b := Basis{
		Kind: BasisOrganisationalPolicy, Citation: op.WrittenPolicy, Tags: tags,
		Source: "organisational policy", ComplianceRisk: true,
		Evidence: tagEvidence(d.in.Classification, tags),
	}
	delay := time.Duration(op.Hours) * time.Hour
	switch op.Until {
	case "", UntilClinicianReview:
		b.Until, b.ReviewEnds, b.Deadline = UntilClinicianReview, true, max
	case UntilElapsed:
		b.Until, b.Deadline = UntilElapsed, earlierTime(d.start.Add(delay), max)
	case UntilEarlierOf:
		b.Until, b.ReviewEnds, b.Deadline = UntilEarlierOf, true, earlierTime(d.start.Add(delay), max)
	}
	b.Detail = fmt.Sprintf("organisational policy %q; not a recognised exception by itself: a blanket delay is likely interference (85 FR 25642, 25842)", op.WrittenPolicy)
	d.warn("compliance risk: hold rests on organisational policy %q", op.WrittenPolicy)
	return []Basis{b}
}

// hl7IDPart returns the first component of an HL7 identifier ("123^^^MRN" → "123").
func hl7IDPart(s string) string {
	if i := strings.IndexByte(s, '^'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// samePatient compares patient identifiers: exactly when both carry an
// assigning authority, else by the identifier alone.
func samePatient(a, b string) bool {
	if strings.TrimSpace(a) == "" || strings.TrimSpace(b) == "" {
		return false
	}
	if strings.Contains(a, "^") && strings.Contains(b, "^") {
		return a == b || (hl7IDPart(a) == hl7IDPart(b) && hl7Authority(a) == hl7Authority(b))
	}
	return hl7IDPart(a) == hl7IDPart(b)
}

func hl7Authority(s string) string {
	parts := strings.Split(s, "^")
	if len(parts) >= 4 {
		return strings.TrimSpace(parts[3])
	}
	return ""
}
