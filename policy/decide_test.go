package policy

import (
	"strings"
	"testing"
	"time"
)

// Fixed clock for decision tests: Monday 2 March 2026, 10:00 in New York (EST).
var (
	tRecv  = time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
	tFinal = time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC)
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type reportOpt func(*Report)

func rep(opts ...reportOpt) *Report {
	r := &Report{
		ControlID: "MSG0001", PatientID: "MRN1^^^HOSP^MR", ReceivedAt: tRecv,
		Orders: []Order{{
			PlacerID: "P100", FillerID: "F200^LAB",
			Service:        Coded{Code: "11529-5", System: "LN", Text: "Surgical pathology study"},
			ServiceSection: "SP", ServiceSectionLoc: Location{Segment: "OBR", Occurrence: 1, Field: "OBR-24"},
			ResultStatus: "F", FinalizedAt: tFinal,
			Observations: []Observation{{
				SetID: "1", ValueType: "TX", ID: Coded{Code: "22637-3", System: "LN"}, Status: "F",
				Texts: []Text{{Value: "Final diagnosis: see report."}},
				Loc:   Location{Segment: "OBX", Occurrence: 1, Field: "OBX-5"},
			}},
			Loc: Location{Segment: "OBR", Occurrence: 1},
		}},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func final(t time.Time) reportOpt { return func(r *Report) { r.Orders[0].FinalizedAt = t } }
func noFinal() reportOpt          { return final(time.Time{}) }
func lang(l string) reportOpt     { return func(r *Report) { r.Language = l } }
func pid(p string) reportOpt      { return func(r *Report) { r.PatientID = p } }
func section(s string) reportOpt  { return func(r *Report) { r.Orders[0].ServiceSection = s } }
func obr25(s string) reportOpt    { return func(r *Report) { r.Orders[0].ResultStatus = s } }
func jur(j string) reportOpt      { return func(r *Report) { r.Jurisdiction = j } }
func received(t time.Time) reportOpt {
	return func(r *Report) { r.ReceivedAt = t }
}

// obx sets the observations' OBX-11 statuses (adding observations as needed).
func obx(statuses ...string) reportOpt {
	return func(r *Report) {
		var obs []Observation
		for i, s := range statuses {
			obs = append(obs, Observation{
				SetID: string(rune('1' + i)), ValueType: "NM", ID: Coded{Code: "2857-1", System: "LN"}, Status: s,
				Loc: Location{Segment: "OBX", Occurrence: i + 1, Field: "OBX-5"},
			})
		}
		r.Orders[0].Observations = obs
	}
}

// flag sets OBX-26 and OBX-8 on the first observation.
func flag(code string, abnormal ...string) reportOpt {
	return func(r *Report) {
		r.Orders[0].Observations[0].ReleaseCategory = code
		r.Orders[0].Observations[0].AbnormalFlags = abnormal
	}
}

// secondOrder adds a second order finalised at t.
func secondOrder(t time.Time) reportOpt {
	return func(r *Report) {
		o := r.Orders[0]
		o.FillerID, o.PlacerID, o.FinalizedAt = "F201^LAB", "P101", t
		o.Loc = Location{Segment: "OBR", Occurrence: 2}
		r.Orders = append(r.Orders, o)
	}
}

func obxID(code string) reportOpt {
	return func(r *Report) {
		r.Orders[0].Service = Coded{Code: "X1", System: "L"}
		r.Orders[0].Observations[0].ID = Coded{Code: "LOCAL9", System: "99LAB", Alt: []Coded{{Code: code, System: "LN"}}}
	}
}

func cls(tags ...string) Classification {
	c := Classification{RulesetVersion: "test-1"}
	for _, t := range tags {
		c.Tags = append(c.Tags, Tag{Tag: t, Evidence: []Evidence{{Segment: "OBR", Occurrence: 1, Field: "OBR-24", Rule: "test." + t, Match: t}}})
	}
	return c
}

func pref(until string, delay, max time.Duration, codes ...Coding) *Preference {
	return &Preference{
		ConsentID: "c1", PatientReference: "Patient/1", Status: "active",
		Provisions: []Provision{{Path: "Consent.provision.provision[0]", Codes: codes, Until: until, Delay: delay, Max: max}},
	}
}

var (
	pathologyPart = Coding{SystemLOINC, LOINCPartPathology}
	radiologyPart = Coding{SystemLOINC, LOINCPartRadiology}
)

func tagCode(t string) Coding { return Coding{TagCodeSystem, t} }

const day = 24 * time.Hour

func ny() Config { return Config{TimeZone: "America/New_York"} }

func withJur(c Config, j string, r JurisdictionRule) Config {
	if c.Jurisdictions == nil {
		c.Jurisdictions = map[string]JurisdictionRule{}
	}
	c.Jurisdictions[j] = r
	return c
}

func ky() Config {
	c := withJur(ny(), "US-KY", JurisdictionRule{Statute: "US-KY-KRS-333.152"})
	c.Jurisdiction = "US-KY"
	return c
}

func tx() Config {
	c := withJur(Config{TimeZone: "America/Chicago"}, "US-TX", JurisdictionRule{Statute: "US-TX-OCC-159.0062"})
	c.Jurisdiction = "US-TX"
	return c
}

func orgCfg(until string, hours int) Config {
	c := ny()
	c.OrganisationalPolicy = &OrgPolicy{
		WrittenPolicy: "POL-LAB-017 v3", AppliesTo: [][]string{{TagMalignancy}},
		Until: until, Hours: hours, Max: Duration(5 * day),
	}
	return c
}

// want describes the parts of a Decision a case checks. Bases are written
// "kind/until/deadline" with the deadline in UTC RFC 3339.
type want struct {
	action      Action
	disposition string
	bases       []string
	deadline    string
	earliest    string
	notify      Notify
	noteLang    string
	warn        string
	risk        bool
	detail      string // substring of some basis detail
}

func TestDecide(t *testing.T) {
	fiveDays := Config{TimeZone: "America/New_York", PatientRequest: PatientRequestConfig{DefaultMax: Duration(5 * day)}}
	spanishDefault := Config{DefaultLanguage: "es"}
	noQuiet := Config{Notify: NotifyConfig{QuietTags: []string{}}}
	customTemplates := Config{Templates: map[string]map[string]string{TagMalignancy: {"en": "Talk to us.", "fr": "Parlez-nous."}}}
	short := ny()
	short.MaxHold = Duration(2 * day)
	kyNoEarly := withJur(ny(), "US-KY", JurisdictionRule{Statute: "US-KY-KRS-333.152", ProviderMayReleaseEarlier: boolPtr(false)})
	kyNoEarly.Jurisdiction = "US-KY"
	mt := withJur(ny(), "US-MT", JurisdictionRule{Statute: "US-MT-MCA-50-16-806"})
	mt.Jurisdiction = "US-MT"
	facilities := ky()
	facilities.Jurisdiction = ""
	facilities.FacilityJurisdictions = map[string]string{"LEXPATH": "US-KY"}
	calDays := withJur(ny(), "X", JurisdictionRule{Citation: "test", AppliesTo: [][]string{{TagPathology}}, Clock: Clock{CalendarDays: 2}})
	calDays.Jurisdiction = "X"
	busDays := withJur(ny(), "X", JurisdictionRule{Citation: "test", AppliesTo: [][]string{{TagPathology}}, Clock: Clock{BusinessDays: 2}})
	busDays.Jurisdiction = "X"
	holidays := busDays
	holidays.Holidays = []string{"2026-03-09"}
	oneBus := withJur(ny(), "X", JurisdictionRule{Citation: "test", AppliesTo: [][]string{{TagPathology}}, Clock: Clock{BusinessDays: 1}})
	oneBus.Jurisdiction = "X"
	hoursRule := withJur(ny(), "X", JurisdictionRule{Citation: "test", AppliesTo: [][]string{{TagPathology}}, Clock: Clock{Hours: 48}})
	hoursRule.Jurisdiction = "X"
	sidOff := ny()
	sidOff.SenderFlags = map[string]SenderFlagRule{"SID": {Ignore: true}}
	sid3 := ny()
	sid3.SenderFlags = map[string]SenderFlagRule{"SID": {BusinessDays: 3}}
	swth3 := ny()
	swth3.SenderFlags = map[string]SenderFlagRule{"SWTH": {Max: Duration(3 * day)}}
	kyOrg := ky()
	kyOrg.OrganisationalPolicy = orgCfg("", 0).OrganisationalPolicy
	dataErr3 := ny()
	dataErr3.DataError.Max = Duration(3 * day)

	det := Determination{PatientID: "MRN1", By: "NPI1234567890", Role: "ordering physician", Reason: "patient in crisis; disclose in clinic", HarmType: "physical", At: tRecv, Until: utc("2026-03-06T15:00:00Z")}
	detOrder := det
	detOrder.OrderFiller = "F200"
	detOther := det
	detOther.OrderFiller = "F999"
	detNoReason := det
	detNoReason.Reason = ""
	detNoUntil := det
	detNoUntil.Until = time.Time{}
	detExpired := det
	detExpired.Until = utc("2026-03-01T00:00:00Z")

	immediately := &Preference{ConsentID: "c0", Status: "active", Provisions: []Provision{}}
	revoked := pref(UntilClinicianReview, 0, 0, pathologyPart)
	revoked.Status = "inactive"
	otherPatient := pref(UntilClinicianReview, 0, 0, pathologyPart)
	otherPatient.PatientIdentifier = "MRN999"
	samePatient := pref(UntilClinicianReview, 0, 0, pathologyPart)
	samePatient.PatientIdentifier = "MRN1"
	expired := pref(UntilClinicianReview, 0, 0, pathologyPart)
	expired.End = utc("2026-01-01T00:00:00Z")
	notYet := pref(UntilClinicianReview, 0, 0, pathologyPart)
	notYet.Start = utc("2026-04-01T00:00:00Z")
	twoProvisions := pref(UntilClinicianReview, 0, 10*day, radiologyPart)
	twoProvisions.Provisions = append(twoProvisions.Provisions, Provision{Path: "Consent.provision.provision[1]", Codes: []Coding{tagCode(TagMalignancy)}, Until: UntilElapsed, Delay: 72 * time.Hour})

	tests := []struct {
		name string
		cfg  Config
		in   Input
		want want
	}{
		// ---- no basis: release, tags shape notification and note
		{name: "routine lab releases with push and no note", in: Input{Report: rep(section("CH")), Classification: cls()},
			want: want{action: ActionRelease, disposition: DispositionNew, notify: NotifyPush}},
		{name: "malignancy without basis releases quietly with a note", in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionRelease, notify: NotifyQuiet, noteLang: "en"}},
		{name: "pathology alone releases with push and a pathology note", in: Input{Report: rep(), Classification: cls(TagPathology)},
			want: want{action: ActionRelease, notify: NotifyPush, noteLang: "en"}},
		{name: "genetic result is quiet", in: Input{Report: rep(), Classification: cls(TagGenetic)},
			want: want{action: ActionRelease, notify: NotifyQuiet, noteLang: "en"}},
		{name: "imaging only pushes", in: Input{Report: rep(section("CT")), Classification: cls(TagImaging)},
			want: want{action: ActionRelease, notify: NotifyPush, noteLang: "en"}},
		{name: "note in Spanish from PID-15 SPA", in: Input{Report: rep(lang("SPA^Spanish^ISO6392")), Classification: cls(TagMalignancy)},
			want: want{action: ActionRelease, notify: NotifyQuiet, noteLang: "es"}},
		{name: "note in Spanish from es-US", in: Input{Report: rep(lang("es-US")), Classification: cls(TagPathology)},
			want: want{action: ActionRelease, noteLang: "es"}},
		{name: "PID-15 without template falls back to default", in: Input{Report: rep(lang("vie")), Classification: cls(TagMalignancy)},
			want: want{action: ActionRelease, noteLang: "en"}},
		{name: "configured default language", cfg: spanishDefault, in: Input{Report: rep(), Classification: cls(TagMalignancy)},
			want: want{action: ActionRelease, noteLang: "es"}},
		{name: "configured template adds a language", cfg: customTemplates, in: Input{Report: rep(lang("fre")), Classification: cls(TagMalignancy)},
			want: want{action: ActionRelease, noteLang: "fr"}},
		{name: "empty quiet_tags makes every notification push", cfg: noQuiet, in: Input{Report: rep(), Classification: cls(TagMalignancy)},
			want: want{action: ActionRelease, notify: NotifyPush}},

		// ---- patient request
		{name: "patient: until clinician review with the Consent's maximum", cfg: ny(),
			in:   Input{Report: rep(), Classification: cls(TagPathology), Preference: pref(UntilClinicianReview, 0, 10*day, pathologyPart)},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-12T15:00:00Z"}, deadline: "2026-03-12T15:00:00Z", earliest: "2026-03-02T15:00:00Z", notify: NotifyPush}},
		{name: "patient: clinician review with no maximum takes the configured default", cfg: fiveDays,
			in:   Input{Report: rep(), Classification: cls(TagPathology), Preference: pref(UntilClinicianReview, 0, 0, pathologyPart)},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-07T15:00:00Z"}, detail: "default maximum"}},
		{name: "patient: clinician review with no maximum anywhere takes 14 days",
			in:   Input{Report: rep(), Classification: cls(TagPathology), Preference: pref(UntilClinicianReview, 0, 0, pathologyPart)},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-16T15:00:00Z"}}},
		{name: "patient: N hours", in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Preference: pref(UntilElapsed, 72*time.Hour, 0, tagCode(TagMalignancy))},
			want: want{action: ActionHold, bases: []string{"patient-request/elapsed/2026-03-05T15:00:00Z"}, earliest: "2026-03-05T15:00:00Z", notify: NotifyQuiet}},
		{name: "patient: N hours does not cover a routine lab", in: Input{Report: rep(section("CH")), Classification: cls(), Preference: pref(UntilElapsed, 72*time.Hour, 0, tagCode(TagMalignancy))},
			want: want{action: ActionRelease, bases: []string{}}},
		{name: "patient: earlier of review and 48 hours on v2-0074 SP", in: Input{Report: rep(), Classification: cls(TagPathology), Preference: pref(UntilEarlierOf, 48*time.Hour, 7*day, Coding{SystemV2_0074, "SP"})},
			want: want{action: ActionHold, bases: []string{"patient-request/earlier-of/2026-03-04T15:00:00Z"}, earliest: "2026-03-02T15:00:00Z"}},
		{name: "patient: later of review and 24 hours", in: Input{Report: rep(), Classification: cls(TagGenetic), Preference: pref(UntilLaterOf, 24*time.Hour, 10*day, tagCode(TagGenetic))},
			want: want{action: ActionHold, bases: []string{"patient-request/later-of/2026-03-12T15:00:00Z"}, earliest: "2026-03-03T15:00:00Z"}},
		{name: "patient: deny without codes holds every result", in: Input{Report: rep(section("CH")), Classification: cls(), Preference: pref(UntilClinicianReview, 0, 2*day)},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-04T15:00:00Z"}, notify: NotifyPush}},
		{name: "patient: LOINC code on OBX-3 alternate", in: Input{Report: rep(obxID("51969-4")), Classification: cls(), Preference: pref(UntilClinicianReview, 0, 2*day, Coding{SystemLOINC, "51969-4"})},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-04T15:00:00Z"}, detail: "LOINC 51969-4"}},
		{name: "patient: LOINC code not present", in: Input{Report: rep(), Classification: cls(TagPathology), Preference: pref(UntilClinicianReview, 0, 2*day, Coding{SystemLOINC, "51969-4"})},
			want: want{action: ActionRelease}},
		{name: "patient: radiology part matches a CT section without an imaging tag", in: Input{Report: rep(section("CT")), Classification: cls(), Preference: pref(UntilClinicianReview, 0, 2*day, radiologyPart)},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-04T15:00:00Z"}, detail: "radiology"}},
		{name: "patient: two provisions both apply", in: Input{Report: rep(section("RAD")), Classification: cls(TagImaging, TagMalignancy), Preference: twoProvisions},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-12T15:00:00Z", "patient-request/elapsed/2026-03-05T15:00:00Z"}, deadline: "2026-03-12T15:00:00Z", earliest: "2026-03-05T15:00:00Z"}},
		{name: "patient: revoked Consent releases", in: Input{Report: rep(), Classification: cls(TagPathology), Preference: revoked},
			want: want{action: ActionRelease, warn: "revoked"}},
		{name: "patient: Consent for another patient is ignored", in: Input{Report: rep(), Classification: cls(TagPathology), Preference: otherPatient},
			want: want{action: ActionRelease, warn: "another patient"}},
		{name: "patient: identifier matches", in: Input{Report: rep(), Classification: cls(TagPathology), Preference: samePatient},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-16T15:00:00Z"}}},
		{name: "patient: expired Consent", in: Input{Report: rep(), Classification: cls(TagPathology), Preference: expired},
			want: want{action: ActionRelease, warn: "expired"}},
		{name: "patient: Consent not yet in effect", in: Input{Report: rep(), Classification: cls(TagPathology), Preference: notYet},
			want: want{action: ActionRelease, warn: "not yet in effect"}},
		{name: "patient: release immediately", in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Preference: immediately},
			want: want{action: ActionRelease, notify: NotifyQuiet}},
		{name: "patient: maximum capped by max_hold", cfg: short, in: Input{Report: rep(), Classification: cls(TagPathology), Preference: pref(UntilClinicianReview, 0, 10*day, pathologyPart)},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-04T15:00:00Z"}, detail: "capped by max_hold (2d after receipt)"}},
		{name: "patient: delay counted from the decision time when receipt is unknown", in: Input{Report: rep(received(time.Time{})), Classification: cls(TagMalignancy), Preference: pref(UntilElapsed, 2*time.Hour, 0, tagCode(TagMalignancy)), Now: utc("2026-03-02T16:00:00Z")},
			want: want{action: ActionHold, bases: []string{"patient-request/elapsed/2026-03-02T18:00:00Z"}, warn: "receipt time unknown"}},

		// ---- state law
		{name: "KY: pathology with malignancy, 72 h from OBR-22, provider may release", cfg: ky(), in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-05T14:30:00Z"}, deadline: "2026-03-05T14:30:00Z", earliest: "2026-03-02T15:00:00Z", detail: "counsel must confirm"}},
		{name: "KY: pathology without a malignant finding releases", cfg: ky(), in: Input{Report: rep(), Classification: cls(TagPathology)},
			want: want{action: ActionRelease}},
		{name: "KY: imaging with suspected malignancy", cfg: ky(), in: Input{Report: rep(section("CT")), Classification: cls(TagImaging, TagSuspectedMalignancy)},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-05T14:30:00Z"}}},
		{name: "KY: genetic test", cfg: ky(), in: Input{Report: rep(section("GE")), Classification: cls(TagGenetic)},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-05T14:30:00Z"}}},
		{name: "KY: no OBR-22 falls back to receipt and says so", cfg: ky(), in: Input{Report: rep(noFinal()), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-05T15:00:00Z"}, warn: "OBR-22", detail: "counted from receipt time"}},
		{name: "KY: 72 h are absolute across the spring DST change", cfg: ky(), in: Input{Report: rep(final(utc("2026-03-07T17:00:00Z")), received(utc("2026-03-07T17:05:00Z"))), Classification: cls(TagPathology, TagMalignancy), Now: utc("2026-03-07T17:05:00Z")},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-10T17:00:00Z"}}},
		{name: "KY: 72 h already elapsed releases", cfg: ky(), in: Input{Report: rep(final(utc("2026-02-20T12:00:00Z"))), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionRelease, warn: "already ended"}},
		{name: "KY: provider_may_release_earlier overridden to false", cfg: kyNoEarly, in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"state-law/elapsed/2026-03-05T14:30:00Z"}, earliest: "2026-03-05T14:30:00Z"}},
		{name: "KY: rule only where configured (no jurisdiction)", cfg: withJur(ny(), "US-KY", JurisdictionRule{Statute: "US-KY-KRS-333.152"}), in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionRelease}},
		{name: "KY: jurisdiction from the sending facility", cfg: facilities, in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Facility: "LEXPATH"},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-05T14:30:00Z"}}},
		{name: "KY: unknown facility gets no state law", cfg: facilities, in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Facility: "OTHER"},
			want: want{action: ActionRelease}},
		{name: "report jurisdiction overrides the default", cfg: ky(), in: Input{Report: rep(jur("US-NY")), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionRelease}},
		{name: "MT: HIV result", cfg: mt, in: Input{Report: rep(section("VR")), Classification: cls("hiv")},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-05T14:30:00Z"}}},
		{name: "TX: not before the third day after finalisation", cfg: tx(), in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"state-law/not-before/2026-03-05T06:00:00Z"}, earliest: "2026-03-05T06:00:00Z"}},
		{name: "TX: finalised late evening local time counts the local date", cfg: tx(), in: Input{Report: rep(final(utc("2026-03-03T05:30:00Z")), received(utc("2026-03-03T05:31:00Z"))), Classification: cls(TagPathology, TagMalignancy), Now: utc("2026-03-03T05:31:00Z")},
			want: want{action: ActionHold, bases: []string{"state-law/not-before/2026-03-05T06:00:00Z"}}},
		{name: "TX: third day falls after the spring DST change", cfg: tx(), in: Input{Report: rep(final(utc("2026-03-06T18:00:00Z")), received(utc("2026-03-06T18:00:00Z"))), Classification: cls(TagPathology, TagMalignancy), Now: utc("2026-03-06T18:00:00Z")},
			want: want{action: ActionHold, bases: []string{"state-law/not-before/2026-03-09T05:00:00Z"}}},
		{name: "calendar days keep wall-clock time across the autumn DST change", cfg: calDays, in: Input{Report: rep(final(utc("2026-10-31T14:00:00Z")), received(utc("2026-10-31T14:00:00Z"))), Classification: cls(TagPathology), Now: utc("2026-10-31T14:00:00Z")},
			want: want{action: ActionHold, bases: []string{"state-law/elapsed/2026-11-02T15:00:00Z"}}},
		{name: "hours clock is absolute across the autumn DST change", cfg: hoursRule, in: Input{Report: rep(final(utc("2026-10-31T14:00:00Z")), received(utc("2026-10-31T14:00:00Z"))), Classification: cls(TagPathology), Now: utc("2026-10-31T14:00:00Z")},
			want: want{action: ActionHold, bases: []string{"state-law/elapsed/2026-11-02T14:00:00Z"}}},
		{name: "business days skip the weekend", cfg: busDays, in: Input{Report: rep(final(utc("2026-03-06T21:00:00Z")), received(utc("2026-03-06T21:00:00Z"))), Classification: cls(TagPathology), Now: utc("2026-03-06T21:00:00Z")},
			want: want{action: ActionHold, bases: []string{"state-law/elapsed/2026-03-10T20:00:00Z"}}},
		{name: "business days skip a holiday", cfg: holidays, in: Input{Report: rep(final(utc("2026-03-06T21:00:00Z")), received(utc("2026-03-06T21:00:00Z"))), Classification: cls(TagPathology), Now: utc("2026-03-06T21:00:00Z")},
			want: want{action: ActionHold, bases: []string{"state-law/elapsed/2026-03-11T20:00:00Z"}}},
		{name: "business day counted from a Saturday starts Monday 00:00", cfg: oneBus, in: Input{Report: rep(final(utc("2026-03-07T15:00:00Z")), received(utc("2026-03-07T15:00:00Z"))), Classification: cls(TagPathology), Now: utc("2026-03-07T15:00:00Z")},
			want: want{action: ActionHold, bases: []string{"state-law/elapsed/2026-03-10T04:00:00Z"}}},

		// ---- clinician determination
		{name: "clinician determination for the patient", in: Input{Report: rep(), Classification: cls(TagPathology), Determinations: []Determination{det}},
			want: want{action: ActionHold, bases: []string{"clinician-determination/clinician-release/2026-03-06T15:00:00Z"}, detail: "harm type physical"}},
		{name: "clinician determination for this order", in: Input{Report: rep(), Classification: cls(), Determinations: []Determination{detOrder}},
			want: want{action: ActionHold, bases: []string{"clinician-determination/clinician-release/2026-03-06T15:00:00Z"}}},
		{name: "clinician determination for another order", in: Input{Report: rep(), Classification: cls(), Determinations: []Determination{detOther}},
			want: want{action: ActionRelease}},
		{name: "clinician determination for another patient", in: Input{Report: rep(pid("MRN2^^^HOSP^MR")), Classification: cls(), Determinations: []Determination{det}},
			want: want{action: ActionRelease}},
		{name: "clinician determination without a reason is ignored", in: Input{Report: rep(), Classification: cls(), Determinations: []Determination{detNoReason}},
			want: want{action: ActionRelease, warn: "missing reason"}},
		{name: "clinician determination without review date takes the default", in: Input{Report: rep(), Classification: cls(), Determinations: []Determination{detNoUntil}},
			want: want{action: ActionHold, bases: []string{"clinician-determination/clinician-release/2026-03-09T15:00:00Z"}, detail: "no review date given"}},
		{name: "expired clinician determination", in: Input{Report: rep(), Classification: cls(), Determinations: []Determination{detExpired}},
			want: want{action: ActionRelease, warn: "already ended"}},

		// ---- data error and withdrawal
		{name: "every OBX wrong (W) withdraws", in: Input{Report: rep(obx("W", "W")), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionWithdraw, disposition: DispositionWithdraw, bases: []string{"data-error/withdrawn/0001-01-01T00:00:00Z"}, notify: NotifyQuiet}},
		{name: "every OBX deleted (D) withdraws a held prior", in: Input{Report: rep(obx("D")), Classification: cls(), Prior: &Prior{State: PriorHeld, HoldID: "h1", Deadline: utc("2026-03-05T00:00:00Z")}},
			want: want{action: ActionWithdraw, disposition: DispositionWithdraw, warn: "earlier version (held) is withdrawn"}},
		{name: "one wrong OBX among final ones is a data error", in: Input{Report: rep(obx("F", "W")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"data-error/correction/2026-03-09T15:00:00Z"}, detail: "1 observation(s) deleted or marked wrong"}},
		{name: "no patient identifier is a data error", cfg: dataErr3, in: Input{Report: rep(pid("")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"data-error/correction/2026-03-05T15:00:00Z"}, detail: "no patient identifier"}},
		{name: "caller suspects misidentification", in: Input{Report: rep(), Classification: cls(), SuspectedDataError: "specimen label mismatch reported by lab"},
			want: want{action: ActionHold, bases: []string{"data-error/correction/2026-03-09T15:00:00Z"}, detail: "specimen label mismatch"}},

		// ---- sender flags (OBX-26, table 0909); finalised Monday 09:30 EST
		{name: "SIMM releases at once", in: Input{Report: rep(flag("SIMM")), Classification: cls(TagPathology)},
			want: want{action: ActionRelease}},
		{name: "SID holds one business day", cfg: ny(), in: Input{Report: rep(flag("SID")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"sender-flag/elapsed/2026-03-03T14:30:00Z"}}},
		{name: "SID from Friday to Monday", cfg: ny(), in: Input{Report: rep(flag("SID"), final(utc("2026-03-06T20:00:00Z")), received(utc("2026-03-06T20:00:00Z"))), Classification: cls(), Now: utc("2026-03-06T20:00:00Z")},
			want: want{action: ActionHold, bases: []string{"sender-flag/elapsed/2026-03-09T19:00:00Z"}}},
		{name: "SID with 3 business days configured", cfg: sid3, in: Input{Report: rep(flag("SID")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"sender-flag/elapsed/2026-03-05T14:30:00Z"}}},
		{name: "SID ignored by configuration", cfg: sidOff, in: Input{Report: rep(flag("SID")), Classification: cls()},
			want: want{action: ActionRelease, warn: "ignored by configuration"}},
		{name: "SIDC within range holds one business day", cfg: ny(), in: Input{Report: rep(flag("SIDC", "N")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"sender-flag/elapsed/2026-03-03T14:30:00Z"}}},
		{name: "SIDC out of range waits for physician release", cfg: ny(), in: Input{Report: rep(flag("SIDC", "H")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"sender-flag/clinician-review/2026-03-09T15:00:00Z"}}},
		{name: "SWNL within range releases", in: Input{Report: rep(flag("SWNL", "N")), Classification: cls()},
			want: want{action: ActionRelease}},
		{name: "SWNL without OBX-8 releases and says why", in: Input{Report: rep(flag("SWNL")), Classification: cls()},
			want: want{action: ActionRelease, warn: "no OBX-8 flags"}},
		{name: "SWNL out of range holds one business day", cfg: ny(), in: Input{Report: rep(flag("SWNL", "LL")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"sender-flag/elapsed/2026-03-03T14:30:00Z"}}},
		{name: "SWTH withholds until physician release, never open-ended", in: Input{Report: rep(flag("SWTH")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"sender-flag/clinician-review/2026-03-09T15:00:00Z"}}},
		{name: "SWTH with a 3-day maximum", cfg: swth3, in: Input{Report: rep(flag("SWTH")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"sender-flag/clinician-review/2026-03-05T15:00:00Z"}}},
		{name: "STBD creates no basis", in: Input{Report: rep(flag("STBD")), Classification: cls()},
			want: want{action: ActionRelease, warn: "STBD"}},
		{name: "unknown release category is ignored", in: Input{Report: rep(flag("XYZ")), Classification: cls()},
			want: want{action: ActionRelease, warn: `unknown OBX-26 release category "XYZ"`}},
		{name: "release category with components", cfg: ny(), in: Input{Report: rep(flag("SID^Share In1 Day^HL70909")), Classification: cls()},
			want: want{action: ActionHold, bases: []string{"sender-flag/elapsed/2026-03-03T14:30:00Z"}}},

		// ---- organisational policy
		{name: "organisational policy holds and is flagged a compliance risk", cfg: orgCfg("", 0), in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"organisational-policy/clinician-review/2026-03-07T15:00:00Z"}, risk: true, warn: "compliance risk", detail: "likely interference"}},
		{name: "organisational policy elapsed hours", cfg: orgCfg(UntilElapsed, 24), in: Input{Report: rep(), Classification: cls(TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"organisational-policy/elapsed/2026-03-03T15:00:00Z"}, risk: true}},
		{name: "organisational policy earlier-of", cfg: orgCfg(UntilEarlierOf, 24), in: Input{Report: rep(), Classification: cls(TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"organisational-policy/earlier-of/2026-03-03T15:00:00Z"}, risk: true}},
		{name: "organisational policy does not cover benign pathology", cfg: orgCfg("", 0), in: Input{Report: rep(), Classification: cls(TagPathology)},
			want: want{action: ActionRelease}},
		{name: "organisational policy yields to SIMM", cfg: orgCfg("", 0), in: Input{Report: rep(flag("SIMM")), Classification: cls(TagMalignancy)},
			want: want{action: ActionRelease, warn: "SIMM"}},
		{name: "organisational policy yields to the patient's request to see at once", cfg: orgCfg("", 0), in: Input{Report: rep(), Classification: cls(TagMalignancy), Preference: immediately},
			want: want{action: ActionRelease, warn: "organisational policy not applied"}},

		// ---- combinations
		{name: "patient request and KY: ends when both end", cfg: ky(), in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Preference: pref(UntilClinicianReview, 0, 10*day, pathologyPart)},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-12T15:00:00Z", "state-law/earlier-of/2026-03-05T14:30:00Z"}, deadline: "2026-03-12T15:00:00Z", earliest: "2026-03-02T15:00:00Z"}},
		{name: "patient hours and TX not-before: earliest is the later", cfg: tx(), in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Preference: pref(UntilElapsed, 24*time.Hour, 0, tagCode(TagMalignancy))},
			want: want{action: ActionHold, bases: []string{"patient-request/elapsed/2026-03-03T15:00:00Z", "state-law/not-before/2026-03-05T06:00:00Z"}, deadline: "2026-03-05T06:00:00Z", earliest: "2026-03-05T06:00:00Z"}},
		{name: "every basis capped by max_hold", cfg: short, in: Input{Report: rep(flag("SWTH")), Classification: cls(TagPathology), Preference: pref(UntilClinicianReview, 0, 10*day, pathologyPart), Determinations: []Determination{det}},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-04T15:00:00Z", "clinician-determination/clinician-release/2026-03-04T15:00:00Z", "sender-flag/clinician-review/2026-03-04T15:00:00Z"}, deadline: "2026-03-04T15:00:00Z"}},
		{name: "KY and organisational policy: risk flagged on the decision", cfg: kyOrg, in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-05T14:30:00Z", "organisational-policy/clinician-review/2026-03-07T15:00:00Z"}, risk: true}},

		{name: "KY: the last order finalised governs the clock", cfg: ky(), in: Input{Report: rep(secondOrder(utc("2026-03-02T14:50:00Z"))), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionHold, bases: []string{"state-law/earlier-of/2026-03-05T14:50:00Z"}}},
		{name: "patient request and organisational policy both recorded", cfg: orgCfg("", 0), in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Preference: pref(UntilClinicianReview, 0, 10*day, pathologyPart)},
			want: want{action: ActionHold, bases: []string{"patient-request/clinician-review/2026-03-12T15:00:00Z", "organisational-policy/clinician-review/2026-03-07T15:00:00Z"}, risk: true}},
		{name: "later-of delay beyond the maximum is cut to the maximum", in: Input{Report: rep(), Classification: cls(TagGenetic), Preference: pref(UntilLaterOf, 20*day, 5*day, tagCode(TagGenetic))},
			want: want{action: ActionHold, bases: []string{"patient-request/later-of/2026-03-07T15:00:00Z"}, earliest: "2026-03-07T15:00:00Z"}},

		// ---- corrections and versions
		{name: "correction of a held result keeps the original deadline", cfg: ky(), in: Input{Report: rep(obr25("C"), final(utc("2026-03-03T14:30:00Z")), received(utc("2026-03-03T15:00:00Z"))), Classification: cls(TagPathology, TagMalignancy), Prior: &Prior{State: PriorHeld, HoldID: "h1", Deadline: utc("2026-03-05T14:30:00Z")}, Now: utc("2026-03-03T15:00:00Z")},
			want: want{action: ActionHold, disposition: DispositionReplaceHeld, bases: []string{"state-law/earlier-of/2026-03-05T14:30:00Z"}, deadline: "2026-03-05T14:30:00Z", detail: "deadline kept"}},
		{name: "correction (OBX-11 C) of a held result past its deadline releases", cfg: ky(), in: Input{Report: rep(obx("C")), Classification: cls(TagPathology, TagMalignancy), Prior: &Prior{State: PriorHeld, Deadline: utc("2026-03-02T12:00:00Z")}},
			want: want{action: ActionRelease, disposition: DispositionReplaceHeld}},
		{name: "correction of a released result with no basis is released at once", in: Input{Report: rep(obr25("C")), Classification: cls(TagPathology), Prior: &Prior{State: PriorReleased}},
			want: want{action: ActionRelease, disposition: DispositionReleaseCorrection, bases: []string{}, noteLang: "en"}},
		{name: "correction of a released result that is itself to be held retracts the released version and holds", cfg: ky(), in: Input{Report: rep(obr25("C")), Classification: cls(TagPathology, TagMalignancy), Preference: pref(UntilClinicianReview, 0, 0, pathologyPart), Prior: &Prior{State: PriorReleased}},
			want: want{action: ActionHold, disposition: DispositionRetractAndHold, notify: NotifyQuiet, noteLang: "en"}},
		{name: "correction without a prior is decided as new", cfg: ky(), in: Input{Report: rep(obr25("C")), Classification: cls(TagPathology, TagMalignancy)},
			want: want{action: ActionHold, disposition: DispositionNew, warn: "no earlier version"}},
		{name: "final after a held preliminary replaces it and keeps the deadline", in: Input{Report: rep(), Classification: cls(TagPathology), Preference: pref(UntilClinicianReview, 0, 10*day, pathologyPart), Prior: &Prior{State: PriorHeld, HoldID: "h0", Deadline: utc("2026-03-04T00:00:00Z")}},
			want: want{action: ActionHold, disposition: DispositionReplaceHeld, deadline: "2026-03-04T00:00:00Z"}},
		{name: "new version of a held result with no basis left releases", in: Input{Report: rep(), Classification: cls(TagPathology), Prior: &Prior{State: PriorHeld, Deadline: utc("2026-03-04T00:00:00Z")}},
			want: want{action: ActionRelease, disposition: DispositionReplaceHeld}},
		{name: "new version after a withdrawn one is new", cfg: ky(), in: Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Prior: &Prior{State: PriorWithdrawn}},
			want: want{action: ActionHold, disposition: DispositionNew}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(tt.cfg)
			if err != nil {
				t.Fatalf("NewEngine: %v", err)
			}
			in := tt.in
			if in.Now.IsZero() {
				in.Now = tRecv
			}
			got := e.Decide(in)
			checkDecision(t, got, tt.want)
		})
	}
}

func checkDecision(t *testing.T, got Decision, w want) {
	t.Helper()
	if got.Action != w.action {
		t.Errorf("action = %s, want %s (bases %v, warnings %q)", got.Action, w.action, basesSummary(got), got.Warnings)
	}
	disp := w.disposition
	if disp == "" {
		disp = DispositionNew
	}
	if got.Disposition != disp {
		t.Errorf("disposition = %s, want %s", got.Disposition, disp)
	}
	if w.bases != nil && strings.Join(basesSummary(got), " ") != strings.Join(w.bases, " ") {
		t.Errorf("bases\n got: %v\nwant: %v", basesSummary(got), w.bases)
	}
	if got.Action == ActionHold {
		if len(got.Bases) == 0 || got.Deadline.IsZero() {
			t.Fatalf("hold without basis or deadline: %+v", got)
		}
		for _, b := range got.Bases {
			if b.Deadline.IsZero() || b.Deadline.After(got.Deadline) || b.NotBefore.After(b.Deadline) {
				t.Errorf("basis deadline inconsistent: %+v (decision deadline %s)", b, got.Deadline)
			}
		}
	} else if !got.Deadline.IsZero() {
		t.Errorf("%s with a deadline %s", got.Action, got.Deadline)
	}
	if w.deadline != "" && got.Deadline.UTC().Format(time.RFC3339) != w.deadline {
		t.Errorf("deadline = %s, want %s", got.Deadline.UTC().Format(time.RFC3339), w.deadline)
	}
	if w.earliest != "" && got.EarliestRelease.UTC().Format(time.RFC3339) != w.earliest {
		t.Errorf("earliest release = %s, want %s", got.EarliestRelease.UTC().Format(time.RFC3339), w.earliest)
	}
	if w.notify != "" && got.Notify != w.notify {
		t.Errorf("notify = %s, want %s", got.Notify, w.notify)
	}
	if w.noteLang != "" && (got.NoteLanguage != w.noteLang || got.Note == "") {
		t.Errorf("note language = %q (note %q), want %s", got.NoteLanguage, got.Note, w.noteLang)
	}
	if got.ComplianceRisk != w.risk {
		t.Errorf("compliance risk = %v, want %v", got.ComplianceRisk, w.risk)
	}
	if w.warn != "" && !strings.Contains(strings.Join(got.Warnings, "\n"), w.warn) {
		t.Errorf("warnings %q lack %q", got.Warnings, w.warn)
	}
	if w.detail != "" {
		found := false
		for _, b := range got.Bases {
			found = found || strings.Contains(b.Detail, w.detail)
		}
		if !found {
			t.Errorf("no basis detail contains %q: %v", w.detail, got.Bases)
		}
	}
	if got.RulesetVersion != "test-1" {
		t.Errorf("ruleset version = %q", got.RulesetVersion)
	}
}

func basesSummary(d Decision) []string {
	out := []string{}
	for _, b := range d.Bases {
		out = append(out, string(b.Kind)+"/"+b.Until+"/"+b.Deadline.UTC().Format(time.RFC3339))
	}
	return out
}

func TestDecisionEnded(t *testing.T) {
	e, err := NewEngine(ky())
	if err != nil {
		t.Fatal(err)
	}
	later := e.Decide(Input{Report: rep(), Classification: cls(TagGenetic), Preference: pref(UntilLaterOf, 24*time.Hour, 10*day, tagCode(TagGenetic)), Now: tRecv})
	reviewed := tRecv.Add(time.Hour)
	tests := []struct {
		name     string
		d        Decision
		now      time.Time
		reviewed time.Time
		want     bool
	}{
		{"later-of: reviewed but delay not elapsed", later, tRecv.Add(2 * time.Hour), reviewed, false},
		{"later-of: delay elapsed, KY still running, not reviewed", later, tRecv.Add(25 * time.Hour), time.Time{}, false},
		{"later-of and KY earlier-of: reviewed and delay elapsed", later, tRecv.Add(25 * time.Hour), reviewed, true},
		{"hard deadline always ends the hold", later, later.Deadline, time.Time{}, true},
		{"a release is always ended", Decision{Action: ActionRelease}, tRecv, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Ended(tt.now, tt.reviewed); got != tt.want {
				t.Errorf("Ended = %v, want %v (bases %v)", got, tt.want, basesSummary(tt.d))
			}
		})
	}
}

func TestDecisionEndsAt(t *testing.T) {
	e, err := NewEngine(ky())
	if err != nil {
		t.Fatal(err)
	}
	// KY earlier-of (deadline 2026-03-05T14:30Z) and a patient later-of 24 h
	// (not before 2026-03-03T15:00Z, maximum 10 d).
	d := e.Decide(Input{Report: rep(), Classification: cls(TagPathology, TagMalignancy), Now: tRecv,
		Preference: pref(UntilLaterOf, 24*time.Hour, 10*day, tagCode(TagMalignancy))})
	sender := e.Decide(Input{Report: rep(flag("SID")), Classification: cls(), Now: tRecv})
	tests := []struct {
		name     string
		d        Decision
		reviewed time.Time
		want     string
	}{
		{"no review: the hard deadline", d, time.Time{}, "2026-03-12T15:00:00Z"},
		{"review before the patient's delay: ends when the delay passes", d, tRecv.Add(time.Hour), "2026-03-03T15:00:00Z"},
		{"review after the delay: ends at the review", d, utc("2026-03-04T09:00:00Z"), "2026-03-04T09:00:00Z"},
		{"review cannot shorten an elapsed basis", sender, tRecv, "2026-03-03T14:30:00Z"},
		{"a release never ends", Decision{Action: ActionRelease}, tRecv, "0001-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.EndsAt(tt.reviewed).UTC().Format(time.RFC3339); got != tt.want {
				t.Errorf("EndsAt = %s, want %s (bases %v)", got, tt.want, basesSummary(tt.d))
			}
		})
	}
}

func BenchmarkDecide(b *testing.B) {
	e, err := NewEngine(ky())
	if err != nil {
		b.Fatal(err)
	}
	in := Input{Report: rep(flag("SIDC", "H")), Classification: cls(TagPathology, TagMalignancy, TagNewCancer), Now: tRecv,
		Preference: pref(UntilLaterOf, 24*time.Hour, 10*day, pathologyPart), Determinations: []Determination{{PatientID: "MRN1", By: "x", Role: "y", Reason: "z", At: tRecv}}}
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Decide(in); d.Action != ActionHold {
			b.Fatal(d.Action)
		}
	}
}

func TestDecideNilReport(t *testing.T) {
	e, _ := NewEngine(Config{})
	d := e.Decide(Input{Now: tRecv})
	if d.Action != ActionHold || len(d.Bases) != 1 || d.Bases[0].Kind != BasisDataError || d.Deadline.IsZero() {
		t.Errorf("nil report: %+v", d)
	}
}
