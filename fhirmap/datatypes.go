package fhirmap

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resultgate/resultgate/hl7"

	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// FHIR systems used by the mapping.
const (
	SystemLOINC          = "http://loinc.org"
	SystemSNOMED         = "http://snomed.info/sct"
	SystemUCUM           = "http://unitsofmeasure.org"
	SystemV2Prefix       = "http://terminology.hl7.org/CodeSystem/v2-"
	SystemV2_0074        = SystemV2Prefix + "0074"
	SystemV2_0203        = SystemV2Prefix + "0203"
	SystemV3Interp       = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	SystemObsCategory    = "http://terminology.hl7.org/CodeSystem/observation-category"
	SystemDataAbsent     = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
	SystemProvParticType = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
)

// Base is the root of resultgate's own FHIR code systems, naming systems and
// extensions (documented in docs/FHIR.md).
const Base = "https://github.com/resultgate/resultgate/fhir"

// resultgate code systems, identifier systems and extensions.
const (
	SystemReleaseReason  = Base + "/CodeSystem/release-reason"
	SystemHoldBasis      = Base + "/CodeSystem/hold-basis"
	SystemActorRole      = Base + "/CodeSystem/actor-role"
	SystemHoldID         = Base + "/NamingSystem/hold-id"
	SystemActor          = Base + "/NamingSystem/actor"
	SystemMessageControl = Base + "/NamingSystem/hl7v2-message-control-id"
	ExtNotification      = Base + "/StructureDefinition/portal-notification"
	ExtPatientNote       = Base + "/StructureDefinition/patient-note"
	// ExtR5DiagnosticReportNote is the FHIR R5 cross-version extension for
	// DiagnosticReport.note, which R4 lacks; it carries the order's NTEs.
	ExtR5DiagnosticReportNote = "http://hl7.org/fhir/5.0/StructureDefinition/extension-DiagnosticReport.note"
	// ExtR5ObservationValue is the FHIR R5 cross-version extension for
	// Observation.value[x]; it carries valueAttachment (OBX-2 RP), as the
	// v2-to-FHIR IG's #ext-valueAttachment# asks.
	ExtR5ObservationValue = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value"
)

// clean is text trimmed of surrounding white space.
func clean(s string) string { return strings.TrimSpace(text(s)) }

// str returns a FHIR string, or nil when s is blank.
func str(s string) *d4.String {
	s = clean(s)
	if s == "" {
		return nil
	}
	return &d4.String{Value: s}
}

// codingSystems maps HL7 table 0396 coding system names to FHIR system URIs.
var codingSystems = map[string]string{
	"LN":     SystemLOINC,
	"LOINC":  SystemLOINC,
	"SCT":    SystemSNOMED,
	"SNM":    SystemSNOMED,
	"SNOMED": SystemSNOMED,
	"UCUM":   SystemUCUM,
	"I10":    "http://hl7.org/fhir/sid/icd-10",
	"I10C":   "http://hl7.org/fhir/sid/icd-10-cm",
	"ICD10":  "http://hl7.org/fhir/sid/icd-10",
	"I9":     "http://hl7.org/fhir/sid/icd-9-cm",
	"I9C":    "http://hl7.org/fhir/sid/icd-9-cm",
	"I9CDX":  "http://hl7.org/fhir/sid/icd-9-cm",
	"ICDO3":  "http://terminology.hl7.org/CodeSystem/icd-o-3",
	"CPT":    "http://www.ama-assn.org/go/cpt",
	"C4":     "http://www.ama-assn.org/go/cpt",
	"CVX":    "http://hl7.org/fhir/sid/cvx",
	"NDC":    "http://hl7.org/fhir/sid/ndc",
	"RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
	"RXN":    "http://www.nlm.nih.gov/research/umls/rxnorm",
}

// systemFor maps a table 0396 name (or a URI sent in its place) to a FHIR
// system URI; "" when the name is local or unknown (the coding then has no
// system, see docs/FHIR.md).
func systemFor(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return ""
	}
	if s, ok := codingSystems[strings.ToUpper(name)]; ok {
		return s
	}
	u := strings.ToUpper(name)
	if strings.HasPrefix(u, "HL7") && len(u) == 7 && isDigits(u[3:]) {
		return SystemV2Prefix + u[3:]
	}
	if strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://") || strings.HasPrefix(name, "urn:") {
		if validURI(name) {
			return name
		}
	}
	return ""
}

// validURI reports whether s can be a FHIR uri/url: no white space, and
// accepted by net/url (which google/fhir/go's validation uses).
func validURI(s string) bool {
	if s == "" || code(s) != s || strings.ContainsAny(s, " \t\n") {
		return false
	}
	_, err := url.Parse(s)
	return err == nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// coding builds one Coding from a CWE triplet, or nil when it has no code
// (a display alone is not a coding; concept keeps it as text).
func (a *arena) coding(id, display, system string) *d4.Coding {
	c := code(id)
	if c == "" {
		return nil
	}
	return a.newCoding(systemFor(system), c, clean(display))
}

// codingAlloc is a Coding with its elements, allocated together: the
// mapping builds several per Observation.
type codingAlloc struct {
	coding  d4.Coding
	code    d4.Code
	display d4.String
	system  d4.Uri
}

// newCoding returns a Coding of code c with display and system when they
// are not empty.
func (a *arena) newCoding(system, c, display string) *d4.Coding {
	x := a.codings.get()
	x.code.Value = c
	x.coding.Code = &x.code
	if display != "" {
		x.display.Value = display
		x.coding.Display = &x.display
	}
	if system != "" {
		x.system.Value = system
		x.coding.System = &x.system
	}
	return &x.coding
}

// concept maps a CE/CWE/CNE/CF value (the first repetition of f) to a
// CodeableConcept (v2-to-FHIR CWE[CodeableConcept]): the primary triplet
// (1-3), the alternate (4-6) and the v2.7 second alternate (10-12) become
// codings; CWE-9 (original text), or the first display when nothing is
// coded, becomes text. Nil when empty. The components are read in one pass
// over the field (AllComponents gives what Component gives).
func (a *arena) concept(f hl7.Field) *d4.CodeableConcept {
	var comps [13]string // comps[c] is component c; 7 and 8 are not read
	empty := true
	for c, comp := range f.AllComponents() {
		if c > 12 {
			break
		}
		if c != 7 && c != 8 {
			comps[c] = comp.Value()
		}
		empty = false
	}
	if empty {
		return nil
	}
	get := func(c int) string { return comps[c] }
	var codings [3]*d4.Coding
	nc := 0
	for _, t := range [...][3]int{{1, 2, 3}, {4, 5, 6}, {10, 11, 12}} {
		if c := a.coding(get(t[0]), get(t[1]), get(t[2])); c != nil {
			codings[nc] = c
			nc++
		}
	}
	txt := clean(get(9))
	if txt == "" && nc == 0 {
		txt = clean(get(2))
		if txt == "" {
			txt = clean(get(5))
		}
	}
	if txt == "" && nc == 0 {
		// A bare local code with no system and no text keeps its code.
		txt = clean(get(1))
	}
	if txt == "" && nc == 0 {
		return nil
	}
	cc := a.concepts.get()
	if nc > 0 {
		cc.Coding = a.codingPtrs.take(nc)
		copy(cc.Coding, codings[:nc])
	}
	if txt != "" {
		cc.Text = a.newString(txt)
	}
	return cc
}

// conceptText returns a CodeableConcept holding only text, or nil.
func (a *arena) conceptText(s string) *d4.CodeableConcept {
	if t := a.str(s); t != nil {
		cc := a.concepts.get()
		cc.Text = t
		return cc
	}
	return nil
}

// conceptCode returns a CodeableConcept with one coding.
func (a *arena) conceptCode(system, c, display string) *d4.CodeableConcept {
	cc := a.concepts.get()
	cc.Coding = a.codingPtrs.take(1)
	cc.Coding[0] = a.newCoding(system, c, clean(display))
	return cc
}

// identifierEI maps an EI (entity identifier) to an Identifier (v2-to-FHIR
// EI[Identifier]): EI-1 value; EI-3 universal id as system (urn:oid: for ISO,
// urn:uuid: for UUID, as is for a URI); EI-2 namespace as assigner display.
// typeCode, when set, is a v2-0203 identifier type (PLAC, FILL).
func (a *arena) identifierEI(f hl7.Field, typeCode string) *d4.Identifier {
	v := clean(f.Component(1))
	if v == "" {
		return nil
	}
	id := a.identifiers.get()
	id.Value = a.newString(v)
	if typeCode != "" {
		id.Type = a.conceptCode(SystemV2_0203, typeCode, "")
	}
	uid, utype := clean(f.Component(3)), strings.ToUpper(clean(f.Component(4)))
	switch {
	case uid != "" && utype == "ISO" && oidRe.MatchString(uid):
		id.System = a.newURI("urn:oid:" + uid)
	case uid != "" && utype == "UUID":
		id.System = a.newURI("urn:uuid:" + strings.ToLower(uid))
	case uid != "" && (utype == "URI" || strings.HasPrefix(uid, "http://") || strings.HasPrefix(uid, "https://") || strings.HasPrefix(uid, "urn:")) && validURI(uid):
		id.System = a.newURI(uid)
	}
	if ns := a.str(f.Component(2)); ns != nil {
		r := a.logicalRefs.get()
		r.ref.Display = ns
		id.Assigner = &r.ref
	}
	return id
}

var oidRe = regexp.MustCompile(`^[0-2](\.(0|[1-9][0-9]*))+$`)

// personName renders an XCN/CNN name (family at famIdx, given, middle,
// suffix, prefix after it) as display text.
func personName(get func(int) string, famIdx int) string {
	family := clean(get(famIdx))
	given := clean(get(famIdx + 1))
	middle := clean(get(famIdx + 2))
	suffix := clean(get(famIdx + 3))
	prefix := clean(get(famIdx + 4))
	var parts []string
	for _, p := range []string{prefix, given, middle, family, suffix} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " ")
}

// practitionerRef maps one XCN repetition to a logical reference (identifier
// XCN-1, display the name); nil when empty. No Practitioner resource is made.
func (a *arena) practitionerRef(f hl7.Field) *d4.Reference {
	id := clean(f.Component(1))
	name := personName(f.Component, 2)
	return a.logicalRef("Practitioner", id, name)
}

// ndlRef maps an NDL (OBR-32..35: CNN in component 1, as subcomponents) to a
// logical Practitioner reference.
func (a *arena) ndlRef(f hl7.Field) *d4.Reference {
	get := func(s int) string { return f.Sub(1, s) }
	return a.logicalRef("Practitioner", clean(get(1)), personName(get, 2))
}

// organizationRef maps an XON (OBX-23) to a logical Organization reference:
// XON-10 (or XON-3) identifier, XON-1 name.
func (a *arena) organizationRef(f hl7.Field) *d4.Reference {
	id := clean(f.Component(10))
	if id == "" {
		id = clean(f.Component(3))
	}
	return a.logicalRef("Organization", id, clean(f.Component(1)))
}

func (a *arena) logicalRef(typ, id, display string) *d4.Reference {
	if id == "" && display == "" {
		return nil
	}
	x := a.logicalRefs.get()
	x.typ.Value = typ
	x.ref.Type = &x.typ
	if id != "" {
		x.idValue.Value = id
		x.ident.Value = &x.idValue
		x.ref.Identifier = &x.ident
	}
	if display != "" {
		x.display.Value = display
		x.ref.Display = &x.display
	}
	return &x.ref
}

// logicalRefAlloc is a logical Reference with its elements, allocated
// together.
type logicalRefAlloc struct {
	ref     d4.Reference
	typ     d4.Uri
	ident   d4.Identifier
	idValue d4.String
	display d4.String
}

// precision of an HL7 timestamp.
type precision int

const (
	precNone precision = iota
	precYear
	precMonth
	precDay
	precSecond // hour, minute and second precision all render with seconds
	precMilli
	precMicro
)

// hl7Time is a parsed HL7 DTM/TS with its precision.
type hl7Time struct {
	t    time.Time
	prec precision
	utc  bool // no offset written and read in UTC: the zone is "Z"
}

// zone is the offset as written or implied: "Z" or "+hh:mm". The mapping
// writes every time in UTC and does not need it (see dateTimeOf).
func (ht hl7Time) zone() string { return offsetString(ht.t, ht.utc) }

// parseDTM parses an HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ])
// keeping its precision. A timestamp without an offset is read in loc. ok is
// false for anything malformed (the field is then left out of the mapping).
func parseDTM(s string, loc *time.Location) (hl7Time, bool) {
	s = strings.TrimSpace(s)
	mm, ok := dtmParts(s)
	if !ok {
		return hl7Time{}, false
	}
	// Components must be contiguous: a later one without an earlier is malformed
	// (the regexp allows it only because each group is optional).
	num := func(i, def int) int {
		if mm[i] == "" {
			return def
		}
		n, _ := strconv.Atoi(mm[i])
		return n
	}
	if mm[7] != "" && mm[6] == "" {
		return hl7Time{}, false
	}
	y, mo, d, h, mi, sec := num(1, 0), num(2, 1), num(3, 1), num(4, 0), num(5, 0), num(6, 0)
	prec := precYear
	switch {
	case mm[7] != "" && len(mm[7]) == 4:
		prec = precMicro
	case mm[7] != "":
		prec = precMilli
	case mm[4] != "":
		prec = precSecond
	case mm[3] != "":
		prec = precDay
	case mm[2] != "":
		prec = precMonth
	}
	if y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return hl7Time{}, false
	}
	nsec := 0
	if mm[7] != "" {
		frac := (mm[7] + "000000")[:6]
		us, _ := strconv.Atoi(frac)
		nsec = us * 1000
	}
	l := loc
	if mm[8] != "" {
		sign := 1
		if mm[8][0] == '-' {
			sign = -1
		}
		oh, _ := strconv.Atoi(mm[8][1:3])
		om, _ := strconv.Atoi(mm[8][3:5])
		if om > 59 || oh > 14 || (oh == 14 && om != 0) {
			return hl7Time{}, false
		}
		l = fixedZone(mm[8], sign*(oh*3600+om*60))
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nsec, l)
	if t.Day() != d || t.Month() != time.Month(mo) {
		return hl7Time{}, false // e.g. 31 April
	}
	if !validOffset(t) {
		return hl7Time{}, false
	}
	return hl7Time{t: t, prec: prec, utc: mm[8] == "" && loc == time.UTC}, true
}

// fixedZones caches the zones of the UTC offsets written in timestamps
// (at most 2×15×60 of them), so parsing one does not allocate a zone.
var fixedZones sync.Map // offset as written ("+hhmm") → *time.Location

func fixedZone(name string, off int) *time.Location {
	if l, ok := fixedZones.Load(name); ok {
		return l.(*time.Location)
	}
	name = strings.Clone(name) // not a view into the message
	l, _ := fixedZones.LoadOrStore(name, time.FixedZone(name, off))
	return l.(*time.Location)
}

// offsetString renders t's UTC offset as FHIR wants it.
func offsetString(t time.Time, utc bool) string {
	_, off := t.Zone()
	if utc && off == 0 {
		return "Z"
	}
	sign := "+"
	if off < 0 {
		sign = "-"
		off = -off
	}
	return sign + twoDigits(off/3600) + ":" + twoDigits(off%3600/60)
}

// validOffset reports whether t's offset fits FHIR's -14:00..+14:00 pattern.
func validOffset(t time.Time) bool {
	_, off := t.Zone()
	if off < 0 {
		off = -off
	}
	return off <= 14*3600
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10%10), byte('0' + n%10)})
}

// dateTime converts an HL7 timestamp field value to a FHIR dateTime with the
// same precision (hours and minutes render with :00 seconds, as dateTime
// requires), or nil when it is empty or malformed.
func (b *builder) dateTime(s string) *d4.DateTime {
	ht, ok := parseDTM(s, b.loc)
	if !ok {
		return nil
	}
	return dateTimeOf(b.ar.dateTimes.get(), ht)
}

// dateTimeOf sets dt to ht rendered in UTC ("Z") and returns it. A date (or
// coarser) keeps its calendar value; a time keeps its instant and precision but not the sender's UTC
// offset: google/fhir/go v0.7.4 resolves any other timezone with
// time.LoadLocation on every marshal (file-system probes per value, which made
// a lab panel cost ~30 ms), see docs/FHIR.md.
func dateTimeOf(dt *d4.DateTime, ht hl7Time) *d4.DateTime {
	var p d4.DateTime_Precision
	switch ht.prec {
	case precYear:
		p = d4.DateTime_YEAR
	case precMonth:
		p = d4.DateTime_MONTH
	case precDay:
		p = d4.DateTime_DAY
	case precSecond:
		p = d4.DateTime_SECOND
	case precMilli:
		p = d4.DateTime_MILLISECOND
	case precMicro:
		p = d4.DateTime_MICROSECOND
	}
	us := ht.t.UnixMicro()
	if ht.prec < precSecond {
		y, m, d := ht.t.Date()
		us = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMicro()
	}
	dt.ValueUs, dt.Timezone, dt.Precision = us, "Z", p
	return dt
}

// instant converts an HL7 timestamp to a FHIR instant, which needs at least a
// time of day: a date-only (or coarser) timestamp gives nil.
func (b *builder) instant(s string) *d4.Instant {
	ht, ok := parseDTM(s, b.loc)
	if !ok || ht.prec < precSecond {
		return nil
	}
	p := d4.Instant_SECOND
	switch ht.prec {
	case precMilli:
		p = d4.Instant_MILLISECOND
	case precMicro:
		p = d4.Instant_MICROSECOND
	}
	in := b.ar.instants.get()
	in.ValueUs, in.Timezone, in.Precision = ht.t.UnixMicro(), "Z", p
	return in
}

// instantOf sets in to a Go time (the release time) as a UTC FHIR instant
// with the precision the value carries, and returns it.
func instantOf(in *d4.Instant, t time.Time) *d4.Instant {
	t = t.UTC()
	p := d4.Instant_SECOND
	switch {
	case t.Nanosecond()%1e9 == 0:
	case t.Nanosecond()%1e6 == 0:
		p = d4.Instant_MILLISECOND
	default:
		p = d4.Instant_MICROSECOND
	}
	in.ValueUs, in.Timezone, in.Precision = t.UnixMicro(), "Z", p
	return in
}

// dateTimeOfGo sets dt to a Go time as a UTC FHIR dateTime, and returns it.
func dateTimeOfGo(dt *d4.DateTime, t time.Time) *d4.DateTime {
	var in d4.Instant
	instantOf(&in, t)
	var p d4.DateTime_Precision
	switch in.Precision {
	case d4.Instant_SECOND:
		p = d4.DateTime_SECOND
	case d4.Instant_MILLISECOND:
		p = d4.DateTime_MILLISECOND
	case d4.Instant_MICROSECOND:
		p = d4.DateTime_MICROSECOND
	}
	dt.ValueUs, dt.Timezone, dt.Precision = in.ValueUs, "Z", p
	return dt
}
