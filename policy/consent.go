package policy

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	conpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/consent_go_proto"
)

// The resultgate Consent profile (docs/CONSENT.md). The base URL is a
// canonical identifier, not necessarily resolvable.
const (
	FHIRBase = "http://resultgate.org/fhir"
	// TagCodeSystem holds resultgate's tag names (pathology, malignancy, ...)
	// as codes.
	TagCodeSystem = FHIRBase + "/CodeSystem/result-tag"
	// ExtReleaseCondition (valueCode) is the end condition of a deny
	// provision: clinician-review, elapsed, earlier-of or later-of.
	ExtReleaseCondition = FHIRBase + "/StructureDefinition/release-condition"
	// ExtReleaseDelay (valueDuration) is the delay for elapsed, earlier-of
	// and later-of.
	ExtReleaseDelay = FHIRBase + "/StructureDefinition/release-delay"
	// ExtReleaseMaximum (valueDuration) is the longest the patient wants the
	// result held.
	ExtReleaseMaximum = FHIRBase + "/StructureDefinition/release-maximum"

	SystemLOINC        = "http://loinc.org"
	SystemV2_0074      = "http://terminology.hl7.org/CodeSystem/v2-0074"
	SystemConsentScope = "http://terminology.hl7.org/CodeSystem/consentscope"

	// LOINCPartPathology and LOINCPartRadiology are the LOINC parts the
	// profile accepts as categories.
	LOINCPartPathology = "LP7839-6"
	LOINCPartRadiology = "LP29684-5"
)

// MaxConsentBytes bounds the size of a Consent the reader accepts.
const MaxConsentBytes = 1 << 20

// ErrConsent is wrapped by every error ParseConsent returns.
var ErrConsent = errors.New("consent")

// maxConsentDuration bounds delays and maxima in a Consent.
const maxConsentDuration = 365 * 24 * time.Hour

// Coding is a code in a code system.
type Coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

// Provision is one nested deny provision: which results it covers and how
// long they are held.
type Provision struct {
	// Path is the provision's FHIRPath, e.g. "Consent.provision.provision[0]".
	Path string `json:"path"`
	// Codes are the categories and codes covered; empty covers every result.
	Codes []Coding `json:"codes,omitempty"`
	// Until is the end condition: clinician-review, elapsed, earlier-of, later-of.
	Until string `json:"until"`
	// Delay is the delay for elapsed, earlier-of and later-of.
	Delay time.Duration `json:"delay,omitempty"`
	// Max is the maximum hold; zero means the configured default.
	Max time.Duration `json:"max,omitempty"`
}

// Preference is a patient's result-release preference, read from a FHIR R4
// Consent in the resultgate profile.
type Preference struct {
	ConsentID string `json:"consent_id,omitempty"`
	// PatientIdentifier and PatientIdentifierSystem come from
	// Consent.patient.identifier; PatientReference from Consent.patient.reference.
	// They are PHI: stored, never logged.
	PatientIdentifier       string `json:"patient_identifier,omitempty"`
	PatientIdentifierSystem string `json:"patient_identifier_system,omitempty"`
	PatientReference        string `json:"patient_reference,omitempty"`
	// Status is "active" or "inactive" (revoked).
	Status string `json:"status"`
	// Recorded is Consent.dateTime.
	Recorded time.Time `json:"recorded,omitempty"`
	// Start and End are Consent.provision.period.
	Start time.Time `json:"start,omitempty"`
	End   time.Time `json:"end,omitempty"`
	// Provisions are the nested deny provisions; none means "release
	// immediately".
	Provisions []Provision `json:"provisions"`
}

// Revoked reports whether the patient withdrew the preference.
func (p *Preference) Revoked() bool { return p.Status == "inactive" }

// ReleaseImmediately reports whether the preference asks for results at once.
func (p *Preference) ReleaseImmediately() bool { return !p.Revoked() && len(p.Provisions) == 0 }

// MatchesPatient reports whether the preference belongs to the patient with
// the given Report.PatientID. A Consent naming its patient only by reference
// is trusted to have been filed under the right patient by the caller.
func (p *Preference) MatchesPatient(reportPatientID string) bool {
	if p.PatientIdentifier == "" {
		return true
	}
	return hl7IDPart(reportPatientID) == strings.TrimSpace(p.PatientIdentifier)
}

var (
	pathologySections = []string{"SP", "CP", "PAT"}
	radiologySections = []string{"RAD", "CT", "MR", "NMR", "NMS", "RUS", "VUS", "OUS", "CUS", "RX", "XRC", "IMG"}
	// v2Table0074 is HL7 table 0074 (diagnostic service section ID).
	v2Table0074 = []string{
		"AU", "BG", "BLB", "CG", "CH", "CP", "CT", "CTH", "CUS", "EC", "EN", "GE", "HM", "ICU", "IMG",
		"IMM", "LAB", "MB", "MCB", "MR", "MYC", "NMR", "NMS", "NRS", "OSL", "OT", "OTH", "OUS", "PAT",
		"PF", "PHR", "PHY", "PT", "RAD", "RC", "RT", "RUS", "RX", "SP", "SR", "TX", "URN", "VR", "VUS", "XRC",
	}
)

// Matches reports whether the provision covers the result, and names what
// matched (for the basis detail).
func (pv Provision) Matches(r *Report, c Classification) (string, bool) {
	if len(pv.Codes) == 0 {
		return "all", true
	}
	for _, cd := range pv.Codes {
		switch cd.System {
		case TagCodeSystem:
			if c.Has(cd.Code) {
				return cd.Code, true
			}
		case SystemLOINC:
			switch cd.Code {
			case LOINCPartPathology:
				if c.Has(TagPathology) || c.Has(TagCytology) || hasSection(r, pathologySections) {
					return "pathology", true
				}
			case LOINCPartRadiology:
				if c.Has(TagImaging) || hasSection(r, radiologySections) {
					return "radiology", true
				}
			default:
				if hasLOINC(r, cd.Code) {
					return "LOINC " + cd.Code, true
				}
			}
		case SystemV2_0074:
			if hasSection(r, []string{cd.Code}) {
				return "service section " + cd.Code, true
			}
		}
	}
	return "", false
}

func hasSection(r *Report, sections []string) bool {
	for _, o := range r.Orders {
		for _, s := range sections {
			if strings.EqualFold(strings.TrimSpace(o.ServiceSection), s) {
				return true
			}
		}
	}
	return false
}

func hasLOINC(r *Report, code string) bool {
	is := func(c Coded) bool {
		if c.Code == code && isLOINCSystem(c.System) {
			return true
		}
		for _, a := range c.Alt {
			if a.Code == code && isLOINCSystem(a.System) {
				return true
			}
		}
		return false
	}
	for _, o := range r.Orders {
		if is(o.Service) {
			return true
		}
		for _, x := range o.Observations {
			if is(x.ID) {
				return true
			}
		}
	}
	return false
}

func isLOINCSystem(s string) bool {
	s = strings.ToUpper(strings.TrimSpace(s))
	return s == "LN" || s == "LOINC" || s == "HTTP://LOINC.ORG"
}

var (
	unmarshallerOnce sync.Once
	unmarshaller     *jsonformat.Unmarshaller
	unmarshallerErr  error
)

func consentUnmarshaller() (*jsonformat.Unmarshaller, error) {
	unmarshallerOnce.Do(func() {
		unmarshaller, unmarshallerErr = jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
		if unmarshaller != nil {
			// Bound recursion on hostile input; the profile needs ~10 levels.
			unmarshaller.MaxNestingDepth = 40
		}
	})
	return unmarshaller, unmarshallerErr
}

func consentErr(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConsent, path, fmt.Sprintf(format, args...))
}

// ParseConsent reads a FHIR R4 Consent (JSON) in the resultgate profile into
// a Preference. The resource is unmarshalled and validated with
// github.com/google/fhir/go; then the profile is checked. Errors name the
// element, e.g. `consent: Consent.provision.provision[0].type: nested
// provisions must be deny`.
func ParseConsent(data []byte) (*Preference, error) {
	if len(data) > MaxConsentBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrConsent, MaxConsentBytes)
	}
	u, err := consentUnmarshaller()
	if err != nil {
		return nil, fmt.Errorf("%w: FHIR reader: %v", ErrConsent, err)
	}
	msg, err := u.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrConsent, describeFHIRError(err))
	}
	cr, ok := msg.(*rpb.ContainedResource)
	if !ok || cr.GetConsent() == nil {
		return nil, consentErr("resourceType", "must be Consent")
	}
	return preferenceFrom(cr.GetConsent())
}

// describeFHIRError renders the FHIR library's unmarshal errors as
// "path: details" joined by "; ". The library's diagnostics may hold patient
// data, so only the key name of an unknown field is kept from them.
func describeFHIRError(err error) string {
	v := reflect.ValueOf(err)
	var items []reflect.Value
	switch {
	case v.Kind() == reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			items = append(items, v.Index(i))
		}
	case v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct:
		items = append(items, v)
	}
	var msgs []string
	for _, it := range items {
		if it.Kind() == reflect.Pointer {
			if it.IsNil() {
				continue
			}
			it = it.Elem()
		}
		if it.Kind() != reflect.Struct {
			continue
		}
		field := func(name string) string {
			f := it.FieldByName(name)
			if f.IsValid() && f.Kind() == reflect.String {
				return f.String()
			}
			return ""
		}
		path, details := field("Path"), field("Details")
		if details == "" {
			continue
		}
		if details == "unknown field" {
			details += " " + field("Diagnostics")
		}
		if path == "" {
			msgs = append(msgs, details)
		} else {
			msgs = append(msgs, path+": "+details)
		}
	}
	if len(msgs) == 0 {
		return "invalid FHIR R4 JSON: " + consentOneLine(err.Error())
	}
	if len(msgs) > 5 {
		msgs = append(msgs[:5], fmt.Sprintf("and %d more", len(msgs)-5))
	}
	return consentOneLine(strings.Join(msgs, "; "))
}

func consentOneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func preferenceFrom(c *conpb.Consent) (*Preference, error) {
	p := &Preference{ConsentID: c.GetId().GetValue()}
	if len(c.GetModifierExtension()) > 0 {
		return nil, consentErr("Consent.modifierExtension", "not supported")
	}
	switch c.GetStatus().GetValue() {
	case cpb.ConsentStateCode_ACTIVE:
		p.Status = "active"
	case cpb.ConsentStateCode_INACTIVE:
		p.Status = "inactive"
	default:
		return nil, consentErr("Consent.status", "must be active or inactive (revoked), got %s", statusName(c.GetStatus().GetValue()))
	}
	if !hasCoding(c.GetScope(), SystemConsentScope, "patient-privacy") {
		return nil, consentErr("Consent.scope", "must be %s#patient-privacy", SystemConsentScope)
	}
	pat := c.GetPatient()
	switch {
	case pat == nil:
		return nil, consentErr("Consent.patient", "required")
	case pat.GetIdentifier() != nil:
		p.PatientIdentifier = pat.GetIdentifier().GetValue().GetValue()
		p.PatientIdentifierSystem = pat.GetIdentifier().GetSystem().GetValue()
		if strings.TrimSpace(p.PatientIdentifier) == "" {
			return nil, consentErr("Consent.patient.identifier.value", "required")
		}
		if pid := pat.GetPatientId(); pid != nil {
			p.PatientReference = "Patient/" + pid.GetValue()
		}
	case pat.GetPatientId() != nil:
		p.PatientReference = "Patient/" + pat.GetPatientId().GetValue()
	default:
		return nil, consentErr("Consent.patient", "must reference a Patient or carry an identifier")
	}
	if dt := c.GetDateTime(); dt != nil {
		p.Recorded = time.UnixMicro(dt.GetValueUs()).UTC()
	}
	base := c.GetProvision()
	if base == nil {
		return nil, consentErr("Consent.provision", "required")
	}
	const bp = "Consent.provision"
	if base.GetType().GetValue() != cpb.ConsentProvisionTypeCode_PERMIT {
		return nil, consentErr(bp+".type", "must be permit (the base provision permits; nested deny provisions hold)")
	}
	if err := unsupported(bp, base, false); err != nil {
		return nil, err
	}
	if err := ownExtensions(bp, base.GetExtension(), nil); err != nil {
		return nil, err
	}
	if per := base.GetPeriod(); per != nil {
		if s := per.GetStart(); s != nil {
			p.Start = time.UnixMicro(s.GetValueUs()).UTC()
		}
		if e := per.GetEnd(); e != nil {
			p.End = time.UnixMicro(e.GetValueUs()).UTC()
		}
		if !p.Start.IsZero() && !p.End.IsZero() && !p.End.After(p.Start) {
			return nil, consentErr(bp+".period", "end must be after start")
		}
	}
	p.Provisions = []Provision{}
	for i, n := range base.GetProvision() {
		pv, err := provisionFrom(fmt.Sprintf("%s.provision[%d]", bp, i), n)
		if err != nil {
			return nil, err
		}
		p.Provisions = append(p.Provisions, pv)
	}
	return p, nil
}

func statusName(v cpb.ConsentStateCode_Value) string {
	return strings.ReplaceAll(strings.ToLower(v.String()), "_", "-")
}

// unsupported rejects provision elements the profile does not define.
func unsupported(path string, n *conpb.Consent_Provision, nested bool) error {
	if len(n.GetModifierExtension()) > 0 {
		return consentErr(path+".modifierExtension", "not supported")
	}
	checks := []struct {
		name string
		set  bool
	}{
		{"actor", len(n.GetActor()) > 0},
		{"action", len(n.GetAction()) > 0},
		{"securityLabel", len(n.GetSecurityLabel()) > 0},
		{"purpose", len(n.GetPurpose()) > 0},
		{"class", len(n.GetClassValue()) > 0},
		{"dataPeriod", n.GetDataPeriod() != nil},
		{"data", len(n.GetData()) > 0},
	}
	if nested {
		checks = append(checks, struct {
			name string
			set  bool
		}{"period", n.GetPeriod() != nil}, struct {
			name string
			set  bool
		}{"provision", len(n.GetProvision()) > 0})
	} else {
		checks = append(checks, struct {
			name string
			set  bool
		}{"code", len(n.GetCode()) > 0})
	}
	for _, c := range checks {
		if c.set {
			return consentErr(path+"."+c.name, "not supported by the resultgate Consent profile")
		}
	}
	return nil
}

// ownExtensions rejects extensions under the resultgate base that are not in
// allowed; others' extensions are ignored, as FHIR allows for non-modifier
// extensions.
func ownExtensions(path string, exts []*dpb.Extension, allowed []string) error {
	for i, x := range exts {
		url := x.GetUrl().GetValue()
		if strings.HasPrefix(url, FHIRBase+"/") && !inList(allowed, url) {
			return consentErr(fmt.Sprintf("%s.extension[%d]", path, i), "unknown resultgate extension %q", url)
		}
	}
	return nil
}

func provisionFrom(path string, n *conpb.Consent_Provision) (Provision, error) {
	pv := Provision{Path: path}
	if n.GetType().GetValue() != cpb.ConsentProvisionTypeCode_DENY {
		return pv, consentErr(path+".type", "nested provisions must be deny")
	}
	if err := unsupported(path, n, true); err != nil {
		return pv, err
	}
	exts := n.GetExtension()
	if err := ownExtensions(path, exts, []string{ExtReleaseCondition, ExtReleaseDelay, ExtReleaseMaximum}); err != nil {
		return pv, err
	}
	var haveDelay bool
	for i, x := range exts {
		xp := fmt.Sprintf("%s.extension[%d]", path, i)
		switch x.GetUrl().GetValue() {
		case ExtReleaseCondition:
			if pv.Until != "" {
				return pv, consentErr(xp, "release-condition given twice")
			}
			code := x.GetValue().GetCode()
			if code == nil {
				return pv, consentErr(xp+".valueCode", "required for release-condition")
			}
			switch v := code.GetValue(); v {
			case UntilClinicianReview, UntilElapsed, UntilEarlierOf, UntilLaterOf:
				pv.Until = v
			default:
				return pv, consentErr(xp+".valueCode", "must be clinician-review, elapsed, earlier-of or later-of, got %q", v)
			}
		case ExtReleaseDelay:
			if haveDelay {
				return pv, consentErr(xp, "release-delay given twice")
			}
			d, err := durationValue(xp, x)
			if err != nil {
				return pv, err
			}
			pv.Delay, haveDelay = d, true
		case ExtReleaseMaximum:
			if pv.Max != 0 {
				return pv, consentErr(xp, "release-maximum given twice")
			}
			d, err := durationValue(xp, x)
			if err != nil {
				return pv, err
			}
			pv.Max = d
		}
	}
	if pv.Until == "" {
		return pv, consentErr(path+".extension", "release-condition (%s) required", ExtReleaseCondition)
	}
	switch pv.Until {
	case UntilElapsed, UntilEarlierOf, UntilLaterOf:
		if !haveDelay {
			return pv, consentErr(path+".extension", "release-delay required for %s", pv.Until)
		}
	case UntilClinicianReview:
		if haveDelay {
			return pv, consentErr(path+".extension", "release-delay not allowed with clinician-review (use earlier-of or later-of)")
		}
	}
	if pv.Max != 0 && haveDelay && pv.Max < pv.Delay {
		return pv, consentErr(path+".extension", "release-maximum (%s) is shorter than release-delay (%s)", Duration(pv.Max), Duration(pv.Delay))
	}
	for i, cc := range n.GetCode() {
		for j, cd := range cc.GetCoding() {
			cp := fmt.Sprintf("%s.code[%d].coding[%d]", path, i, j)
			c := Coding{System: cd.GetSystem().GetValue(), Code: cd.GetCode().GetValue()}
			if c.Code == "" {
				return pv, consentErr(cp+".code", "required")
			}
			switch c.System {
			case TagCodeSystem:
				if !cfgTagNameRe.MatchString(c.Code) {
					return pv, consentErr(cp+".code", "not a resultgate tag name: %q", c.Code)
				}
			case SystemLOINC:
				if strings.HasPrefix(c.Code, "LP") && c.Code != LOINCPartPathology && c.Code != LOINCPartRadiology {
					return pv, consentErr(cp+".code", "unsupported LOINC part %q (supported: %s pathology, %s radiology)", c.Code, LOINCPartPathology, LOINCPartRadiology)
				}
			case SystemV2_0074:
				if !inList(v2Table0074, c.Code) {
					return pv, consentErr(cp+".code", "not an HL7 table 0074 code: %q", c.Code)
				}
			case "":
				return pv, consentErr(cp+".system", "required")
			default:
				return pv, consentErr(cp+".system", "unsupported code system %q", c.System)
			}
			pv.Codes = append(pv.Codes, c)
		}
		if len(cc.GetCoding()) == 0 {
			return pv, consentErr(fmt.Sprintf("%s.code[%d]", path, i), "needs at least one coding (text alone cannot be matched)")
		}
	}
	return pv, nil
}

// durationValue reads a valueDuration in UCUM minutes, hours, days or weeks.
func durationValue(path string, x *dpb.Extension) (time.Duration, error) {
	d := x.GetValue().GetDuration()
	if d == nil {
		return 0, consentErr(path+".valueDuration", "required")
	}
	if d.GetComparator() != nil {
		return 0, consentErr(path+".valueDuration.comparator", "not supported")
	}
	if sys := d.GetSystem().GetValue(); sys != "" && sys != "http://unitsofmeasure.org" {
		return 0, consentErr(path+".valueDuration.system", "must be http://unitsofmeasure.org, got %q", sys)
	}
	var unit time.Duration
	switch code := d.GetCode().GetValue(); code {
	case "min":
		unit = time.Minute
	case "h":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	case "wk":
		unit = 7 * 24 * time.Hour
	case "":
		return 0, consentErr(path+".valueDuration.code", "required (UCUM min, h, d or wk)")
	default:
		return 0, consentErr(path+".valueDuration.code", "must be UCUM min, h, d or wk, got %q", code)
	}
	raw := d.GetValue().GetValue()
	if raw == "" {
		return 0, consentErr(path+".valueDuration.value", "required")
	}
	// strconv, not math/big: a decimal such as 1e999999999 must not make the
	// reader compute a huge power of ten (found by FuzzParseConsent).
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, consentErr(path+".valueDuration.value", "must be a number, got %s", raw)
	}
	if !(v > 0) || math.IsInf(v, 0) && v < 0 {
		return 0, consentErr(path+".valueDuration.value", "must be > 0, got %s", raw)
	}
	f := v * float64(unit)
	if math.IsInf(f, 0) || f > float64(maxConsentDuration) {
		return 0, consentErr(path+".valueDuration", "must be at most 365 days")
	}
	out := time.Duration(f).Round(time.Second)
	if out < time.Minute {
		return 0, consentErr(path+".valueDuration", "must be at least 1 minute")
	}
	return out, nil
}

func hasCoding(cc *dpb.CodeableConcept, system, code string) bool {
	for _, c := range cc.GetCoding() {
		if c.GetSystem().GetValue() == system && c.GetCode().GetValue() == code {
			return true
		}
	}
	return false
}
