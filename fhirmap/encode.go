package fhirmap

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	c4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcr "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	drpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/diagnostic_report_go_proto"
	obspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	ptpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	provpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/provenance_go_proto"
)

// This file is the Bundle's JSON encoder. It writes the R4 protos that the
// mapping builds through their generated accessors, with no reflection, in
// exactly the form google/fhir/go's jsonformat marshaller (v0.7.4, pure FHIR
// JSON, no indent) gives them: the marshaller builds a map per element and
// renders it with encoding/json, so every object's keys are in byte order,
// strings are escaped as encoding/json escapes them with HTML escaping off,
// decimals are written as sent, and times use the marshaller's layouts.
//
// It covers the resources, data types and fields the mapping sets, and no
// others: a field the mapping starts to set must be added here. The tests hold
// it to that: every golden, test and corpus message, and the fuzz target's
// generated ORUs, are marshalled with jsonformat as well and must give the
// same bytes (TestEncoderMatchesJSONFormat, FuzzEncoderMatchesJSONFormat).
//
// Each object writer emits its keys in sorted order by hand; key() writes the
// comma unless the key opens its object, so absent fields need no state.

// encoder appends JSON to a buffer.
//
// The writers take and return the buffer instead of keeping it in the
// encoder: a store of the slice through a pointer would cost a GC write
// barrier on every append while a collection runs.
type encoder struct {
	err error // the first element the encoder does not support
}

// Errors of the encoder: each means the mapping built an element this
// encoder does not write (a mapping change without an encoder change).
var (
	errUnsupportedField     = errors.New("element not supported by the encoder")
	errUnsupportedZone      = errors.New("time zone other than Z")
	errUnsupportedPrecision = errors.New("time precision not set")
)

// key writes "name": preceded by a comma unless it is the first key.
func (e *encoder) key(b []byte, name string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return b
}

// elem writes the separator before an array element.
func (e *encoder) elem(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] != '[' {
		b = append(b, ',')
	}
	return b
}

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string exactly as encoding/json does with
// SetEscapeHTML(false): \" \\ \b \f \n \r \t, other control characters as
// \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func (e *encoder) str(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look of its own.
		if i+8 <= len(s) && !special8(load64(s, i)) {
			i += 8
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// load64 returns s[i:i+8] as a little-endian word (one load on the
// platforms that allow unaligned loads).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// special8 reports whether any of the eight bytes in x is one str must look
// at: a control character (below 0x20), '"', '\\' or a byte of a multi-byte
// UTF-8 sequence (0x80 and up). Each test is the exact "has a byte less
// than n" / "has a zero byte" word test (n <= 128).
func special8(x uint64) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	ctl := (x - 0x20*lsb) &^ x & msb
	q := x ^ ('"' * lsb)
	q = (q - lsb) &^ q & msb
	bs := x ^ ('\\' * lsb)
	bs = (bs - lsb) &^ bs & msb
	return ctl|q|bs|x&msb != 0
}

// Primitive fields: each writes its key and value when the element is set
// (a set element with an empty value is written, as jsonformat does).

func (e *encoder) fString(b []byte, name string, v *d4.String) []byte {
	if v != nil {
		b = e.key(b, name)
		b = e.str(b, v.GetValue())
	}
	return b
}

func (e *encoder) fMarkdown(b []byte, name string, v *d4.Markdown) []byte {
	if v != nil {
		b = e.key(b, name)
		b = e.str(b, v.GetValue())
	}
	return b
}

func (e *encoder) fURI(b []byte, name string, v *d4.Uri) []byte {
	if v != nil {
		b = e.key(b, name)
		b = e.str(b, v.GetValue())
	}
	return b
}

func (e *encoder) fURL(b []byte, name string, v *d4.Url) []byte {
	if v != nil {
		b = e.key(b, name)
		b = e.str(b, v.GetValue())
	}
	return b
}

func (e *encoder) fCode(b []byte, name string, v *d4.Code) []byte {
	if v != nil {
		b = e.key(b, name)
		b = e.str(b, v.GetValue())
	}
	return b
}

func (e *encoder) fID(b []byte, name string, v *d4.Id) []byte {
	if v != nil {
		b = e.key(b, name)
		b = e.str(b, v.GetValue())
	}
	return b
}

// fDecimal writes a decimal as the raw number it holds, as jsonformat does.
func (e *encoder) fDecimal(b []byte, name string, v *d4.Decimal) []byte {
	if v != nil {
		b = e.key(b, name)
		b = append(b, v.GetValue()...)
	}
	return b
}

func (e *encoder) fBase64(b []byte, name string, v *d4.Base64Binary) []byte {
	if v != nil {
		b = e.key(b, name)
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.GetValue())
		b = append(b, '"')
	}
	return b
}

// fEnum writes an enum-valued code; the zero value (uninitialised) is left
// out, as jsonformat does.
func (e *encoder) fEnum(b []byte, name, code string) []byte {
	if code != "" {
		b = e.key(b, name)
		b = e.str(b, code)
	}
	return b
}

// Time layouts of jsonformat (jsonpbhelper.Layout*). The mapping gives every
// dateTime and instant the time zone "Z".
const (
	layoutYear       = "2006"
	layoutMonth      = "2006-01"
	layoutDay        = "2006-01-02"
	layoutSecondsUTC = "2006-01-02T15:04:05Z"
	layoutMillisUTC  = "2006-01-02T15:04:05.000Z"
	layoutMicrosUTC  = "2006-01-02T15:04:05.000000Z"
	layoutSeconds    = "2006-01-02T15:04:05-07:00"
	layoutMillis     = "2006-01-02T15:04:05.000-07:00"
	layoutMicros     = "2006-01-02T15:04:05.000000-07:00"
	layoutTimeSecond = "15:04:05"
	layoutTimeMillis = "15:04:05.000"
	layoutTimeMicros = "15:04:05.000000"
	timezoneUTC      = "Z"
)

// timeString writes a time value. The mapping writes every dateTime and
// instant in UTC (timezone "Z", see dateTimeOf); any other zone, which
// jsonformat resolves with time.LoadLocation, is not supported.
func (e *encoder) timeString(b []byte, us int64, tz, layout string) []byte {
	if tz != timezoneUTC {
		e.err = errUnsupportedZone
		return b
	}
	b = append(b, '"')
	b = appendTime(b, time.UnixMicro(us).UTC(), layout)
	b = append(b, '"')
	return b
}

// appendTime appends t formatted with layout, as t.AppendFormat(b, layout)
// does, writing the digits directly for the layouts above (AppendFormat
// parses its layout on every call) and the years 0 to 9999 they can hold in
// four digits; anything else goes to AppendFormat.
func appendTime(b []byte, t time.Time, layout string) []byte {
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, layout)
	}
	var date, clock bool
	frac := 0 // digits of the fraction of a second
	switch layout {
	case layoutYear:
		return appendDigits(b, y, 4)
	case layoutMonth:
		b = appendDigits(b, y, 4)
		b = append(b, '-')
		return appendDigits(b, int(mo), 2)
	case layoutDay:
		date = true
	case layoutSecondsUTC:
		date, clock = true, true
	case layoutMillisUTC:
		date, clock, frac = true, true, 3
	case layoutMicrosUTC:
		date, clock, frac = true, true, 6
	case layoutTimeSecond:
		clock = true
	case layoutTimeMillis:
		clock, frac = true, 3
	case layoutTimeMicros:
		clock, frac = true, 6
	default:
		return t.AppendFormat(b, layout)
	}
	if date {
		b = appendDigits(b, y, 4)
		b = append(b, '-')
		b = appendDigits(b, int(mo), 2)
		b = append(b, '-')
		b = appendDigits(b, d, 2)
		if clock {
			b = append(b, 'T')
		}
	}
	if clock {
		h, mi, sec := t.Clock()
		b = appendDigits(b, h, 2)
		b = append(b, ':')
		b = appendDigits(b, mi, 2)
		b = append(b, ':')
		b = appendDigits(b, sec, 2)
		switch frac {
		case 3:
			b = append(b, '.')
			b = appendDigits(b, t.Nanosecond()/1e6, 3)
		case 6:
			b = append(b, '.')
			b = appendDigits(b, t.Nanosecond()/1e3, 6)
		}
		if date {
			b = append(b, 'Z')
		}
	}
	return b
}

// appendDigits appends the non-negative n in exactly width decimal digits
// (n < 10^width), zero-padded.
func appendDigits(b []byte, n, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, buf[:width]...)
}

func (e *encoder) fDateTime(b []byte, name string, v *d4.DateTime) []byte {
	if v == nil {
		return b
	}
	utc := v.GetTimezone() == timezoneUTC
	var layout string
	switch v.GetPrecision() {
	case d4.DateTime_YEAR:
		layout = layoutYear
	case d4.DateTime_MONTH:
		layout = layoutMonth
	case d4.DateTime_DAY:
		layout = layoutDay
	case d4.DateTime_SECOND:
		layout = pick(utc, layoutSecondsUTC, layoutSeconds)
	case d4.DateTime_MILLISECOND:
		layout = pick(utc, layoutMillisUTC, layoutMillis)
	case d4.DateTime_MICROSECOND:
		layout = pick(utc, layoutMicrosUTC, layoutMicros)
	default:
		e.err = errUnsupportedPrecision
		return b
	}
	b = e.key(b, name)
	b = e.timeString(b, v.GetValueUs(), v.GetTimezone(), layout)
	return b
}

func (e *encoder) fInstant(b []byte, name string, v *d4.Instant) []byte {
	if v == nil {
		return b
	}
	utc := v.GetTimezone() == timezoneUTC
	var layout string
	switch v.GetPrecision() {
	case d4.Instant_SECOND:
		layout = pick(utc, layoutSecondsUTC, layoutSeconds)
	case d4.Instant_MILLISECOND:
		layout = pick(utc, layoutMillisUTC, layoutMillis)
	case d4.Instant_MICROSECOND:
		layout = pick(utc, layoutMicrosUTC, layoutMicros)
	default:
		e.err = errUnsupportedPrecision
		return b
	}
	b = e.key(b, name)
	b = e.timeString(b, v.GetValueUs(), v.GetTimezone(), layout)
	return b
}

func (e *encoder) fTime(b []byte, name string, v *d4.Time) []byte {
	if v == nil {
		return b
	}
	var layout string
	switch v.GetPrecision() {
	case d4.Time_SECOND:
		layout = layoutTimeSecond
	case d4.Time_MILLISECOND:
		layout = layoutTimeMillis
	case d4.Time_MICROSECOND:
		layout = layoutTimeMicros
	default:
		e.err = errUnsupportedPrecision
		return b
	}
	b = e.key(b, name)
	b = e.timeString(b, v.GetValueUs(), timezoneUTC, layout)
	return b
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// Complex data types.

func (e *encoder) coding(b []byte, c *d4.Coding) []byte {
	b = append(b, '{')
	b = e.fCode(b, "code", c.GetCode())
	b = e.fString(b, "display", c.GetDisplay())
	b = e.fURI(b, "system", c.GetSystem())
	b = append(b, '}')
	return b
}

func (e *encoder) codeableConcept(b []byte, cc *d4.CodeableConcept) []byte {
	b = append(b, '{')
	if cs := cc.GetCoding(); len(cs) > 0 {
		b = e.key(b, "coding")
		b = append(b, '[')
		for _, c := range cs {
			b = e.elem(b)
			b = e.coding(b, c)
		}
		b = append(b, ']')
	}
	b = e.fString(b, "text", cc.GetText())
	b = append(b, '}')
	return b
}

func (e *encoder) fConcept(b []byte, name string, cc *d4.CodeableConcept) []byte {
	if cc != nil {
		b = e.key(b, name)
		b = e.codeableConcept(b, cc)
	}
	return b
}

func (e *encoder) fConcepts(b []byte, name string, ccs []*d4.CodeableConcept) []byte {
	if len(ccs) == 0 {
		return b
	}
	b = e.key(b, name)
	b = append(b, '[')
	for _, cc := range ccs {
		b = e.elem(b)
		b = e.codeableConcept(b, cc)
	}
	b = append(b, ']')
	return b
}

func (e *encoder) identifier(b []byte, id *d4.Identifier) []byte {
	b = append(b, '{')
	b = e.fReference(b, "assigner", id.GetAssigner())
	b = e.fURI(b, "system", id.GetSystem())
	b = e.fConcept(b, "type", id.GetType())
	b = e.fString(b, "value", id.GetValue())
	b = append(b, '}')
	return b
}

func (e *encoder) fIdentifier(b []byte, name string, id *d4.Identifier) []byte {
	if id != nil {
		b = e.key(b, name)
		b = e.identifier(b, id)
	}
	return b
}

func (e *encoder) fIdentifiers(b []byte, name string, ids []*d4.Identifier) []byte {
	if len(ids) == 0 {
		return b
	}
	b = e.key(b, name)
	b = append(b, '[')
	for _, id := range ids {
		b = e.elem(b)
		b = e.identifier(b, id)
	}
	b = append(b, ']')
	return b
}

// reference writes a Reference. The mapping writes literal references only
// (reference.uri); a typed reference id (e.g. patient_id), which jsonformat
// would denormalise, is not supported.
func (e *encoder) reference(b []byte, r *d4.Reference) []byte {
	b = append(b, '{')
	b = e.fString(b, "display", r.GetDisplay())
	b = e.fIdentifier(b, "identifier", r.GetIdentifier())
	switch ref := r.GetReference().(type) {
	case nil:
	case *d4.Reference_Uri:
		b = e.fString(b, "reference", ref.Uri)
	default:
		e.err = errUnsupportedField
	}
	b = e.fURI(b, "type", r.GetType())
	b = append(b, '}')
	return b
}

func (e *encoder) fReference(b []byte, name string, r *d4.Reference) []byte {
	if r != nil {
		b = e.key(b, name)
		b = e.reference(b, r)
	}
	return b
}

func (e *encoder) fReferences(b []byte, name string, rs []*d4.Reference) []byte {
	if len(rs) == 0 {
		return b
	}
	b = e.key(b, name)
	b = append(b, '[')
	for _, r := range rs {
		b = e.elem(b)
		b = e.reference(b, r)
	}
	b = append(b, ']')
	return b
}

func (e *encoder) attachment(b []byte, a *d4.Attachment) []byte {
	b = append(b, '{')
	if ct := a.GetContentType(); ct != nil {
		b = e.key(b, "contentType")
		b = e.str(b, ct.GetValue())
	}
	b = e.fBase64(b, "data", a.GetData())
	b = e.fString(b, "title", a.GetTitle())
	b = e.fURL(b, "url", a.GetUrl())
	b = append(b, '}')
	return b
}

func (e *encoder) period(b []byte, p *d4.Period) []byte {
	b = append(b, '{')
	b = e.fDateTime(b, "end", p.GetEnd())
	b = e.fDateTime(b, "start", p.GetStart())
	b = append(b, '}')
	return b
}

func (e *encoder) quantity(b []byte, q *d4.Quantity) []byte {
	b = append(b, '{')
	b = e.fCode(b, "code", q.GetCode())
	if c := q.GetComparator(); c != nil {
		b = e.fEnum(b, "comparator", comparatorCodes.of(c.GetValue()))
	}
	b = e.fURI(b, "system", q.GetSystem())
	b = e.fString(b, "unit", q.GetUnit())
	b = e.fDecimal(b, "value", q.GetValue())
	b = append(b, '}')
	return b
}

func (e *encoder) fQuantity(b []byte, name string, q *d4.Quantity) []byte {
	if q != nil {
		b = e.key(b, name)
		b = e.quantity(b, q)
	}
	return b
}

func (e *encoder) fSimpleQuantity(b []byte, name string, q *d4.SimpleQuantity) []byte {
	if q == nil {
		return b
	}
	b = e.key(b, name)
	b = append(b, '{')
	b = e.fCode(b, "code", q.GetCode())
	b = e.fURI(b, "system", q.GetSystem())
	b = e.fString(b, "unit", q.GetUnit())
	b = e.fDecimal(b, "value", q.GetValue())
	b = append(b, '}')
	return b
}

func (e *encoder) rangeValue(b []byte, r *d4.Range) []byte {
	b = append(b, '{')
	b = e.fSimpleQuantity(b, "high", r.GetHigh())
	b = e.fSimpleQuantity(b, "low", r.GetLow())
	b = append(b, '}')
	return b
}

func (e *encoder) ratio(b []byte, r *d4.Ratio) []byte {
	b = append(b, '{')
	b = e.fQuantity(b, "denominator", r.GetDenominator())
	b = e.fQuantity(b, "numerator", r.GetNumerator())
	b = append(b, '}')
	return b
}

func (e *encoder) annotation(b []byte, a *d4.Annotation) []byte {
	b = append(b, '{')
	b = e.fMarkdown(b, "text", a.GetText())
	b = append(b, '}')
	return b
}

// extensions writes a resource's extension list: url, then the one value[x]
// the mapping uses (annotation, attachment, code or string).
func (e *encoder) extensions(b []byte, exts []*d4.Extension) []byte {
	if len(exts) == 0 {
		return b
	}
	b = e.key(b, "extension")
	b = append(b, '[')
	for _, x := range exts {
		b = e.elem(b)
		b = append(b, '{')
		b = e.fURI(b, "url", x.GetUrl())
		switch v := x.GetValue().GetChoice().(type) {
		case nil:
		case *d4.Extension_ValueX_Annotation:
			b = e.key(b, "valueAnnotation")
			b = e.annotation(b, v.Annotation)
		case *d4.Extension_ValueX_Attachment:
			b = e.key(b, "valueAttachment")
			b = e.attachment(b, v.Attachment)
		case *d4.Extension_ValueX_Code:
			b = e.fCode(b, "valueCode", v.Code)
		case *d4.Extension_ValueX_StringValue:
			b = e.fString(b, "valueString", v.StringValue)
		default:
			e.err = errUnsupportedField
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	return b
}

// Resources.

func (e *encoder) diagnosticReport(b []byte, dr *drpb.DiagnosticReport) []byte {
	b = append(b, '{')
	b = e.fConcepts(b, "category", dr.GetCategory())
	b = e.fConcept(b, "code", dr.GetCode())
	b = e.fString(b, "conclusion", dr.GetConclusion())
	switch v := dr.GetEffective().GetChoice().(type) {
	case nil:
	case *drpb.DiagnosticReport_EffectiveX_DateTime:
		b = e.fDateTime(b, "effectiveDateTime", v.DateTime)
	case *drpb.DiagnosticReport_EffectiveX_Period:
		b = e.key(b, "effectivePeriod")
		b = e.period(b, v.Period)
	default:
		e.err = errUnsupportedField
	}
	b = e.extensions(b, dr.GetExtension())
	b = e.fID(b, "id", dr.GetId())
	b = e.fIdentifiers(b, "identifier", dr.GetIdentifier())
	b = e.fInstant(b, "issued", dr.GetIssued())
	b = e.fReferences(b, "performer", dr.GetPerformer())
	if pf := dr.GetPresentedForm(); len(pf) > 0 {
		b = e.key(b, "presentedForm")
		b = append(b, '[')
		for _, a := range pf {
			b = e.elem(b)
			b = e.attachment(b, a)
		}
		b = append(b, ']')
	}
	b = e.key(b, "resourceType")
	b = append(b, `"DiagnosticReport"`...)
	b = e.fReferences(b, "result", dr.GetResult())
	b = e.fReferences(b, "resultsInterpreter", dr.GetResultsInterpreter())
	if st := dr.GetStatus(); st != nil {
		b = e.fEnum(b, "status", reportStatusCodes.of(st.GetValue()))
	}
	b = e.fReference(b, "subject", dr.GetSubject())
	b = append(b, '}')
	return b
}

func (e *encoder) observation(b []byte, ob *obspb.Observation) []byte {
	b = append(b, '{')
	b = e.fConcept(b, "bodySite", ob.GetBodySite())
	b = e.fConcepts(b, "category", ob.GetCategory())
	b = e.fConcept(b, "code", ob.GetCode())
	if cs := ob.GetComponent(); len(cs) > 0 {
		b = e.key(b, "component")
		b = append(b, '[')
		for _, c := range cs {
			b = e.elem(b)
			b = append(b, '{')
			b = e.fConcept(b, "code", c.GetCode())
			switch v := c.GetValue().GetChoice().(type) {
			case nil:
			case *obspb.Observation_Component_ValueX_CodeableConcept:
				b = e.fConcept(b, "valueCodeableConcept", v.CodeableConcept)
			case *obspb.Observation_Component_ValueX_DateTime:
				b = e.fDateTime(b, "valueDateTime", v.DateTime)
			case *obspb.Observation_Component_ValueX_Period:
				b = e.key(b, "valuePeriod")
				b = e.period(b, v.Period)
			case *obspb.Observation_Component_ValueX_Quantity:
				b = e.fQuantity(b, "valueQuantity", v.Quantity)
			case *obspb.Observation_Component_ValueX_Range:
				b = e.key(b, "valueRange")
				b = e.rangeValue(b, v.Range)
			case *obspb.Observation_Component_ValueX_Ratio:
				b = e.key(b, "valueRatio")
				b = e.ratio(b, v.Ratio)
			case *obspb.Observation_Component_ValueX_StringValue:
				b = e.fString(b, "valueString", v.StringValue)
			case *obspb.Observation_Component_ValueX_Time:
				b = e.fTime(b, "valueTime", v.Time)
			default:
				e.err = errUnsupportedField
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = e.fConcept(b, "dataAbsentReason", ob.GetDataAbsentReason())
	switch v := ob.GetEffective().GetChoice().(type) {
	case nil:
	case *obspb.Observation_EffectiveX_DateTime:
		b = e.fDateTime(b, "effectiveDateTime", v.DateTime)
	default:
		e.err = errUnsupportedField
	}
	b = e.extensions(b, ob.GetExtension())
	b = e.fID(b, "id", ob.GetId())
	b = e.fIdentifiers(b, "identifier", ob.GetIdentifier())
	b = e.fConcepts(b, "interpretation", ob.GetInterpretation())
	b = e.fInstant(b, "issued", ob.GetIssued())
	b = e.fConcept(b, "method", ob.GetMethod())
	if ns := ob.GetNote(); len(ns) > 0 {
		b = e.key(b, "note")
		b = append(b, '[')
		for _, n := range ns {
			b = e.elem(b)
			b = e.annotation(b, n)
		}
		b = append(b, ']')
	}
	b = e.fReferences(b, "performer", ob.GetPerformer())
	if rrs := ob.GetReferenceRange(); len(rrs) > 0 {
		b = e.key(b, "referenceRange")
		b = append(b, '[')
		for _, rr := range rrs {
			b = e.elem(b)
			b = append(b, '{')
			b = e.fSimpleQuantity(b, "high", rr.GetHigh())
			b = e.fSimpleQuantity(b, "low", rr.GetLow())
			b = e.fString(b, "text", rr.GetText())
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = e.key(b, "resourceType")
	b = append(b, `"Observation"`...)
	if st := ob.GetStatus(); st != nil {
		b = e.fEnum(b, "status", observationStatusCodes.of(st.GetValue()))
	}
	b = e.fReference(b, "subject", ob.GetSubject())
	switch v := ob.GetValue().GetChoice().(type) {
	case nil:
	case *obspb.Observation_ValueX_CodeableConcept:
		b = e.fConcept(b, "valueCodeableConcept", v.CodeableConcept)
	case *obspb.Observation_ValueX_DateTime:
		b = e.fDateTime(b, "valueDateTime", v.DateTime)
	case *obspb.Observation_ValueX_Period:
		b = e.key(b, "valuePeriod")
		b = e.period(b, v.Period)
	case *obspb.Observation_ValueX_Quantity:
		b = e.fQuantity(b, "valueQuantity", v.Quantity)
	case *obspb.Observation_ValueX_Range:
		b = e.key(b, "valueRange")
		b = e.rangeValue(b, v.Range)
	case *obspb.Observation_ValueX_Ratio:
		b = e.key(b, "valueRatio")
		b = e.ratio(b, v.Ratio)
	case *obspb.Observation_ValueX_StringValue:
		b = e.fString(b, "valueString", v.StringValue)
	case *obspb.Observation_ValueX_Time:
		b = e.fTime(b, "valueTime", v.Time)
	default:
		e.err = errUnsupportedField
	}
	b = append(b, '}')
	return b
}

func (e *encoder) provenance(b []byte, p *provpb.Provenance) []byte {
	b = append(b, '{')
	b = e.fConcept(b, "activity", p.GetActivity())
	if as := p.GetAgent(); len(as) > 0 {
		b = e.key(b, "agent")
		b = append(b, '[')
		for _, a := range as {
			b = e.elem(b)
			b = append(b, '{')
			b = e.fConcepts(b, "role", a.GetRole())
			b = e.fConcept(b, "type", a.GetType())
			b = e.fReference(b, "who", a.GetWho())
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if es := p.GetEntity(); len(es) > 0 {
		b = e.key(b, "entity")
		b = append(b, '[')
		for _, en := range es {
			b = e.elem(b)
			b = append(b, '{')
			if r := en.GetRole(); r != nil {
				b = e.fEnum(b, "role", entityRoleCodes.of(r.GetValue()))
			}
			b = e.fReference(b, "what", en.GetWhat())
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = e.extensions(b, p.GetExtension())
	b = e.fID(b, "id", p.GetId())
	switch v := p.GetOccurred().GetChoice().(type) {
	case nil:
	case *provpb.Provenance_OccurredX_DateTime:
		b = e.fDateTime(b, "occurredDateTime", v.DateTime)
	default:
		e.err = errUnsupportedField
	}
	b = e.fConcepts(b, "reason", p.GetReason())
	b = e.fInstant(b, "recorded", p.GetRecorded())
	b = e.key(b, "resourceType")
	b = append(b, `"Provenance"`...)
	b = e.fReferences(b, "target", p.GetTarget())
	b = append(b, '}')
	return b
}

func (e *encoder) fDate(b []byte, name string, v *d4.Date) []byte {
	if v == nil {
		return b
	}
	var layout string
	switch v.GetPrecision() {
	case d4.Date_YEAR:
		layout = layoutYear
	case d4.Date_MONTH:
		layout = layoutMonth
	case d4.Date_DAY:
		layout = layoutDay
	default:
		e.err = errUnsupportedPrecision
		return b
	}
	b = e.key(b, name)
	b = e.timeString(b, v.GetValueUs(), v.GetTimezone(), layout)
	return b
}

func (e *encoder) fStrings(b []byte, name string, ss []*d4.String) []byte {
	if len(ss) == 0 {
		return b
	}
	b = e.key(b, name)
	b = append(b, '[')
	for _, s := range ss {
		b = e.elem(b)
		b = e.str(b, s.GetValue())
	}
	b = append(b, ']')
	return b
}

func (e *encoder) humanName(b []byte, n *d4.HumanName) []byte {
	b = append(b, '{')
	b = e.fString(b, "family", n.GetFamily())
	b = e.fStrings(b, "given", n.GetGiven())
	b = e.fStrings(b, "prefix", n.GetPrefix())
	b = e.fStrings(b, "suffix", n.GetSuffix())
	b = e.fString(b, "text", n.GetText())
	if u := n.GetUse(); u != nil {
		b = e.fEnum(b, "use", nameUseCodes.of(u.GetValue()))
	}
	b = append(b, '}')
	return b
}

func (e *encoder) patient(b []byte, p *ptpb.Patient) []byte {
	b = append(b, '{')
	b = e.fDate(b, "birthDate", p.GetBirthDate())
	if g := p.GetGender(); g != nil {
		b = e.fEnum(b, "gender", genderCodes.of(g.GetValue()))
	}
	b = e.fID(b, "id", p.GetId())
	b = e.fIdentifiers(b, "identifier", p.GetIdentifier())
	if ns := p.GetName(); len(ns) > 0 {
		b = e.key(b, "name")
		b = append(b, '[')
		for _, n := range ns {
			b = e.elem(b)
			b = e.humanName(b, n)
		}
		b = append(b, ']')
	}
	b = e.key(b, "resourceType")
	b = append(b, `"Patient"`...)
	b = append(b, '}')
	return b
}

func (e *encoder) containedResource(b []byte, cr *bcr.ContainedResource) []byte {
	switch r := cr.GetOneofResource().(type) {
	case *bcr.ContainedResource_DiagnosticReport:
		b = e.diagnosticReport(b, r.DiagnosticReport)
	case *bcr.ContainedResource_Observation:
		b = e.observation(b, r.Observation)
	case *bcr.ContainedResource_Provenance:
		b = e.provenance(b, r.Provenance)
	case *bcr.ContainedResource_Patient:
		b = e.patient(b, r.Patient)
	default:
		e.err = errUnsupportedField
	}
	return b
}

func (e *encoder) bundle(b []byte, bu *bcr.Bundle) []byte {
	b = append(b, '{')
	if es := bu.GetEntry(); len(es) > 0 {
		b = e.key(b, "entry")
		b = append(b, '[')
		for _, en := range es {
			b = e.elem(b)
			b = append(b, '{')
			b = e.fURI(b, "fullUrl", en.GetFullUrl())
			if rq := en.GetRequest(); rq != nil {
				b = e.key(b, "request")
				b = append(b, '{')
				if m := rq.GetMethod(); m != nil {
					b = e.fEnum(b, "method", httpVerbCodes.of(m.GetValue()))
				}
				b = e.fURI(b, "url", rq.GetUrl())
				b = append(b, '}')
			}
			if r := en.GetResource(); r != nil {
				b = e.key(b, "resource")
				b = e.containedResource(b, r)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = e.fID(b, "id", bu.GetId())
	b = e.fIdentifier(b, "identifier", bu.GetIdentifier())
	b = e.key(b, "resourceType")
	b = append(b, `"Bundle"`...)
	b = e.fInstant(b, "timestamp", bu.GetTimestamp())
	if t := bu.GetType(); t != nil {
		b = e.fEnum(b, "type", bundleTypeCodes.of(t.GetValue()))
	}
	b = append(b, '}')
	return b
}

// Enum codes, computed once from the enums' descriptors the way jsonformat
// writes them: the FHIR original code when the value has one, else the
// value's name in lower case with "_" as "-". Index 0 (uninitialised) is "".

type enumCodes []string

func (c enumCodes) of(v protoreflect.Enum) string {
	n := int(v.Number())
	if n <= 0 || n >= len(c) {
		return ""
	}
	return c[n]
}

func codesOf(ed protoreflect.EnumDescriptor) enumCodes {
	vals := ed.Values()
	maxN := 0
	for i := 0; i < vals.Len(); i++ {
		maxN = max(maxN, int(vals.Get(i).Number()))
	}
	out := make(enumCodes, maxN+1)
	for i := 0; i < vals.Len(); i++ {
		ev := vals.Get(i)
		if ev.Number() <= 0 {
			continue
		}
		code, _ := proto.GetExtension(ev.Options(), apb.E_FhirOriginalCode).(string)
		if code == "" {
			code = strings.ReplaceAll(strings.ToLower(string(ev.Name())), "_", "-")
		}
		out[ev.Number()] = code
	}
	return out
}

var (
	reportStatusCodes      = codesOf(c4.DiagnosticReportStatusCode_Value(0).Descriptor())
	observationStatusCodes = codesOf(c4.ObservationStatusCode_Value(0).Descriptor())
	comparatorCodes        = codesOf(c4.QuantityComparatorCode_Value(0).Descriptor())
	entityRoleCodes        = codesOf(c4.ProvenanceEntityRoleCode_Value(0).Descriptor())
	httpVerbCodes          = codesOf(c4.HTTPVerbCode_Value(0).Descriptor())
	bundleTypeCodes        = codesOf(c4.BundleTypeCode_Value(0).Descriptor())
	nameUseCodes           = codesOf(c4.NameUseCode_Value(0).Descriptor())
	genderCodes            = codesOf(c4.AdministrativeGenderCode_Value(0).Descriptor())
)
