package fhirmap

import (
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/resultgate/resultgate/hl7"

	c4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	obspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// value is one mapped OBX-5 repetition: exactly one field is set.
type value struct {
	quantity   *d4.Quantity
	concept    *d4.CodeableConcept
	str        *d4.String
	rng        *d4.Range
	ratio      *d4.Ratio
	dateTime   *d4.DateTime
	time       *d4.Time
	period     *d4.Period
	attachment *d4.Attachment // RP: carried in the R5 Observation.value extension
}

func (v value) empty() bool {
	return v.quantity == nil && v.concept == nil && v.str == nil && v.rng == nil &&
		v.ratio == nil && v.dateTime == nil && v.time == nil && v.period == nil && v.attachment == nil
}

// observationValue returns v as Observation.value[x].
func (v value) observationValue(a *arena) *obspb.Observation_ValueX {
	switch {
	case v.quantity != nil:
		x := a.obsValues.get()
		x.qty.Quantity = v.quantity
		x.v.Choice = &x.qty
		return &x.v
	case v.concept != nil:
		x := a.obsValues.get()
		x.cc.CodeableConcept = v.concept
		x.v.Choice = &x.cc
		return &x.v
	case v.str != nil:
		x := a.obsValues.get()
		x.str.StringValue = v.str
		x.v.Choice = &x.str
		return &x.v
	case v.rng != nil:
		return &obspb.Observation_ValueX{Choice: &obspb.Observation_ValueX_Range{Range: v.rng}}
	case v.ratio != nil:
		return &obspb.Observation_ValueX{Choice: &obspb.Observation_ValueX_Ratio{Ratio: v.ratio}}
	case v.dateTime != nil:
		return &obspb.Observation_ValueX{Choice: &obspb.Observation_ValueX_DateTime{DateTime: v.dateTime}}
	case v.time != nil:
		return &obspb.Observation_ValueX{Choice: &obspb.Observation_ValueX_Time{Time: v.time}}
	case v.period != nil:
		return &obspb.Observation_ValueX{Choice: &obspb.Observation_ValueX_Period{Period: v.period}}
	}
	return nil
}

// componentValue returns v as Observation.component.value[x].
func (v value) componentValue() *obspb.Observation_Component_ValueX {
	switch {
	case v.quantity != nil:
		return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_Quantity{Quantity: v.quantity}}
	case v.concept != nil:
		return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_CodeableConcept{CodeableConcept: v.concept}}
	case v.str != nil:
		return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_StringValue{StringValue: v.str}}
	case v.rng != nil:
		return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_Range{Range: v.rng}}
	case v.ratio != nil:
		return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_Ratio{Ratio: v.ratio}}
	case v.dateTime != nil:
		return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_DateTime{DateTime: v.dateTime}}
	case v.time != nil:
		return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_Time{Time: v.time}}
	case v.period != nil:
		return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_Period{Period: v.period}}
	case v.attachment != nil:
		// Components cannot carry an attachment; keep the pointer as text.
		if v.attachment.Url != nil {
			return &obspb.Observation_Component_ValueX{Choice: &obspb.Observation_Component_ValueX_StringValue{StringValue: &d4.String{Value: v.attachment.Url.Value}}}
		}
	}
	return nil
}

// isText reports whether an OBX-2 value type is narrative text.
func isText(vt string) bool {
	switch vt {
	case "ST", "TX", "FT":
		return true
	}
	return false
}

// unit is OBX-6 mapped for Quantity: unit text always; system and code only
// when OBX-6 says UCUM (a code without a system is not allowed, qty-3). The
// elements are built once per OBX and shared by its quantities (value and
// reference range): the Bundle is never modified once built.
type unit struct {
	unit   *d4.String
	system *d4.Uri
	code   *d4.Code
}

func (a *arena) unitOf(f hl7.Field) unit {
	id, txt, sys := clean(f.Component(1)), clean(f.Component(2)), f.Component(3)
	var u unit
	if txt == "" {
		txt = id
	}
	ucum := id != "" && systemFor(sys) == SystemUCUM && code(id) == id
	if txt == "" && !ucum {
		return u
	}
	// One slab element holds the unit's elements.
	x := a.units.get()
	if txt != "" {
		x.unit.Value = txt
		u.unit = &x.unit
	}
	if ucum {
		x.system.Value, x.code.Value = SystemUCUM, id
		u.system, u.code = &x.system, &x.code
	}
	return u
}

func (u unit) quantity(a *arena, v string, cmp c4.QuantityComparatorCode_Value) *d4.Quantity {
	x := a.quantities.get()
	x.v.Value = v
	x.q.Value, x.q.Unit, x.q.System, x.q.Code = &x.v, u.unit, u.system, u.code
	if cmp != c4.QuantityComparatorCode_INVALID_UNINITIALIZED {
		x.cmp.Value = cmp
		x.q.Comparator = &x.cmp
	}
	return &x.q
}

func (u unit) simple(a *arena, v string) *d4.SimpleQuantity {
	x := a.simples.get()
	x.v.Value = v
	x.q.Value, x.q.Unit, x.q.System, x.q.Code = &x.v, u.unit, u.system, u.code
	return &x.q
}

// decimal normalises an HL7 NM to a FHIR decimal (no leading "+", no
// superfluous leading zeros, "0" before a bare fraction), keeping the
// precision the sender wrote ("5.10" stays "5.10"). ok is false when s is not
// a number.
func decimal(s string) (string, bool) {
	s = strings.TrimSpace(s)
	sign, digits, frac, ok := numParts(s)
	if !ok || (digits == "" && frac == "") {
		return "", false
	}
	intPart := strings.TrimLeft(digits, "0")
	if intPart == "" {
		intPart = "0"
	}
	if frac == "" && sign != "-" {
		return intPart, true
	}
	if intPart == digits {
		// The result is a part of s (without a "+" or a trailing "."): no
		// new string.
		start, end := 0, len(s)
		if sign == "+" {
			start = 1
		}
		if frac == "" {
			end = len(sign) + len(digits)
		}
		return s[start:end], true
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if sign == "-" {
		out = "-" + out
	}
	return out, true
}

// comparators maps SN-1 to FHIR Quantity.comparator ("=" and empty: none).
var comparators = map[string]c4.QuantityComparatorCode_Value{
	"<":  c4.QuantityComparatorCode_LESS_THAN,
	"<=": c4.QuantityComparatorCode_LESS_THAN_OR_EQUAL_TO,
	">=": c4.QuantityComparatorCode_GREATER_THAN_OR_EQUAL_TO,
	">":  c4.QuantityComparatorCode_GREATER_THAN,
}

// mapValue maps one OBX-5 repetition of type vt (OBX-2) to a value, with the
// units u (OBX-6). What cannot be represented in the type's FHIR form falls
// back to valueString with the text as sent, so nothing is lost.
func (b *builder) mapValue(vt string, rep hl7.Field, u unit) value {
	a := &b.ar
	raw := func() value {
		return stringValue(a, joinComponents(rep))
	}
	switch vt {
	case "NM":
		if d, ok := decimal(rep.Value()); ok {
			return value{quantity: u.quantity(a, d, 0)}
		}
		return stringValue(a, rep.Value())
	case "SN":
		return snValue(a, rep, u)
	case "ST", "TX", "FT":
		return stringValue(a, rep.Value())
	case "CE", "CWE", "CNE", "CF":
		if cc := a.concept(rep); cc != nil {
			return value{concept: cc}
		}
		return value{}
	case "IS", "ID":
		c := code(rep.Component(1))
		if c == "" {
			return value{}
		}
		return value{concept: &d4.CodeableConcept{Coding: []*d4.Coding{{Code: &d4.Code{Value: c}}}, Text: &d4.String{Value: c}}}
	case "DT", "DTM", "TS":
		if dt := b.dateTime(rep.Component(1)); dt != nil {
			return value{dateTime: dt}
		}
		return raw()
	case "TM":
		if t := timeValue(rep.Component(1)); t != nil {
			return value{time: t}
		}
		return raw()
	case "DR":
		p := &d4.Period{Start: b.dateTime(rep.Sub(1, 1)), End: b.dateTime(rep.Sub(2, 1))}
		if p.Start == nil && p.End == nil {
			return raw()
		}
		return value{period: p}
	case "NR":
		lo, okl := decimal(rep.Component(1))
		hi, okh := decimal(rep.Component(2))
		if !okl && !okh {
			return raw()
		}
		r := &d4.Range{}
		if okl {
			r.Low = u.simple(a, lo)
		}
		if okh {
			r.High = u.simple(a, hi)
		}
		return value{rng: r}
	case "RP":
		return rpValue(a, rep)
	case "EI":
		return stringValue(a, rep.Component(1))
	}
	return raw()
}

func stringValue(a *arena, s string) value {
	s = text(s)
	if strings.TrimSpace(s) == "" {
		return value{}
	}
	return value{str: a.newString(strings.TrimRight(s, " \t\n"))}
}

// joinComponents renders a composite value as text: its non-empty components
// joined by spaces (for value types that have no structured mapping).
func joinComponents(f hl7.Field) string {
	var parts []string
	for _, comp := range f.AllComponents() {
		if v := clean(comp.Value()); v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, " ")
}

// snValue maps an SN (structured numeric) per the v2-to-FHIR IG: separator
// ":" or "/" is a Ratio, "-" a Range, "+" (e.g. "2+") a string, none (or ".")
// a Quantity with SN-1 as comparator. A comparator FHIR cannot carry ("<>",
// or any comparator on a range/ratio) falls back to the text.
func snValue(a *arena, f hl7.Field, u unit) value {
	cmp, n1, sep, n2 := clean(f.Component(1)), clean(f.Component(2)), clean(f.Component(3)), clean(f.Component(4))
	asText := func() value {
		var parts []string
		for _, p := range []string{cmp, n1, sep, n2} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		return stringValue(a, strings.Join(parts, " "))
	}
	if cmp == "=" {
		cmp = ""
	}
	cv, knownCmp := comparators[cmp]
	if cmp != "" && !knownCmp {
		return asText()
	}
	switch sep {
	case "":
		if n2 != "" {
			return asText()
		}
		d, ok := decimal(n1)
		if !ok {
			return asText()
		}
		return value{quantity: u.quantity(a, d, cv)}
	case ".":
		d, ok := decimal(n1 + "." + n2)
		if !ok || cmp != "" && n2 == "" {
			return asText()
		}
		return value{quantity: u.quantity(a, d, cv)}
	case ":", "/":
		d1, ok1 := decimal(n1)
		d2, ok2 := decimal(n2)
		if !ok1 || !ok2 || cmp != "" {
			return asText()
		}
		none := unit{}
		return value{ratio: &d4.Ratio{Numerator: none.quantity(a, d1, 0), Denominator: none.quantity(a, d2, 0)}}
	case "-":
		d1, ok1 := decimal(n1)
		d2, ok2 := decimal(n2)
		if !ok1 || !ok2 || cmp != "" {
			return asText()
		}
		return value{rng: &d4.Range{Low: u.simple(a, d1), High: u.simple(a, d2)}}
	}
	return asText()
}

var tmRe = regexp.MustCompile(`^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,4}))?(?:[+-]\d{4})?$`)

// timeValue maps an HL7 TM (HH[MM[SS[.S...]]][+/-ZZZZ]) to a FHIR time; the
// offset is dropped because FHIR time has none.
func timeValue(s string) *d4.Time {
	m := tmRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return nil
	}
	atoi := func(x string) int64 {
		var n int64
		for i := 0; i < len(x); i++ {
			n = n*10 + int64(x[i]-'0')
		}
		return n
	}
	h, mi, sec := atoi(m[1]), atoi(m[2]), atoi(m[3])
	if h > 23 || mi > 59 || sec > 59 {
		return nil
	}
	us := ((h*60+mi)*60 + sec) * 1e6
	p := d4.Time_SECOND
	if m[4] != "" {
		us += atoi((m[4] + "000000")[:6])
		p = d4.Time_MILLISECOND
		if len(m[4]) == 4 {
			p = d4.Time_MICROSECOND
		}
	}
	return &d4.Time{ValueUs: us, Precision: p}
}

// mimeType builds a MIME type from HL7 ED-2/RP-3 (type of data, table 0191)
// and ED-3/RP-4 (subtype, table 0291).
func mimeType(typ, sub string) string {
	typ, sub = strings.ToLower(clean(typ)), strings.ToLower(clean(sub))
	switch typ {
	case "ap", "application":
		typ = "application"
	case "im", "image":
		typ = "image"
	case "tx", "text":
		typ = "text"
	case "au", "audio":
		typ = "audio"
	case "multipart":
	default:
		typ = ""
	}
	switch sub {
	case "pdf", "rtf", "xml", "html", "jpeg", "png", "gif", "tiff", "plain", "dicom", "octet-stream":
	case "x-hl7-cda-level-one", "x-hl7-cda-level-one+xml":
		sub = "x-hl7-cda-level-one+xml"
	case "jpg":
		sub = "jpeg"
	default:
		sub = ""
	}
	switch {
	case typ != "" && sub != "":
		return typ + "/" + sub
	case sub == "pdf":
		return "application/pdf"
	case sub == "jpeg" || sub == "png" || sub == "gif" || sub == "tiff":
		return "image/" + sub
	case typ == "text":
		return "text/plain"
	}
	return "application/octet-stream"
}

// rpValue maps an RP (reference pointer) to an Attachment with the pointer as
// url, carried in the R5 cross-version Observation.value extension.
func rpValue(a *arena, f hl7.Field) value {
	ptr := clean(f.Component(1))
	if !validURI(ptr) {
		return stringValue(a, joinComponents(f))
	}
	return value{attachment: &d4.Attachment{
		ContentType: &d4.Attachment_ContentTypeCode{Value: mimeType(f.Component(3), f.Component(4))},
		Url:         &d4.Url{Value: ptr},
	}}
}

// edAttachment maps an ED (encapsulated data) to an Attachment for
// DiagnosticReport.presentedForm: ED-2/ED-3 give the MIME type; ED-4 the
// encoding (Base64, Hex, or A for plain text); ED-5 the data. ok is false
// when the data cannot be decoded.
func edAttachment(f hl7.Field, title string) (*d4.Attachment, bool) {
	enc := strings.ToUpper(clean(f.Component(4)))
	data := f.Component(5)
	var raw []byte
	switch enc {
	case "BASE64", "B64":
		s := strings.Map(func(r rune) rune {
			switch r {
			case ' ', '\t', '\r', '\n':
				return -1
			}
			return r
		}, data)
		s = strings.TrimRight(s, "=")
		var err error
		raw, err = base64.RawStdEncoding.DecodeString(s)
		if err != nil {
			return nil, false
		}
	case "HEX":
		s := strings.TrimSpace(data)
		if len(s)%2 != 0 {
			return nil, false
		}
		raw = make([]byte, len(s)/2)
		for i := 0; i < len(raw); i++ {
			hi, lo := unhex(s[2*i]), unhex(s[2*i+1])
			if hi < 0 || lo < 0 {
				return nil, false
			}
			raw[i] = byte(hi<<4 | lo)
		}
	case "A", "":
		raw = []byte(data)
	default:
		return nil, false
	}
	if len(raw) == 0 {
		return nil, false
	}
	a := &d4.Attachment{
		ContentType: &d4.Attachment_ContentTypeCode{Value: mimeType(f.Component(2), f.Component(3))},
		Data:        &d4.Base64Binary{Value: raw},
		Title:       str(title),
	}
	return a, true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// referenceRange maps OBX-7 per the IG (referenceRange.text) and, when the
// text is a plain numeric range ("3.5-5.0", "<5", ">=10"), also low/high with
// the OBX-6 units.
func (a *arena) referenceRange(s string, u unit) []*obspb.Observation_ReferenceRange {
	s = clean(s)
	if s == "" {
		return nil
	}
	x := a.rangeAllocs.get()
	x.text.Value = s
	t := &x.text
	rr := &x.rr
	rr.Text = t
	x.ptr[0] = rr
	if l, h, ok := rangeParts(t.Value); ok {
		lo, ok1 := decimal(l)
		hi, ok2 := decimal(h)
		if ok1 && ok2 {
			rr.Low, rr.High = u.simple(a, lo), u.simple(a, hi)
		}
	} else if cmp, num, ok := boundParts(t.Value); ok {
		if d, ok := decimal(num); ok {
			switch cmp {
			case "<", "<=", "≤":
				rr.High = u.simple(a, d)
			default:
				rr.Low = u.simple(a, d)
			}
		}
	}
	return x.ptr[:]
}
