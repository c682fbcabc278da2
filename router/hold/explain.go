package hold

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resultgate/resultgate/policy"
)

// WhenLayout is how a person reads an instant of a hold: weekday, day, month,
// time and zone ("Thu 10 Dec, 00:00 CST").
const WhenLayout = "Mon 2 Jan, 15:04 MST"

// When formats t for a person in the zone named zone when it names a
// loadable IANA zone, else in loc (UTC when nil): a statute that counts days
// in Texas shows Texas time (DESIGN.md non-negotiable 14), everything else the
// site's configured zone.
func When(t time.Time, zone string, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(zoneOr(zone, loc)).Format(WhenLayout)
}

func zoneOr(zone string, loc *time.Location) *time.Location {
	if zone != "" {
		if z, err := time.LoadLocation(zone); err == nil {
			return z
		}
	}
	if loc == nil {
		return time.UTC
	}
	return loc
}

// stateNames maps the US jurisdictions of policy.jurisdictions (US-XX) to the
// name a clinician reads ("Texas law").
var stateNames = map[string]string{
	"AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
	"CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
	"FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
	"IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
	"ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
	"MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
	"NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
	"NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
	"PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
	"TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
	"WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
	"PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands",
}

// Jurisdiction returns the jurisdiction code (US-TX) a state-law basis names
// in its source ("jurisdiction US-TX (preset ...)"), or "".
func Jurisdiction(b policy.Basis) string {
	s, ok := strings.CutPrefix(b.Source, "jurisdiction ")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(s, ' '); i >= 0 {
		s = s[:i]
	}
	return s
}

// LawName names the law of a state-law basis as a person says it: "Texas
// law" for US-TX, the jurisdiction code itself for one without a name here.
func LawName(b policy.Basis) string {
	j := Jurisdiction(b)
	if st, ok := strings.CutPrefix(j, "US-"); ok {
		if n, ok := stateNames[st]; ok {
			return n + " law"
		}
	}
	if j == "" {
		return "State law"
	}
	return j + " law"
}

// firstClause returns s up to its first "; " (the policy's details add the
// maximum and fallbacks after one).
func firstClause(s string) string {
	if i := strings.Index(s, "; "); i >= 0 {
		return s[:i]
	}
	return s
}

// BasisText says in plain words why b holds a result and until when, with
// its times in the basis's own zone when it counts days in one, else in loc:
//
//	Patient asked to see it after you review it (at the latest Mon 21 Dec, 09:00 EST)
//	Texas law (Tex. Occ. Code § 159.0062): not before Thu 10 Dec, 00:00 CST
//	Sender withheld it: SWTH: withheld until physician release (at the latest ...)
//
// It is the one rendering of a basis for people: the web page (through the
// API's basis_text), `resultgate holds show` and the compliance report.
func BasisText(b policy.Basis, loc *time.Location) string {
	at := func(t time.Time) string { return When(t, b.TimeZone, loc) }
	latest := ""
	if !b.Deadline.IsZero() {
		latest = " (at the latest " + at(b.Deadline) + ")"
	}
	switch b.Kind {
	case policy.BasisPatientRequest:
		switch b.Until {
		case policy.UntilClinicianReview:
			return "Patient asked to see it after you review it" + latest
		case policy.UntilElapsed:
			return "Patient asked to see it later: not before " + at(b.Deadline)
		case policy.UntilEarlierOf:
			return "Patient asked to see it after you review it or at " + at(b.Deadline) + ", whichever comes first"
		case policy.UntilLaterOf:
			return "Patient asked to see it after you review it, and not before " + at(b.NotBefore) + latest
		}
		return "Patient asked to delay it" + latest
	case policy.BasisStateLaw:
		law := LawName(b)
		if b.Citation != "" {
			law += " (" + b.Citation + ")"
		}
		switch b.Until {
		case policy.UntilNotBefore:
			nb := b.NotBefore
			if nb.IsZero() {
				nb = b.Deadline
			}
			return law + ": not before " + at(nb)
		case policy.UntilEarlierOf, policy.UntilClinicianReview:
			return law + ": held until " + at(b.Deadline) + " unless you release it sooner"
		}
		return law + ": held until " + at(b.Deadline)
	case policy.BasisClinicianDetermination:
		who := ""
		if s, ok := strings.CutPrefix(b.Source, "determination by "); ok {
			if i := strings.Index(s, " ("); i >= 0 {
				s = s[:i]
			}
			who = " by " + s
		}
		why := ""
		if _, reason, ok := strings.Cut(firstClause(b.Detail), ": "); ok && reason != "" {
			why = ": " + reason
		}
		return "Clinician's determination" + who + " that seeing it now could harm the patient" + why +
			"; held until that clinician (or one covering them) releases it or on-call overrides, review due " + at(b.Deadline)
	case policy.BasisDataError:
		what := strings.TrimPrefix(firstClause(b.Detail), "suspected data error: ")
		if what == "" {
			what = "the sender's data may be wrong"
		}
		if b.Until == policy.UntilWithdrawn {
			return "Possible data error: " + what
		}
		return "Possible data error (" + what + "): waiting for the sender's correction" + latest
	case policy.BasisSenderFlag:
		detail := firstClause(b.Detail)
		if detail == "" {
			detail = "flagged by the sending system (OBX-26)"
		}
		if b.ReviewEnds {
			return "Sender withheld it: " + detail + latest
		}
		if b.Deadline.IsZero() {
			return "Sender delayed it: " + detail
		}
		return "Sender delayed it: " + detail + " (until " + at(b.Deadline) + ")"
	case policy.BasisOrganisationalPolicy:
		ref := ""
		if b.Citation != "" {
			ref = " (" + b.Citation + ")"
		}
		return "Organisation's policy" + ref + ", a compliance risk: held until " + at(b.Deadline)
	}
	return string(b.Kind) + latest
}

// KindText names a basis kind in plain words, for what is counted by kind
// (the compliance report), in the words BasisText starts with.
func KindText(kind string) string {
	switch policy.BasisKind(kind) {
	case policy.BasisPatientRequest:
		return "Patient's request"
	case policy.BasisStateLaw:
		return "State law"
	case policy.BasisClinicianDetermination:
		return "Clinician's determination (preventing harm)"
	case policy.BasisDataError:
		return "Possible data error"
	case policy.BasisSenderFlag:
		return "Sender's flag (OBX-26)"
	case policy.BasisOrganisationalPolicy:
		return "Organisation's policy (compliance risk)"
	}
	return kind
}

// BasesText returns the plain words of each basis of bs, in order, each text
// once: a result two of whose observations carry the same sender flag, or a
// basis recorded again by a re-evaluation, reads as one reason.
func BasesText(bs []Basis, loc *time.Location) []string {
	out := make([]string, 0, len(bs))
	for i, pb := range PolicyBases(bs) {
		if pb.Kind == "" {
			pb.Kind = policy.BasisKind(bs[i].Kind) // a detail without its kind
		}
		t := BasisText(pb, loc)
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Left says how long is left until deadline at now in a person's terms: "2 d
// 3 h", "5 h 10 min", "40 min", "under a minute", or "due" once it has passed.
func Left(deadline, now time.Time) string {
	d := deadline.Sub(now)
	if d <= 0 {
		return "due"
	}
	if d < time.Minute {
		return "under a minute"
	}
	m := int(d / time.Minute)
	days, hours, mins := m/(24*60), m/60%24, m%60
	switch {
	case days > 0 && hours > 0:
		return strconv.Itoa(days) + " d " + strconv.Itoa(hours) + " h"
	case days > 0:
		return strconv.Itoa(days) + " d"
	case hours > 0 && mins > 0:
		return strconv.Itoa(hours) + " h " + strconv.Itoa(mins) + " min"
	case hours > 0:
		return strconv.Itoa(hours) + " h"
	}
	return strconv.Itoa(mins) + " min"
}
