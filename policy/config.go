package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the decision half of the policy configuration: time zone and
// calendar, state-law rules per jurisdiction, sender flags, the optional
// organisational policy, maxima, and how patients are notified. It is the
// `policy:` section of resultgate's configuration file and is decoded strictly
// (unknown keys fail, naming the key).
type Config struct {
	// TimeZone is the IANA zone in which calendar days, business days and
	// "not before the Nth day" are counted, e.g. "America/Chicago". Default UTC.
	TimeZone string `yaml:"time_zone"`
	// DefaultLanguage is the note language used when PID-15 names a language
	// with no template. Default "en".
	DefaultLanguage string `yaml:"default_language"`
	// Holidays are dates (YYYY-MM-DD, in TimeZone) that are not business days.
	Holidays []string `yaml:"holidays"`
	// BusinessDays are the weekdays that count as business days ("mon".."sun").
	// Default Monday to Friday.
	BusinessDays []string `yaml:"business_days"`

	// Jurisdiction is the facility's default jurisdiction, e.g. "US-KY".
	Jurisdiction string `yaml:"jurisdiction"`
	// FacilityJurisdictions maps a sending facility (MSH-4 namespace ID) to its
	// jurisdiction when one resultgate serves facilities in several states.
	FacilityJurisdictions map[string]string `yaml:"facility_jurisdictions"`
	// FacilityTimeZones maps a sending facility (MSH-4 namespace ID) to the
	// IANA zone it works in, e.g. {TXLAB: America/Chicago}. A facility's zone
	// counts its statute clock (before the rule's own zone: a facility in the
	// other zone of a state that spans two, e.g. El Paso in Texas), its sender
	// flags' business days and reads its timestamps that carry no offset.
	// Facilities not listed use TimeZone.
	FacilityTimeZones map[string]string `yaml:"facility_time_zones"`
	// Jurisdictions are the state-law rules by jurisdiction. A state-law basis
	// applies only where a rule is configured here; every jurisdiction named
	// by Jurisdiction or FacilityJurisdictions must have an entry (a rule, or
	// no_state_law: true).
	Jurisdictions map[string]JurisdictionRule `yaml:"jurisdictions"`

	// OrganisationalPolicy is an optional hold rule that rests only on the
	// organisation's written policy. It is reported as a compliance risk.
	OrganisationalPolicy *OrgPolicy `yaml:"organisational_policy"`

	// SenderFlags adjusts how OBX-26 release categories (HL7 table 0909) are
	// honoured, by code (SIMM, SID, SIDC, SWNL, SWTH, STBD).
	SenderFlags map[string]SenderFlagRule `yaml:"sender_flags"`

	// MaxHold is the absolute ceiling on any hold, counted from receipt.
	// Default 30 days.
	MaxHold Duration `yaml:"max_hold"`
	// PatientRequest holds defaults for holds the patient asked for.
	PatientRequest PatientRequestConfig `yaml:"patient_request"`
	// ClinicianDetermination holds defaults for Preventing-Harm holds.
	ClinicianDetermination ClinicianDeterminationConfig `yaml:"clinician_determination"`
	// DataError holds defaults for holds on suspected data errors.
	DataError DataErrorConfig `yaml:"data_error"`

	// Notify says which tags make the patient notification quiet.
	Notify NotifyConfig `yaml:"notify"`
	// Templates are plain-language notes for the patient: tag → language → text.
	// They replace the built-in notes for the tags they name.
	Templates map[string]map[string]string `yaml:"templates"`
}

// JurisdictionRule is one state-law rule: which results it covers, its clock
// and whether the provider may release earlier.
type JurisdictionRule struct {
	// Statute names a shipped preset (see Statutes) to start from; the other
	// fields override the preset's.
	Statute string `yaml:"statute"`
	// Citation is the legal citation recorded on the basis.
	Citation string `yaml:"citation"`
	// AppliesTo lists tag combinations: the rule applies when every tag of at
	// least one entry is present, e.g. [[pathology, malignancy], [genetic]].
	AppliesTo [][]string `yaml:"applies_to"`
	// Clock is the statute's delay.
	Clock Clock `yaml:"clock"`
	// ProviderMayReleaseEarlier says the ordering provider may direct release
	// before the clock runs out (the basis ends on clinician review).
	ProviderMayReleaseEarlier *bool `yaml:"provider_may_release_earlier"`
	// Note is free text recorded with the basis (e.g. counsel's sign-off).
	Note string `yaml:"note"`
	// TimeZone is the IANA zone the statute's days are counted in, e.g.
	// America/Chicago. Presets carry their state's zone (the zone of most of
	// it where a state spans two); a facility's own zone, in
	// facility_time_zones, comes first.
	TimeZone string `yaml:"time_zone"`
	// NoStateLaw declares that the jurisdiction has no state-law delay: its
	// results get no state-law basis, and explain says so. It takes no other
	// key but note.
	NoStateLaw bool `yaml:"no_state_law"`
}

// Clock is a delay. Exactly one field is set.
type Clock struct {
	// Hours elapse in absolute time (72 h is 72 h across a DST change).
	Hours int `yaml:"hours"`
	// CalendarDays keep the wall-clock time in the configured zone.
	CalendarDays int `yaml:"calendar_days"`
	// BusinessDays skip weekends and holidays, keeping the wall-clock time.
	BusinessDays int `yaml:"business_days"`
	// NotBeforeDay means "not before the Nth day after finalisation": release
	// at 00:00 local time on the Nth calendar day after the finalisation date.
	NotBeforeDay int `yaml:"not_before_day"`
}

// OrgPolicy is an organisational hold rule. It is honoured only with a
// written-policy reference, and every basis it creates is flagged
// ComplianceRisk: ONC treats a blanket organisational delay as likely
// interference (85 FR 25642, 25842).
type OrgPolicy struct {
	// WrittenPolicy references the organisation's written policy (document ID,
	// version, URL). Required.
	WrittenPolicy string `yaml:"written_policy"`
	// AppliesTo lists tag combinations as in JurisdictionRule. Required.
	AppliesTo [][]string `yaml:"applies_to"`
	// Until is the end condition: clinician-review (default), elapsed or earlier-of.
	Until string `yaml:"until"`
	// Hours is the delay for elapsed and earlier-of.
	Hours int `yaml:"hours"`
	// Max is the maximum hold under this policy. Required.
	Max Duration `yaml:"max"`
}

// SenderFlagRule adjusts one table 0909 category.
type SenderFlagRule struct {
	// Ignore drops the category: no basis is created for it.
	Ignore bool `yaml:"ignore"`
	// BusinessDays replaces the "1 or more business days" of SID, SIDC and SWNL
	// (default 1).
	BusinessDays int `yaml:"business_days"`
	// Max caps holds awaiting physician release (SIDC out of range, SWTH).
	// Default 7 days.
	Max Duration `yaml:"max"`
}

// PatientRequestConfig holds defaults for patient-requested holds.
type PatientRequestConfig struct {
	// DefaultMax is the maximum used when the patient's Consent names none.
	// Default 14 days.
	DefaultMax Duration `yaml:"default_max"`
}

// ClinicianDeterminationConfig holds defaults for Preventing-Harm holds.
type ClinicianDeterminationConfig struct {
	// DefaultReview is how long a determination without its own review date
	// holds before it must be reviewed (the deadline). Default 7 days.
	DefaultReview Duration `yaml:"default_review"`
}

// DataErrorConfig holds defaults for data-error holds.
type DataErrorConfig struct {
	// Max is how long a suspected data error holds while awaiting a correction
	// from the sender. Default 7 days.
	Max Duration `yaml:"max"`
}

// NotifyConfig says how patients are told.
type NotifyConfig struct {
	// QuietTags make the notification quiet (no push) when present. Default:
	// malignancy, suspected-malignancy, new-cancer, genetic.
	QuietTags []string `yaml:"quiet_tags"`
}

// Duration is a time.Duration that also accepts days ("14d", "1d12h") in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration, with whole days as "Nd".
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%(24*time.Hour) == 0 {
		return strconv.Itoa(int(td/(24*time.Hour))) + "d"
	}
	return td.String()
}

// ParseDuration parses a Go duration with an optional leading day count,
// e.g. "72h", "14d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return days + d, nil
}

// UnmarshalYAML decodes "14d", "72h" or "1d12h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration must be a string such as 72h or 14d", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML encodes d as its String form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Built-in defaults.
const (
	DefaultMaxHold                = 30 * 24 * time.Hour
	DefaultPatientRequestMax      = 14 * 24 * time.Hour
	DefaultDeterminationReview    = 7 * 24 * time.Hour
	DefaultDataErrorMax           = 7 * 24 * time.Hour
	DefaultSenderFlagMax          = 7 * 24 * time.Hour
	DefaultLanguage               = "en"
	DefaultSenderFlagBusinessDays = 1
)

// DefaultQuietTags are the tags that make notification quiet by default: a
// push notification is a poor way to learn of a cancer or a genetic finding.
var DefaultQuietTags = []string{TagMalignancy, TagSuspectedMalignancy, TagNewCancer, TagGenetic}

// SenderFlagCodes are the HL7 table 0909 codes (OBX-26).
var SenderFlagCodes = []string{"SID", "SIDC", "SIMM", "STBD", "SWNL", "SWTH"}

// DecodeConfig decodes the policy section (the value under `policy:`) strictly.
// Errors carry the YAML line and name the unknown key.
func DecodeConfig(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("policy: %w", policyYAMLError(err))
	}
	return cfg, nil
}

// LoadConfigFile reads a resultgate configuration file and decodes its
// `policy:` section strictly; other top-level sections are ignored (they are
// checked by their owners). A file without a policy section yields the zero
// Config, which means the defaults.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading policy config: %w", err)
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, policyYAMLError(err))
	}
	n, ok := top["policy"]
	if !ok {
		return Config{}, nil
	}
	var cfg Config
	if err := decodeSectionStrict(&n, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: policy: %w", path, err)
	}
	return cfg, nil
}

func decodeSectionStrict(n *yaml.Node, out any) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		return err
	}
	// yaml.Node.Decode is not strict; re-encode and decode with KnownFields so
	// unknown keys fail. Line numbers are then relative to the section.
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return policyYAMLError(err)
	}
	return nil
}

func policyYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

var (
	holidayRe    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	cfgTagNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
	languageRe   = regexp.MustCompile(`^[a-z]{2,3}$`)
)

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Validate checks the configuration and returns every problem found, each
// naming its key, e.g. `policy.jurisdictions.US-KY.clock.hours: must be > 0`.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("policy.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.TimeZone != "" {
		if !validZone(c.TimeZone) {
			bad("time_zone", "unknown time zone %q", c.TimeZone)
		}
	}
	if c.DefaultLanguage != "" && !languageRe.MatchString(c.DefaultLanguage) {
		bad("default_language", "must be an ISO 639 code such as en or es, got %q", c.DefaultLanguage)
	}
	for i, h := range c.Holidays {
		if _, err := time.Parse("2006-01-02", h); err != nil || !holidayRe.MatchString(h) {
			bad(fmt.Sprintf("holidays[%d]", i), "must be a date YYYY-MM-DD, got %q", h)
		}
	}
	seenDay := map[string]bool{}
	for i, d := range c.BusinessDays {
		k := strings.ToLower(d)
		if _, ok := weekdayNames[k]; !ok {
			bad(fmt.Sprintf("business_days[%d]", i), "must be one of mon, tue, wed, thu, fri, sat, sun, got %q", d)
		} else if seenDay[k] {
			bad(fmt.Sprintf("business_days[%d]", i), "%q listed twice", d)
		}
		seenDay[k] = true
	}
	if c.BusinessDays != nil && len(c.BusinessDays) == 0 {
		bad("business_days", "must list at least one weekday")
	}
	if c.Jurisdiction != "" && strings.TrimSpace(c.Jurisdiction) != c.Jurisdiction {
		bad("jurisdiction", "must not have surrounding spaces")
	}
	if c.Jurisdiction != "" {
		if _, ok := c.Jurisdictions[c.Jurisdiction]; !ok {
			bad("jurisdiction", "%s", missingRuleMsg(c.Jurisdiction))
		}
	}
	for _, fac := range cfgKeys(c.FacilityJurisdictions) {
		j := c.FacilityJurisdictions[fac]
		if j == "" {
			bad("facility_jurisdictions."+fac, "must name a jurisdiction")
		} else if _, ok := c.Jurisdictions[j]; !ok {
			bad("facility_jurisdictions."+fac, "%s", missingRuleMsg(j))
		}
	}
	for _, fac := range cfgKeys(c.FacilityTimeZones) {
		if z := c.FacilityTimeZones[fac]; z == "" || !validZone(z) {
			bad("facility_time_zones."+fac, "unknown time zone %q (want an IANA zone such as America/Chicago)", z)
		}
	}
	for _, j := range cfgKeys(c.Jurisdictions) {
		validateJurisdiction("jurisdictions."+j, c.Jurisdictions[j], bad)
	}
	for _, z := range c.zoneProblems(false) {
		bad(z[0], "%s", z[1])
	}
	if op := c.OrganisationalPolicy; op != nil {
		if strings.TrimSpace(op.WrittenPolicy) == "" {
			bad("organisational_policy.written_policy", "is required: an organisational hold needs a written-policy reference")
		}
		validateAppliesTo("organisational_policy.applies_to", op.AppliesTo, true, bad)
		switch op.Until {
		case "", UntilClinicianReview:
		case UntilElapsed, UntilEarlierOf:
			if op.Hours <= 0 {
				bad("organisational_policy.hours", "must be > 0 when until is %s", op.Until)
			}
		default:
			bad("organisational_policy.until", "must be clinician-review, elapsed or earlier-of, got %q", op.Until)
		}
		if op.Hours < 0 {
			bad("organisational_policy.hours", "must not be negative")
		}
		if op.Max <= 0 {
			bad("organisational_policy.max", "is required and must be > 0")
		}
	}
	for _, code := range cfgKeys(c.SenderFlags) {
		r := c.SenderFlags[code]
		key := "sender_flags." + code
		if !inList(SenderFlagCodes, code) {
			bad(key, "unknown HL7 table 0909 category (want one of %s)", strings.Join(SenderFlagCodes, ", "))
			continue
		}
		if r.BusinessDays < 0 || r.BusinessDays > 30 {
			bad(key+".business_days", "must be between 0 and 30, got %d", r.BusinessDays)
		}
		if r.Max < 0 {
			bad(key+".max", "must not be negative")
		}
	}
	if c.MaxHold < 0 {
		bad("max_hold", "must be > 0")
	}
	if c.MaxHold.D() > 365*24*time.Hour {
		bad("max_hold", "must be at most 365d, got %s", c.MaxHold)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"patient_request.default_max", c.PatientRequest.DefaultMax},
		{"clinician_determination.default_review", c.ClinicianDetermination.DefaultReview},
		{"data_error.max", c.DataError.Max},
	} {
		if d.v < 0 {
			bad(d.key, "must not be negative")
		}
	}
	for i, t := range c.Notify.QuietTags {
		if !cfgTagNameRe.MatchString(t) {
			bad(fmt.Sprintf("notify.quiet_tags[%d]", i), "must be a tag name such as malignancy, got %q", t)
		}
	}
	for _, tag := range cfgKeys(c.Templates) {
		if !cfgTagNameRe.MatchString(tag) {
			bad("templates."+tag, "must be a tag name such as malignancy")
			continue
		}
		for _, lang := range cfgKeys(c.Templates[tag]) {
			if !languageRe.MatchString(lang) {
				bad("templates."+tag+"."+lang, "language must be an ISO 639 code such as en or es")
			} else if strings.TrimSpace(c.Templates[tag][lang]) == "" {
				bad("templates."+tag+"."+lang, "must not be empty")
			}
		}
	}
	return errors.Join(errs...)
}

// missingRuleMsg says that jurisdiction j has no rule, and how to fix it.
func missingRuleMsg(j string) string {
	fix := fmt.Sprintf("add a rule under policy.jurisdictions.%s (citation, applies_to, clock, time_zone)", j)
	if p := PresetFor(j); p != "" {
		fix = fmt.Sprintf("add policy.jurisdictions: {%s: {statute: %s}} to apply the shipped preset", j, p)
	}
	return fmt.Sprintf("%q has no rule in policy.jurisdictions, so no state law would be applied to its results; %s, or declare policy.jurisdictions: {%s: {no_state_law: true}} if it has no such law", j, fix, j)
}

func validZone(z string) bool {
	_, err := time.LoadLocation(z)
	return err == nil && z != "Local"
}

// Warnings returns what an operator should read although resultgate can
// start: a statute clock counted in policy.time_zone because neither its rule
// nor the facility names a zone. Each names its key, as Validate's errors do.
func (c *Config) Warnings() []string {
	var out []string
	for _, z := range c.zoneProblems(true) {
		out = append(out, "policy."+z[0]+": "+z[1])
	}
	return out
}

// zoneProblems finds the state-law rules whose clock has no zone of its own
// for some facility they cover: an error (as {key, message}) when the clock
// would be counted in UTC without anyone having said so, a warning when it
// falls back to policy.time_zone.
func (c *Config) zoneProblems(warnings bool) [][2]string {
	var out [][2]string
	for _, j := range cfgKeys(c.Jurisdictions) {
		r := c.Jurisdictions[j].resolve()
		if r.NoStateLaw || r.TimeZone != "" || !r.Clock.countsDays() {
			continue // hours elapse alike in every zone
		}
		// Who is counted in the fallback zone: the facilities mapped to j
		// without a zone of their own, and every other facility when j is
		// the default.
		var without []string
		for _, fac := range cfgKeys(c.FacilityJurisdictions) {
			if c.FacilityJurisdictions[fac] == j && c.FacilityTimeZones[fac] == "" {
				without = append(without, fac)
			}
		}
		who := ""
		switch {
		case c.Jurisdiction == j:
			who = "results of facilities without a facility_time_zones entry"
		case len(without) > 0:
			who = "results of " + strings.Join(without, ", ")
		default:
			mapped := false
			for _, x := range c.FacilityJurisdictions {
				mapped = mapped || x == j
			}
			if mapped {
				continue // every facility it covers has its own zone
			}
			who = "its results"
		}
		key := "jurisdictions." + j + ".time_zone"
		switch {
		case c.TimeZone == "" && !warnings:
			out = append(out, [2]string{key, fmt.Sprintf("must be set: the statute's days for %s would be counted in UTC, hours off the local day; set the IANA zone the statute is counted in (e.g. America/Chicago), or policy.facility_time_zones for each facility", who)})
		case c.TimeZone != "" && warnings:
			out = append(out, [2]string{key, fmt.Sprintf("not set: the statute's days for %s are counted in policy.time_zone (%s); set the zone the statute is counted in if it differs", who, c.TimeZone)})
		}
	}
	return out
}

func validateJurisdiction(key string, r JurisdictionRule, bad func(string, string, ...any)) {
	if r.NoStateLaw {
		if r.Statute != "" || r.Citation != "" || len(r.AppliesTo) > 0 || r.Clock != (Clock{}) || r.ProviderMayReleaseEarlier != nil || r.TimeZone != "" {
			bad(key+".no_state_law", "takes no other key but note: a jurisdiction without state law has no statute, citation, applies_to, clock or time_zone")
		}
		return
	}
	if r.TimeZone != "" && !validZone(r.TimeZone) {
		bad(key+".time_zone", "unknown time zone %q (want an IANA zone such as America/Chicago)", r.TimeZone)
	}
	if r.Statute != "" {
		if _, ok := Statutes[r.Statute]; !ok {
			bad(key+".statute", "unknown statute preset %q (known: %s)", r.Statute, strings.Join(StatuteNames(), ", "))
			return
		}
	}
	eff := r.resolve()
	if eff.Citation == "" {
		bad(key+".citation", "is required: a state-law basis must cite the law")
	}
	validateAppliesTo(key+".applies_to", eff.AppliesTo, true, bad)
	validateClock(key+".clock", eff.Clock, bad)
}

func validateClock(key string, c Clock, bad func(string, string, ...any)) {
	n := 0
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{
		{"hours", c.Hours, 24 * 365}, {"calendar_days", c.CalendarDays, 365},
		{"business_days", c.BusinessDays, 260}, {"not_before_day", c.NotBeforeDay, 365},
	} {
		if f.v < 0 {
			bad(key+"."+f.name, "must be > 0")
		}
		if f.v > f.max {
			bad(key+"."+f.name, "must be at most %d, got %d", f.max, f.v)
		}
		if f.v != 0 {
			n++
		}
	}
	if n != 1 {
		bad(key, "exactly one of hours, calendar_days, business_days, not_before_day must be set")
	}
}

func validateAppliesTo(key string, a [][]string, required bool, bad func(string, string, ...any)) {
	if required && len(a) == 0 {
		bad(key, "must list at least one tag combination")
	}
	for i, set := range a {
		if len(set) == 0 {
			bad(fmt.Sprintf("%s[%d]", key, i), "must list at least one tag")
		}
		for j, t := range set {
			if !cfgTagNameRe.MatchString(t) {
				bad(fmt.Sprintf("%s[%d][%d]", key, i, j), "must be a tag name such as pathology, got %q", t)
			}
		}
	}
}

// resolve returns the rule with its preset's values filled in where the rule
// leaves them empty.
func (r JurisdictionRule) resolve() JurisdictionRule {
	p, ok := Statutes[r.Statute]
	if !ok {
		return r
	}
	out := p.Rule
	out.Statute = r.Statute
	if r.Citation != "" {
		out.Citation = r.Citation
	}
	if len(r.AppliesTo) > 0 {
		out.AppliesTo = r.AppliesTo
	}
	if r.Clock != (Clock{}) {
		out.Clock = r.Clock
	}
	if r.ProviderMayReleaseEarlier != nil {
		out.ProviderMayReleaseEarlier = r.ProviderMayReleaseEarlier
	}
	if r.TimeZone != "" {
		out.TimeZone = r.TimeZone
	}
	if r.Note != "" {
		// Keep the preset's caveat; the site's note (e.g. counsel's
		// sign-off) is added to it, not put in its place.
		out.Note = appendSentence(p.Rule.Note, r.Note)
	}
	return out
}

func cfgKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func inList(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
