package fhirmap

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/resultgate/resultgate/hl7"

	c4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	ptpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
)

// What the Bundle's Patient resource carries (Options.Patient).
const (
	// PatientDemographics is the default: the PID-3 identifiers and the keyed
	// hash, and the demographics a portal needs to match the patient: name
	// (PID-5), birth date (PID-7) and sex (PID-8).
	PatientDemographics = "demographics"
	// PatientIdentifiers is the PID-3 identifiers and the keyed hash only.
	PatientIdentifiers = "identifiers"
)

// Identifier systems of the Patient resource.
const (
	// SystemPatientKey is the system of the keyed hash identifier: the id of
	// the Patient resource and of every subject reference.
	SystemPatientKey = Base + "/NamingSystem/patient-key"
	// SystemAssigningAuthority is the root of the default system of a PID-3
	// identifier whose assigning authority (CX-4) is neither configured nor
	// an OID, UUID or URI: SystemAssigningAuthority + "/" + the namespace ID,
	// path-escaped.
	SystemAssigningAuthority = Base + "/NamingSystem/assigning-authority"
)

// patient builds the Patient resource named by Options.PatientRef from the
// message's PID (which may be absent: the resource then carries the keyed
// hash alone).
func (b *builder) patient() (*ptpb.Patient, string) {
	id := strings.TrimPrefix(b.opts.PatientRef, "Patient/")
	x := &b.bundleParts
	p := &x.patient
	x.patID.Value = id
	p.Id = &x.patID
	if pid := b.pid; pid != nil {
		// One pass over the repetitions: an index loop over Rep(i) rescans
		// the field each time (quadratic on a hostile PID-3; issue 15).
		f := pid.Field(3)
		for _, r := range f.AllReps() {
			if ident := b.patientIdentifier(r); ident != nil {
				if p.Identifier == nil {
					p.Identifier = b.ar.identPtrs.ptrs(f.Reps() + 1)
				}
				p.Identifier = append(p.Identifier, ident)
			}
		}
	}
	x.keySystem.Value, x.keyValue.Value = SystemPatientKey, id
	x.key.System, x.key.Value = &x.keySystem, &x.keyValue
	p.Identifier = append(p.Identifier, &x.key)
	if b.pid != nil && b.opts.Patient != PatientIdentifiers {
		for _, r := range b.pid.Field(5).AllReps() {
			if n := humanName(&b.ar, r); n != nil {
				p.Name = append(p.Name, n)
			}
		}
		if g, ok := genderOf(clean(b.pid.Field(8).Value())); ok {
			x.gender.Value = g
			p.Gender = &x.gender
		}
		p.BirthDate = birthDate(clean(b.pid.Field(7).Value()))
	}
	return p, id
}

// patientIdentifier maps one PID-3 repetition (CX) to an Identifier: CX-1
// value, system from CX-4 (see identifierSystem), type from CX-5, CX-4's
// namespace as assigner display. Nil when CX-1 is empty.
func (b *builder) patientIdentifier(f hl7.Field) *d4.Identifier {
	v := clean(f.Component(1))
	if v == "" {
		return nil
	}
	a := &b.ar
	id := a.identifiers.get()
	id.Value = a.newString(v)
	ns, uid, utype := clean(f.Sub(4, 1)), clean(f.Sub(4, 2)), strings.ToUpper(clean(f.Sub(4, 3)))
	if sys := identifierSystem(b.opts.IdentifierSystems, ns, uid, utype); sys != "" {
		id.System = a.newURI(sys)
	}
	if t := clean(f.Component(5)); t != "" {
		if identifierTypes[t] {
			id.Type = a.conceptCode(SystemV2_0203, t, "")
		} else {
			id.Type = a.conceptText(t)
		}
	}
	if ns != "" {
		r := a.logicalRefs.get()
		r.ref.Display = a.newString(ns)
		id.Assigner = &r.ref
	}
	return id
}

// identifierSystem chooses the system URI of an identifier assigned by the
// authority with namespace ns and universal ID uid of type utype (HD-1..3):
// the configured system for ns, else for uid; else urn:oid: for an ISO OID,
// urn:uuid: for a UUID, the URI itself for a URI; else
// SystemAssigningAuthority/<ns>. "" when the authority is not given at all.
func identifierSystem(systems map[string]string, ns, uid, utype string) string {
	if s, ok := systems[ns]; ok && ns != "" {
		return s
	}
	if s, ok := systems[uid]; ok && uid != "" {
		return s
	}
	switch {
	case uid != "" && utype == "ISO" && oidRe.MatchString(uid):
		return "urn:oid:" + uid
	case uid != "" && utype == "UUID" && uuidRe.MatchString(uid):
		return "urn:uuid:" + strings.ToLower(uid)
	case uid != "" && utype == "URI" && validURI(uid) && isAbsoluteURI(uid):
		return uid
	case ns != "":
		return SystemAssigningAuthority + "/" + url.PathEscape(ns)
	}
	return ""
}

var uuidRe = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// checkSystemURI checks a configured identifier system: an absolute URI
// without white space.
func checkSystemURI(s string) error {
	if !validURI(s) || !isAbsoluteURI(s) {
		return fmt.Errorf("system %q is not an absolute URI (such as urn:oid:1.2.3 or https://example.org/mrn)", s)
	}
	return nil
}

// isAbsoluteURI reports whether s has a scheme.
func isAbsoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}

// identifierTypes are the HL7 table 0203 identifier type codes a PID-3 CX-5
// is mapped to as a coding of http://terminology.hl7.org/CodeSystem/v2-0203;
// any other CX-5 becomes the type's text.
var identifierTypes = map[string]bool{
	"MR": true, "PI": true, "PT": true, "PN": true, "PRN": true, "AN": true, "SS": true,
	"SB": true, "DL": true, "PPN": true, "NI": true, "NH": true, "NIIP": true, "JHN": true,
	"MA": true, "MC": true, "MB": true, "HC": true, "BC": true, "CZ": true, "EN": true,
	"U": true, "VN": true, "DR": true, "DFN": true, "PE": true, "PCN": true,
}

// humanName maps one PID-5 repetition (XPN) to a HumanName (v2-to-FHIR
// XPN[HumanName]): XPN-1.1 family, XPN-2 and XPN-3 given, XPN-4 and XPN-6
// suffix, XPN-5 prefix, XPN-7 name type as use (L official, D usual, M
// maiden, N nickname; others leave use out). Nil when nothing is named.
func humanName(a *arena, f hl7.Field) *d4.HumanName {
	n := &d4.HumanName{Family: a.str(f.Sub(1, 1))}
	for _, c := range []int{2, 3} {
		if s := a.str(f.Component(c)); s != nil {
			n.Given = append(n.Given, s)
		}
	}
	if s := a.str(f.Component(5)); s != nil {
		n.Prefix = append(n.Prefix, s)
	}
	for _, c := range []int{4, 6} {
		if s := a.str(f.Component(c)); s != nil {
			n.Suffix = append(n.Suffix, s)
		}
	}
	if n.Family == nil && len(n.Given) == 0 {
		return nil
	}
	use := c4.NameUseCode_INVALID_UNINITIALIZED
	switch clean(f.Component(7)) {
	case "L":
		use = c4.NameUseCode_OFFICIAL
	case "D":
		use = c4.NameUseCode_USUAL
	case "M":
		use = c4.NameUseCode_MAIDEN
	case "N":
		use = c4.NameUseCode_NICKNAME
	}
	if use != c4.NameUseCode_INVALID_UNINITIALIZED {
		n.Use = &d4.HumanName_UseCode{Value: use}
	}
	return n
}

// genderOf maps PID-8 (HL7 table 0001) to FHIR administrative-gender: F
// female, M male, O and A (ambiguous) other, U unknown. N (not applicable)
// and anything else is left out rather than guessed.
func genderOf(s string) (c4.AdministrativeGenderCode_Value, bool) {
	switch strings.ToUpper(s) {
	case "F":
		return c4.AdministrativeGenderCode_FEMALE, true
	case "M":
		return c4.AdministrativeGenderCode_MALE, true
	case "O", "A":
		return c4.AdministrativeGenderCode_OTHER, true
	case "U":
		return c4.AdministrativeGenderCode_UNKNOWN, true
	}
	return c4.AdministrativeGenderCode_INVALID_UNINITIALIZED, false
}

// birthDate maps PID-7 (DTM) to a FHIR date of the precision sent (year,
// month or day). The date is the calendar date as written: a birth date is
// not converted between time zones, so any time and offset are ignored. Nil
// for anything malformed.
func birthDate(s string) *d4.Date {
	var prec d4.Date_Precision
	n := 0
	for n < len(s) && n < 8 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	switch {
	case n >= 8:
		n, prec = 8, d4.Date_DAY
	case n >= 6:
		n, prec = 6, d4.Date_MONTH
	case n >= 4:
		n, prec = 4, d4.Date_YEAR
	default:
		return nil
	}
	year, month, day := atoi(s[0:4]), 1, 1
	if n >= 6 {
		month = atoi(s[4:6])
	}
	if n >= 8 {
		day = atoi(s[6:8])
	}
	if year < 1 || month < 1 || month > 12 || day < 1 {
		return nil
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day || t.Month() != time.Month(month) {
		return nil // 31 February
	}
	return &d4.Date{ValueUs: t.UnixMicro(), Timezone: timezoneUTC, Precision: prec}
}

// atoi reads a string of ASCII digits.
func atoi(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v
}
