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

// encoder appends JSON to buf.
type encoder struct {
	buf []byte
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
func (e *encoder) key(name string) {
	if n := len(e.buf); n > 0 && e.buf[n-1] != '{' {
		e.buf = append(e.buf, ',')
	}
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, '"', ':')
}

// elem writes the separator before an array element.
func (e *encoder) elem() {
	if n := len(e.buf); n > 0 && e.buf[n-1] != '[' {
		e.buf = append(e.buf, ',')
	}
}

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string exactly as encoding/json does with
// SetEscapeHTML(false): \" \\ \b \f \n \r \t, other control characters as
// \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func (e *encoder) str(s string) {
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			e.buf = append(e.buf, s[start:i]...)
			switch b {
			case '\\', '"':
				e.buf = append(e.buf, '\\', b)
			case '\b':
				e.buf = append(e.buf, '\\', 'b')
			case '\f':
				e.buf = append(e.buf, '\\', 'f')
			case '\n':
				e.buf = append(e.buf, '\\', 'n')
			case '\r':
				e.buf = append(e.buf, '\\', 'r')
			case '\t':
				e.buf = append(e.buf, '\\', 't')
			default:
				e.buf = append(e.buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
}

// Primitive fields: each writes its key and value when the element is set
// (a set element with an empty value is written, as jsonformat does).

func (e *encoder) fString(name string, v *d4.String) {
	if v != nil {
		e.key(name)
		e.str(v.GetValue())
	}
}

func (e *encoder) fMarkdown(name string, v *d4.Markdown) {
	if v != nil {
		e.key(name)
		e.str(v.GetValue())
	}
}

func (e *encoder) fURI(name string, v *d4.Uri) {
	if v != nil {
		e.key(name)
		e.str(v.GetValue())
	}
}

func (e *encoder) fURL(name string, v *d4.Url) {
	if v != nil {
		e.key(name)
		e.str(v.GetValue())
	}
}

func (e *encoder) fCode(name string, v *d4.Code) {
	if v != nil {
		e.key(name)
		e.str(v.GetValue())
	}
}

func (e *encoder) fID(name string, v *d4.Id) {
	if v != nil {
		e.key(name)
		e.str(v.GetValue())
	}
}

// fDecimal writes a decimal as the raw number it holds, as jsonformat does.
func (e *encoder) fDecimal(name string, v *d4.Decimal) {
	if v != nil {
		e.key(name)
		e.buf = append(e.buf, v.GetValue()...)
	}
}

func (e *encoder) fBase64(name string, v *d4.Base64Binary) {
	if v != nil {
		e.key(name)
		e.buf = append(e.buf, '"')
		e.buf = base64.StdEncoding.AppendEncode(e.buf, v.GetValue())
		e.buf = append(e.buf, '"')
	}
}

// fEnum writes an enum-valued code; the zero value (uninitialised) is left
// out, as jsonformat does.
func (e *encoder) fEnum(name, code string) {
	if code != "" {
		e.key(name)
		e.str(code)
	}
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
func (e *encoder) timeString(us int64, tz, layout string) {
	if tz != timezoneUTC {
		e.err = errUnsupportedZone
		return
	}
	e.buf = append(e.buf, '"')
	e.buf = time.UnixMicro(us).UTC().AppendFormat(e.buf, layout)
	e.buf = append(e.buf, '"')
}

func (e *encoder) fDateTime(name string, v *d4.DateTime) {
	if v == nil {
		return
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
		return
	}
	e.key(name)
	e.timeString(v.GetValueUs(), v.GetTimezone(), layout)
}

func (e *encoder) fInstant(name string, v *d4.Instant) {
	if v == nil {
		return
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
		return
	}
	e.key(name)
	e.timeString(v.GetValueUs(), v.GetTimezone(), layout)
}

func (e *encoder) fTime(name string, v *d4.Time) {
	if v == nil {
		return
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
		return
	}
	e.key(name)
	e.timeString(v.GetValueUs(), timezoneUTC, layout)
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// Complex data types.

func (e *encoder) coding(c *d4.Coding) {
	e.buf = append(e.buf, '{')
	e.fCode("code", c.GetCode())
	e.fString("display", c.GetDisplay())
	e.fURI("system", c.GetSystem())
	e.buf = append(e.buf, '}')
}

func (e *encoder) codeableConcept(cc *d4.CodeableConcept) {
	e.buf = append(e.buf, '{')
	if cs := cc.GetCoding(); len(cs) > 0 {
		e.key("coding")
		e.buf = append(e.buf, '[')
		for _, c := range cs {
			e.elem()
			e.coding(c)
		}
		e.buf = append(e.buf, ']')
	}
	e.fString("text", cc.GetText())
	e.buf = append(e.buf, '}')
}

func (e *encoder) fConcept(name string, cc *d4.CodeableConcept) {
	if cc != nil {
		e.key(name)
		e.codeableConcept(cc)
	}
}

func (e *encoder) fConcepts(name string, ccs []*d4.CodeableConcept) {
	if len(ccs) == 0 {
		return
	}
	e.key(name)
	e.buf = append(e.buf, '[')
	for _, cc := range ccs {
		e.elem()
		e.codeableConcept(cc)
	}
	e.buf = append(e.buf, ']')
}

func (e *encoder) identifier(id *d4.Identifier) {
	e.buf = append(e.buf, '{')
	e.fReference("assigner", id.GetAssigner())
	e.fURI("system", id.GetSystem())
	e.fConcept("type", id.GetType())
	e.fString("value", id.GetValue())
	e.buf = append(e.buf, '}')
}

func (e *encoder) fIdentifier(name string, id *d4.Identifier) {
	if id != nil {
		e.key(name)
		e.identifier(id)
	}
}

func (e *encoder) fIdentifiers(name string, ids []*d4.Identifier) {
	if len(ids) == 0 {
		return
	}
	e.key(name)
	e.buf = append(e.buf, '[')
	for _, id := range ids {
		e.elem()
		e.identifier(id)
	}
	e.buf = append(e.buf, ']')
}

// reference writes a Reference. The mapping writes literal references only
// (reference.uri); a typed reference id (e.g. patient_id), which jsonformat
// would denormalise, is not supported.
func (e *encoder) reference(r *d4.Reference) {
	e.buf = append(e.buf, '{')
	e.fString("display", r.GetDisplay())
	e.fIdentifier("identifier", r.GetIdentifier())
	switch ref := r.GetReference().(type) {
	case nil:
	case *d4.Reference_Uri:
		e.fString("reference", ref.Uri)
	default:
		e.err = errUnsupportedField
	}
	e.fURI("type", r.GetType())
	e.buf = append(e.buf, '}')
}

func (e *encoder) fReference(name string, r *d4.Reference) {
	if r != nil {
		e.key(name)
		e.reference(r)
	}
}

func (e *encoder) fReferences(name string, rs []*d4.Reference) {
	if len(rs) == 0 {
		return
	}
	e.key(name)
	e.buf = append(e.buf, '[')
	for _, r := range rs {
		e.elem()
		e.reference(r)
	}
	e.buf = append(e.buf, ']')
}

func (e *encoder) attachment(a *d4.Attachment) {
	e.buf = append(e.buf, '{')
	if ct := a.GetContentType(); ct != nil {
		e.key("contentType")
		e.str(ct.GetValue())
	}
	e.fBase64("data", a.GetData())
	e.fString("title", a.GetTitle())
	e.fURL("url", a.GetUrl())
	e.buf = append(e.buf, '}')
}

func (e *encoder) period(p *d4.Period) {
	e.buf = append(e.buf, '{')
	e.fDateTime("end", p.GetEnd())
	e.fDateTime("start", p.GetStart())
	e.buf = append(e.buf, '}')
}

func (e *encoder) quantity(q *d4.Quantity) {
	e.buf = append(e.buf, '{')
	e.fCode("code", q.GetCode())
	if c := q.GetComparator(); c != nil {
		e.fEnum("comparator", comparatorCodes.of(c.GetValue()))
	}
	e.fURI("system", q.GetSystem())
	e.fString("unit", q.GetUnit())
	e.fDecimal("value", q.GetValue())
	e.buf = append(e.buf, '}')
}

func (e *encoder) fQuantity(name string, q *d4.Quantity) {
	if q != nil {
		e.key(name)
		e.quantity(q)
	}
}

func (e *encoder) fSimpleQuantity(name string, q *d4.SimpleQuantity) {
	if q == nil {
		return
	}
	e.key(name)
	e.buf = append(e.buf, '{')
	e.fCode("code", q.GetCode())
	e.fURI("system", q.GetSystem())
	e.fString("unit", q.GetUnit())
	e.fDecimal("value", q.GetValue())
	e.buf = append(e.buf, '}')
}

func (e *encoder) rangeValue(r *d4.Range) {
	e.buf = append(e.buf, '{')
	e.fSimpleQuantity("high", r.GetHigh())
	e.fSimpleQuantity("low", r.GetLow())
	e.buf = append(e.buf, '}')
}

func (e *encoder) ratio(r *d4.Ratio) {
	e.buf = append(e.buf, '{')
	e.fQuantity("denominator", r.GetDenominator())
	e.fQuantity("numerator", r.GetNumerator())
	e.buf = append(e.buf, '}')
}

func (e *encoder) annotation(a *d4.Annotation) {
	e.buf = append(e.buf, '{')
	e.fMarkdown("text", a.GetText())
	e.buf = append(e.buf, '}')
}

// extensions writes a resource's extension list: url, then the one value[x]
// the mapping uses (annotation, attachment, code or string).
func (e *encoder) extensions(exts []*d4.Extension) {
	if len(exts) == 0 {
		return
	}
	e.key("extension")
	e.buf = append(e.buf, '[')
	for _, x := range exts {
		e.elem()
		e.buf = append(e.buf, '{')
		e.fURI("url", x.GetUrl())
		switch v := x.GetValue().GetChoice().(type) {
		case nil:
		case *d4.Extension_ValueX_Annotation:
			e.key("valueAnnotation")
			e.annotation(v.Annotation)
		case *d4.Extension_ValueX_Attachment:
			e.key("valueAttachment")
			e.attachment(v.Attachment)
		case *d4.Extension_ValueX_Code:
			e.fCode("valueCode", v.Code)
		case *d4.Extension_ValueX_StringValue:
			e.fString("valueString", v.StringValue)
		default:
			e.err = errUnsupportedField
		}
		e.buf = append(e.buf, '}')
	}
	e.buf = append(e.buf, ']')
}

// Resources.

func (e *encoder) diagnosticReport(dr *drpb.DiagnosticReport) {
	e.buf = append(e.buf, '{')
	e.fConcepts("category", dr.GetCategory())
	e.fConcept("code", dr.GetCode())
	e.fString("conclusion", dr.GetConclusion())
	switch v := dr.GetEffective().GetChoice().(type) {
	case nil:
	case *drpb.DiagnosticReport_EffectiveX_DateTime:
		e.fDateTime("effectiveDateTime", v.DateTime)
	case *drpb.DiagnosticReport_EffectiveX_Period:
		e.key("effectivePeriod")
		e.period(v.Period)
	default:
		e.err = errUnsupportedField
	}
	e.extensions(dr.GetExtension())
	e.fID("id", dr.GetId())
	e.fIdentifiers("identifier", dr.GetIdentifier())
	e.fInstant("issued", dr.GetIssued())
	e.fReferences("performer", dr.GetPerformer())
	if pf := dr.GetPresentedForm(); len(pf) > 0 {
		e.key("presentedForm")
		e.buf = append(e.buf, '[')
		for _, a := range pf {
			e.elem()
			e.attachment(a)
		}
		e.buf = append(e.buf, ']')
	}
	e.key("resourceType")
	e.buf = append(e.buf, `"DiagnosticReport"`...)
	e.fReferences("result", dr.GetResult())
	e.fReferences("resultsInterpreter", dr.GetResultsInterpreter())
	if st := dr.GetStatus(); st != nil {
		e.fEnum("status", reportStatusCodes.of(st.GetValue()))
	}
	e.fReference("subject", dr.GetSubject())
	e.buf = append(e.buf, '}')
}

func (e *encoder) observation(ob *obspb.Observation) {
	e.buf = append(e.buf, '{')
	e.fConcept("bodySite", ob.GetBodySite())
	e.fConcepts("category", ob.GetCategory())
	e.fConcept("code", ob.GetCode())
	if cs := ob.GetComponent(); len(cs) > 0 {
		e.key("component")
		e.buf = append(e.buf, '[')
		for _, c := range cs {
			e.elem()
			e.buf = append(e.buf, '{')
			e.fConcept("code", c.GetCode())
			switch v := c.GetValue().GetChoice().(type) {
			case nil:
			case *obspb.Observation_Component_ValueX_CodeableConcept:
				e.fConcept("valueCodeableConcept", v.CodeableConcept)
			case *obspb.Observation_Component_ValueX_DateTime:
				e.fDateTime("valueDateTime", v.DateTime)
			case *obspb.Observation_Component_ValueX_Period:
				e.key("valuePeriod")
				e.period(v.Period)
			case *obspb.Observation_Component_ValueX_Quantity:
				e.fQuantity("valueQuantity", v.Quantity)
			case *obspb.Observation_Component_ValueX_Range:
				e.key("valueRange")
				e.rangeValue(v.Range)
			case *obspb.Observation_Component_ValueX_Ratio:
				e.key("valueRatio")
				e.ratio(v.Ratio)
			case *obspb.Observation_Component_ValueX_StringValue:
				e.fString("valueString", v.StringValue)
			case *obspb.Observation_Component_ValueX_Time:
				e.fTime("valueTime", v.Time)
			default:
				e.err = errUnsupportedField
			}
			e.buf = append(e.buf, '}')
		}
		e.buf = append(e.buf, ']')
	}
	e.fConcept("dataAbsentReason", ob.GetDataAbsentReason())
	switch v := ob.GetEffective().GetChoice().(type) {
	case nil:
	case *obspb.Observation_EffectiveX_DateTime:
		e.fDateTime("effectiveDateTime", v.DateTime)
	default:
		e.err = errUnsupportedField
	}
	e.extensions(ob.GetExtension())
	e.fID("id", ob.GetId())
	e.fIdentifiers("identifier", ob.GetIdentifier())
	e.fConcepts("interpretation", ob.GetInterpretation())
	e.fInstant("issued", ob.GetIssued())
	e.fConcept("method", ob.GetMethod())
	if ns := ob.GetNote(); len(ns) > 0 {
		e.key("note")
		e.buf = append(e.buf, '[')
		for _, n := range ns {
			e.elem()
			e.annotation(n)
		}
		e.buf = append(e.buf, ']')
	}
	e.fReferences("performer", ob.GetPerformer())
	if rrs := ob.GetReferenceRange(); len(rrs) > 0 {
		e.key("referenceRange")
		e.buf = append(e.buf, '[')
		for _, rr := range rrs {
			e.elem()
			e.buf = append(e.buf, '{')
			e.fSimpleQuantity("high", rr.GetHigh())
			e.fSimpleQuantity("low", rr.GetLow())
			e.fString("text", rr.GetText())
			e.buf = append(e.buf, '}')
		}
		e.buf = append(e.buf, ']')
	}
	e.key("resourceType")
	e.buf = append(e.buf, `"Observation"`...)
	if st := ob.GetStatus(); st != nil {
		e.fEnum("status", observationStatusCodes.of(st.GetValue()))
	}
	e.fReference("subject", ob.GetSubject())
	switch v := ob.GetValue().GetChoice().(type) {
	case nil:
	case *obspb.Observation_ValueX_CodeableConcept:
		e.fConcept("valueCodeableConcept", v.CodeableConcept)
	case *obspb.Observation_ValueX_DateTime:
		e.fDateTime("valueDateTime", v.DateTime)
	case *obspb.Observation_ValueX_Period:
		e.key("valuePeriod")
		e.period(v.Period)
	case *obspb.Observation_ValueX_Quantity:
		e.fQuantity("valueQuantity", v.Quantity)
	case *obspb.Observation_ValueX_Range:
		e.key("valueRange")
		e.rangeValue(v.Range)
	case *obspb.Observation_ValueX_Ratio:
		e.key("valueRatio")
		e.ratio(v.Ratio)
	case *obspb.Observation_ValueX_StringValue:
		e.fString("valueString", v.StringValue)
	case *obspb.Observation_ValueX_Time:
		e.fTime("valueTime", v.Time)
	default:
		e.err = errUnsupportedField
	}
	e.buf = append(e.buf, '}')
}

func (e *encoder) provenance(p *provpb.Provenance) {
	e.buf = append(e.buf, '{')
	e.fConcept("activity", p.GetActivity())
	if as := p.GetAgent(); len(as) > 0 {
		e.key("agent")
		e.buf = append(e.buf, '[')
		for _, a := range as {
			e.elem()
			e.buf = append(e.buf, '{')
			e.fConcepts("role", a.GetRole())
			e.fConcept("type", a.GetType())
			e.fReference("who", a.GetWho())
			e.buf = append(e.buf, '}')
		}
		e.buf = append(e.buf, ']')
	}
	if es := p.GetEntity(); len(es) > 0 {
		e.key("entity")
		e.buf = append(e.buf, '[')
		for _, en := range es {
			e.elem()
			e.buf = append(e.buf, '{')
			if r := en.GetRole(); r != nil {
				e.fEnum("role", entityRoleCodes.of(r.GetValue()))
			}
			e.fReference("what", en.GetWhat())
			e.buf = append(e.buf, '}')
		}
		e.buf = append(e.buf, ']')
	}
	e.extensions(p.GetExtension())
	e.fID("id", p.GetId())
	switch v := p.GetOccurred().GetChoice().(type) {
	case nil:
	case *provpb.Provenance_OccurredX_DateTime:
		e.fDateTime("occurredDateTime", v.DateTime)
	default:
		e.err = errUnsupportedField
	}
	e.fConcepts("reason", p.GetReason())
	e.fInstant("recorded", p.GetRecorded())
	e.key("resourceType")
	e.buf = append(e.buf, `"Provenance"`...)
	e.fReferences("target", p.GetTarget())
	e.buf = append(e.buf, '}')
}

func (e *encoder) containedResource(cr *bcr.ContainedResource) {
	switch r := cr.GetOneofResource().(type) {
	case *bcr.ContainedResource_DiagnosticReport:
		e.diagnosticReport(r.DiagnosticReport)
	case *bcr.ContainedResource_Observation:
		e.observation(r.Observation)
	case *bcr.ContainedResource_Provenance:
		e.provenance(r.Provenance)
	default:
		e.err = errUnsupportedField
	}
}

func (e *encoder) bundle(b *bcr.Bundle) {
	e.buf = append(e.buf, '{')
	if es := b.GetEntry(); len(es) > 0 {
		e.key("entry")
		e.buf = append(e.buf, '[')
		for _, en := range es {
			e.elem()
			e.buf = append(e.buf, '{')
			e.fURI("fullUrl", en.GetFullUrl())
			if rq := en.GetRequest(); rq != nil {
				e.key("request")
				e.buf = append(e.buf, '{')
				if m := rq.GetMethod(); m != nil {
					e.fEnum("method", httpVerbCodes.of(m.GetValue()))
				}
				e.fURI("url", rq.GetUrl())
				e.buf = append(e.buf, '}')
			}
			if r := en.GetResource(); r != nil {
				e.key("resource")
				e.containedResource(r)
			}
			e.buf = append(e.buf, '}')
		}
		e.buf = append(e.buf, ']')
	}
	e.fID("id", b.GetId())
	e.fIdentifier("identifier", b.GetIdentifier())
	e.key("resourceType")
	e.buf = append(e.buf, `"Bundle"`...)
	e.fInstant("timestamp", b.GetTimestamp())
	if t := b.GetType(); t != nil {
		e.fEnum("type", bundleTypeCodes.of(t.GetValue()))
	}
	e.buf = append(e.buf, '}')
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
)
