package fhirmap

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/resultgate/resultgate/hl7"

	c4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	d4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	drpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/diagnostic_report_go_proto"
	obspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

type reportOut struct {
	res *drpb.DiagnosticReport
	id  rid
}

type obsOut struct {
	res *obspb.Observation
	id  rid
}

// field returns field n of s, or an empty field when s is nil.
func field(s *hl7.Segment, n int) hl7.Field {
	if s == nil {
		return hl7.Field{}
	}
	return s.Field(n)
}

// eiScope is the namespace of an entity identifier: EI-2^EI-3, or the sending
// application^facility when the EI has none.
func (b *builder) eiScope(f hl7.Field) string {
	ns, uid := clean(f.Component(2)), clean(f.Component(3))
	if ns == "" && uid == "" {
		return b.scope
	}
	return b.ar.concat(ns, "^", uid)
}

// orderKey is the identity of the report: the filler order number (the
// sender's id of the result), else the placer order number, scoped and
// qualified by OBR-4; for an MDM document its unique document number; else
// the message control id and OBR position. Re-sending or correcting the same
// order gives the same key, so the same resource ids.
func (b *builder) orderKey(o *order) string {
	var key string
	if o.obr != nil {
		svc := clean(o.obr.Field(4).Component(1))
		for _, c := range []struct {
			typ string
			f   hl7.Field
		}{
			{"FILL", o.obr.Field(3)}, {"FILL", field(o.orc, 3)},
			{"PLAC", o.obr.Field(2)}, {"PLAC", field(o.orc, 2)},
		} {
			if v := clean(c.f.Component(1)); v != "" {
				key = b.ar.concat(c.typ, "|", b.eiScope(c.f), "|", v, "|", svc)
				break
			}
		}
		if key == "" {
			key = b.ar.concat("MSG|", b.scope, "|", b.controlID, "|OBR", strconv.Itoa(o.pos))
		}
	} else {
		for _, n := range []int{12, 15, 14} {
			f := field(o.txa, n)
			if v := clean(f.Component(1)); v != "" {
				key = b.ar.concat("DOC", strconv.Itoa(n), "|", b.eiScope(f), "|", v)
				break
			}
		}
		if key == "" {
			key = b.ar.concat("MSG|", b.scope, "|", b.controlID, "|DOC")
		}
	}
	b.usedKeys[key]++
	if n := b.usedKeys[key]; n > 1 {
		key = b.ar.concat(key, "|#", strconv.Itoa(n))
	}
	return key
}

func (b *builder) mapOrder(o *order) (reportOut, []obsOut, string, error) {
	key := b.orderKey(o)
	a := &b.ar
	x := a.reports.get()
	dr := &x.dr
	dr.Subject = b.subject()
	out := reportOut{res: dr, id: b.newID("DiagnosticReport", key)}
	dr.Id = a.newIDValue(out.id.id)
	dr.Identifier = a.identPtrs.ptrs(3)

	// Identifiers (OBR-2/OBR-3, falling back to ORC-2/ORC-3; MDM: TXA-12/14/15).
	if o.obr != nil {
		if id := a.identifierEI(firstValued(o.obr.Field(2), field(o.orc, 2)), "PLAC"); id != nil {
			dr.Identifier = append(dr.Identifier, id)
		}
		if id := a.identifierEI(firstValued(o.obr.Field(3), field(o.orc, 3)), "FILL"); id != nil {
			dr.Identifier = append(dr.Identifier, id)
		}
	} else if o.txa != nil {
		if id := a.identifierEI(o.txa.Field(12), ""); id != nil {
			dr.Identifier = append(dr.Identifier, id)
		}
		if id := a.identifierEI(o.txa.Field(14), "PLAC"); id != nil {
			dr.Identifier = append(dr.Identifier, id)
		}
		if id := a.identifierEI(o.txa.Field(15), "FILL"); id != nil {
			dr.Identifier = append(dr.Identifier, id)
		}
	}
	if len(dr.Identifier) == 0 {
		dr.Identifier = nil
	}

	// Status.
	st, err := b.reportStatus(o)
	if err != nil {
		return reportOut{}, nil, "", err
	}
	x.st.Value = st
	dr.Status = &x.st

	// Code and category.
	if o.obr != nil {
		dr.Code = a.concept(o.obr.Field(4))
	} else if o.txa != nil {
		dr.Code = a.concept(o.txa.Field(2))
	}
	if dr.Code == nil {
		dr.Code = a.conceptText("Unspecified report")
	}
	sec, secCode := b.section(o)
	dr.Category = a.categories(sec, secCode)

	// Times.
	var effStart *d4.DateTime
	var issued *d4.Instant
	if o.obr != nil {
		effStart = b.dateTime(o.obr.Field(7).Component(1))
		end := b.dateTime(o.obr.Field(8).Component(1))
		switch {
		case end != nil:
			dr.Effective = &drpb.DiagnosticReport_EffectiveX{Choice: &drpb.DiagnosticReport_EffectiveX_Period{Period: &d4.Period{Start: effStart, End: end}}}
		case effStart != nil:
			x.effDT.DateTime = effStart
			x.eff.Choice = &x.effDT
			dr.Effective = &x.eff
		}
		issued = b.instant(o.obr.Field(22).Component(1))
	} else if o.txa != nil {
		effStart = b.dateTime(o.txa.Field(4).Component(1))
		if effStart != nil {
			dr.Effective = &drpb.DiagnosticReport_EffectiveX{Choice: &drpb.DiagnosticReport_EffectiveX_DateTime{DateTime: effStart}}
		}
		issued = b.instant(o.txa.Field(6).Component(1))
	}
	dr.Issued = issued

	// People and organisations (logical references, no resources).
	if o.obr != nil {
		dr.ResultsInterpreter = a.refsNDL(o.obr.Field(32))
		dr.Performer = a.refsNDL(o.obr.Field(34))
	} else if o.txa != nil {
		dr.Performer = a.refsXCN(o.txa.Field(9))
	}
	seenOrg := map[string]bool{}
	for _, e := range o.obxs {
		if r := a.organizationRef(e.seg.Field(23)); r != nil {
			k := a.concat(r.GetIdentifier().GetValue().GetValue(), "|", r.GetDisplay().GetValue())
			if !seenOrg[k] {
				seenOrg[k] = true
				if dr.Performer == nil {
					dr.Performer = a.refPtrs.ptrs(len(o.obxs))
				}
				dr.Performer = append(dr.Performer, r)
			}
		}
	}

	// Observations, narrative and attachments.
	obs, err := b.observations(o, key, st, sec, effStart, issued, dr)
	if err != nil {
		return reportOut{}, nil, "", err
	}
	if len(obs) > 0 {
		dr.Result = a.refPtrs.take(len(obs))
		for i, ob := range obs {
			dr.Result[i] = a.refTo(ob.id)
		}
	}

	// Order-level NTEs.
	if note := joinNotes(o.notes); note != "" {
		dr.Extension = append(dr.Extension, &d4.Extension{
			Url:   &d4.Uri{Value: ExtR5DiagnosticReportNote},
			Value: &d4.Extension_ValueX{Choice: &d4.Extension_ValueX_Annotation{Annotation: &d4.Annotation{Text: &d4.Markdown{Value: note}}}},
		})
	}
	return out, obs, key, nil
}

// subject returns the reference to the Patient of the Bundle's resources.
// Every resource of a Bundle names the same Patient: one reference is built
// and shared (three allocations per resource saved); nothing writes to a
// resource's subject after it is built, and the encoders only read it.
func (b *builder) subject() *d4.Reference {
	if b.subj == nil {
		x := &b.subjRef
		x.s.Value = b.opts.PatientRef
		x.uri.Uri = &x.s
		x.ref.Reference = &x.uri
		b.subj = &x.ref
	}
	return b.subj
}

// firstValued returns the first field with a value in component 1.
func firstValued(fs ...hl7.Field) hl7.Field {
	for _, f := range fs {
		if clean(f.Component(1)) != "" {
			return f
		}
	}
	return hl7.Field{}
}

func (a *arena) refsNDL(f hl7.Field) []*d4.Reference {
	var out []*d4.Reference
	for _, rep := range f.AllReps() {
		if r := a.ndlRef(rep); r != nil {
			if out == nil {
				out = a.refPtrs.ptrs(f.Reps())
			}
			out = append(out, r)
		}
	}
	return out
}

func (a *arena) refsXCN(f hl7.Field) []*d4.Reference {
	var out []*d4.Reference
	for _, rep := range f.AllReps() {
		if r := a.practitionerRef(rep); r != nil {
			if out == nil {
				out = a.refPtrs.ptrs(f.Reps())
			}
			out = append(out, r)
		}
	}
	return out
}

// reportStatus is entered-in-error when every OBX is deleted or wrong;
// otherwise it maps OBR-25; when it is empty (common, though required), the
// MDM TXA-17, else the OBX-11 statuses decide: any correction → corrected,
// all final → final, anything preliminary → preliminary, all deleted →
// entered-in-error, all cancelled → cancelled, otherwise unknown.
func (b *builder) reportStatus(o *order) (c4.DiagnosticReportStatusCode_Value, error) {
	// Every result deleted or posted as wrong (OBX-11 D, W: a withdrawal,
	// e.g. the wrong patient) makes the report entered-in-error whatever
	// OBR-25 says: a portal replacing what the patient saw must take it down.
	if len(o.obxs) > 0 {
		wrong := 0
		for _, e := range o.obxs {
			if observationStatus[strings.ToUpper(code(e.seg.Field(11).Value()))] == c4.ObservationStatusCode_ENTERED_IN_ERROR {
				wrong++
			}
		}
		if wrong == len(o.obxs) {
			return c4.DiagnosticReportStatusCode_ENTERED_IN_ERROR, nil
		}
	}
	if o.obr != nil {
		s := strings.ToUpper(code(o.obr.Field(25).Value()))
		if s == "Y" || s == "Z" {
			return 0, fmt.Errorf("%w: OBR-25 %q in OBR %d", ErrResultStatus, s, o.pos)
		}
		if v, ok := reportStatus[s]; ok {
			return v, nil
		}
		if s != "" {
			return c4.DiagnosticReportStatusCode_UNKNOWN, nil
		}
	}
	if o.txa != nil {
		if v, ok := documentStatus[strings.ToUpper(code(o.txa.Field(17).Value()))]; ok {
			return v, nil
		}
	}
	counts := map[c4.ObservationStatusCode_Value]int{}
	for _, e := range o.obxs {
		counts[observationStatus[strings.ToUpper(code(e.seg.Field(11).Value()))]]++
	}
	n := len(o.obxs)
	switch {
	case n == 0:
		return c4.DiagnosticReportStatusCode_UNKNOWN, nil
	case counts[c4.ObservationStatusCode_CORRECTED] > 0:
		return c4.DiagnosticReportStatusCode_CORRECTED, nil
	case counts[c4.ObservationStatusCode_FINAL]+counts[c4.ObservationStatusCode_AMENDED] == n:
		return c4.DiagnosticReportStatusCode_FINAL, nil
	case counts[c4.ObservationStatusCode_PRELIMINARY] > 0:
		return c4.DiagnosticReportStatusCode_PRELIMINARY, nil
	case counts[c4.ObservationStatusCode_ENTERED_IN_ERROR] == n:
		return c4.DiagnosticReportStatusCode_ENTERED_IN_ERROR, nil
	case counts[c4.ObservationStatusCode_CANCELLED] == n:
		return c4.DiagnosticReportStatusCode_CANCELLED, nil
	}
	return c4.DiagnosticReportStatusCode_UNKNOWN, nil
}

// section returns the OBR-24 diagnostic service section (known or not).
func (b *builder) section(o *order) (section, string) {
	if o.obr == nil {
		return section{}, ""
	}
	c := strings.ToUpper(code(o.obr.Field(24).Component(1)))
	return sections[c], c
}

// categories maps OBR-24 to DiagnosticReport.category: the v2-0074 code; for
// laboratory sections also v2-0074 LAB (what US Core expects of lab
// reports); for imaging, cardiology and pathology sections also the LOINC
// report category. A code outside table 0074 is kept as text.
func (a *arena) categories(sec section, c string) []*d4.CodeableConcept {
	if c == "" {
		return nil
	}
	if sec.display == "" {
		out := a.conceptPtrs.take(1)
		out[0] = a.conceptText(c)
		return out
	}
	out := a.conceptPtrs.ptrs(3)
	out = append(out, a.conceptCode(SystemV2_0074, c, sec.display))
	if sec.lab && c != "LAB" {
		out = append(out, a.conceptCode(SystemV2_0074, "LAB", "Laboratory"))
	}
	if sec.loinc != "" {
		out = append(out, a.conceptCode(SystemLOINC, sec.loinc, loincCategoryDisplay[sec.loinc]))
	}
	return out
}

func joinNotes(notes []string) string {
	s := strings.Trim(text(strings.Join(notes, "\n")), " \t\n")
	return s
}

// obsRun is one Observation being built from one or more OBX.
type obsRun struct {
	first    *obxEntry
	vt       string
	texts    []string // narrative lines (text types), one per merged OBX
	notes    []string
	idKey    string
	mergeKey string
}

// observations maps the order's OBX to Observations. ED values become
// DiagnosticReport.presentedForm; consecutive narrative OBX (ST/TX/FT) with
// the same OBX-3, OBX-4 and OBX-11 are joined into one
// Observation; TX/FT (and MDM) content also becomes a text/plain
// presentedForm, and impression/final-diagnosis OBX the conclusion.
func (b *builder) observations(o *order, key string, st c4.DiagnosticReportStatusCode_Value, sec section, effStart *d4.DateTime, issued *d4.Instant, dr *drpb.DiagnosticReport) ([]obsOut, error) {
	a := &b.ar
	runs := a.runPtrs.ptrs(len(o.obxs))
	seen := b.seenBase()
	narrative := b.isMDM
	var conclusion []string
	for _, e := range o.obxs {
		s := e.seg
		vt := strings.ToUpper(code(s.Field(2).Value()))
		if vt == "ED" {
			title := clean(s.Field(3).Component(2))
			if title == "" {
				title = clean(dr.GetCode().GetText().GetValue())
			}
			if a, ok := edAttachment(s.Field(5), title); ok {
				dr.PresentedForm = append(dr.PresentedForm, a)
				continue
			}
		}
		if vt == "TX" || vt == "FT" {
			narrative = true
		}
		idf := s.Field(3)
		var codeKey string
		if c1 := clean(idf.Component(1)); c1 != "" {
			codeKey = a.concat(clean(idf.Component(3)), "^", c1)
		} else {
			codeKey = a.concat("^^", clean(idf.Component(2)))
		}
		sub := clean(s.Field(4).Value())
		mergeKey := a.concat(codeKey, "|", sub, "|", code(s.Field(11).Value()))
		if isText(vt) {
			if n := len(runs); n > 0 {
				prev := runs[n-1]
				if isText(prev.vt) && prev.mergeKey == mergeKey {
					prev.texts = append(prev.texts, textValue(s.Field(5)))
					prev.notes = append(prev.notes, e.notes...)
					continue
				}
			}
		}
		base := mergeKey[:len(codeKey)+1+len(sub)] // codeKey|OBX-4
		seen[base]++
		r := a.runs.get()
		r.first, r.vt, r.mergeKey = e, vt, mergeKey
		if len(e.notes) > 0 {
			r.notes = a.strs.take(len(e.notes))
			copy(r.notes, e.notes)
		}
		r.idKey = a.concat(key, "|OBX|", base, "|", strconv.Itoa(seen[base]))
		if isText(vt) {
			r.texts = a.strs.take(1)
			r.texts[0] = textValue(s.Field(5))
		}
		runs = append(runs, r)
	}

	out := a.obsOuts.ptrs(len(runs))
	var story []string
	lastHeader := ""
	headers := distinctTextCodes(runs) > 1
	for _, r := range runs {
		ob, err := b.observation(r, st, sec, effStart, issued)
		if err != nil {
			return nil, err
		}
		out = append(out, ob)
		if isText(r.vt) {
			body := strings.Trim(strings.Join(r.texts, "\n"), "\n")
			if strings.TrimSpace(body) == "" {
				continue
			}
			if headers {
				h := clean(r.first.seg.Field(3).Component(2))
				if h == "" {
					h = clean(r.first.seg.Field(3).Component(1))
				}
				if h != "" && h != lastHeader {
					if len(story) > 0 {
						story = append(story, "")
					}
					story = append(story, h+":")
					lastHeader = h
				}
			}
			story = append(story, body)
			if isConclusion(r.first.seg.Field(3)) {
				conclusion = append(conclusion, strings.TrimSpace(body))
			}
		}
	}
	if len(conclusion) > 0 {
		dr.Conclusion = &d4.String{Value: strings.Join(conclusion, "\n")}
	}
	if narrative && len(story) > 0 {
		title := clean(dr.GetCode().GetText().GetValue())
		if title == "" && len(dr.GetCode().GetCoding()) > 0 {
			title = dr.GetCode().GetCoding()[0].GetDisplay().GetValue()
		}
		a := &d4.Attachment{
			ContentType: &d4.Attachment_ContentTypeCode{Value: "text/plain; charset=utf-8"},
			Data:        &d4.Base64Binary{Value: []byte(strings.Join(story, "\n"))},
			Title:       str(title),
		}
		dr.PresentedForm = append([]*d4.Attachment{a}, dr.PresentedForm...)
	}
	return out, nil
}

// distinctTextCodes counts the distinct OBX-3 among narrative runs.
func distinctTextCodes(runs []*obsRun) int {
	m := map[string]bool{}
	for _, r := range runs {
		if isText(r.vt) {
			codeKey, _, _ := strings.Cut(r.mergeKey, "|")
			m[codeKey] = true
		}
	}
	return len(m)
}

// isConclusion reports whether OBX-3 names an impression or final diagnosis:
// a LOINC code in conclusionCodes, or the imaging convention of an OBX-3
// identifier ending in subcomponent "IMP".
func isConclusion(f hl7.Field) bool {
	if systemFor(f.Component(3)) == SystemLOINC && conclusionCodes[clean(f.Component(1))] {
		return true
	}
	if n := f.Subcomponents(1); n > 1 && strings.EqualFold(clean(f.Sub(1, n)), "IMP") {
		return true
	}
	return strings.EqualFold(clean(f.Component(1)), "IMP")
}

// textValue returns a narrative OBX-5: its repetitions one per line (senders
// use "~" as a line break in TX), escapes decoded (\.br\ is a line break).
func textValue(f hl7.Field) string {
	n := f.Reps()
	if n <= 1 {
		return text(f.Value())
	}
	lines := make([]string, 0, n)
	for _, rep := range f.AllReps() {
		lines = append(lines, text(rep.Value()))
	}
	return strings.Join(lines, "\n")
}

func (b *builder) observation(r *obsRun, drStatus c4.DiagnosticReportStatusCode_Value, sec section, effStart *d4.DateTime, issued *d4.Instant) (obsOut, error) {
	s := r.first.seg
	id := b.newID("Observation", r.idKey)
	ar := &b.ar
	// One slab element holds the Observation and its always-present elements.
	a := ar.obs.get()
	ob := &a.ob
	a.id.Value = id.id
	ob.Id, ob.Subject, ob.Status = &a.id, b.subject(), &a.st

	st := strings.ToUpper(code(s.Field(11).Value()))
	if v, ok := observationStatus[st]; ok {
		a.st.Value = v
	} else if v, ok := reportToObservation[drStatus]; ok && st == "" {
		a.st.Value = v
	} else {
		a.st.Value = c4.ObservationStatusCode_UNKNOWN
	}
	if sec.obsCat != "" {
		a.cat[0] = b.obsCategory(sec.obsCat)
		ob.Category = a.cat[:]
	}
	ob.Code = ar.concept(s.Field(3))
	if ob.Code == nil {
		ob.Code = ar.conceptText("Unspecified observation")
	}
	effective := b.dateTime(s.Field(14).Component(1))
	if effective == nil {
		effective = effStart
	}
	if effective != nil {
		e := ar.obsEffs.get()
		e.dt.DateTime = effective
		e.e.Choice = &e.dt
		ob.Effective = &e.e
	}
	ob.Issued = issued
	ob.Performer = ar.refsXCN(s.Field(16))
	if org := ar.organizationRef(s.Field(23)); org != nil {
		if ob.Performer == nil {
			ob.Performer = ar.refPtrs.ptrs(1)
		}
		ob.Performer = append(ob.Performer, org)
	}

	// Value.
	u := ar.unitOf(s.Field(6))
	val := s.Field(5)
	switch {
	case isText(r.vt) || r.vt == "":
		if v := stringValue(ar, strings.Join(r.texts, "\n")); !v.empty() {
			ob.Value = v.observationValue(ar)
		} else if r.vt == "" {
			if v := stringValue(ar, joinComponents(val)); !v.empty() {
				ob.Value = v.observationValue(ar)
			}
		}
	case r.vt == "ED":
		// ED that could not be decoded (see edAttachment).
		ob.DataAbsentReason = ar.conceptCode(SystemDataAbsent, "error", "Error")
	case val.Reps() > 1:
		// The IG's OBX[Observation-Component]: one component per repetition.
		for _, rep := range val.AllReps() {
			v := b.mapValue(r.vt, rep, u)
			if v.empty() {
				continue
			}
			ob.Component = append(ob.Component, &obspb.Observation_Component{Code: ob.Code, Value: v.componentValue()})
		}
	default:
		v := b.mapValue(r.vt, val, u)
		switch {
		case v.attachment != nil:
			ob.Extension = append(ob.Extension, &d4.Extension{
				Url:   &d4.Uri{Value: ExtR5ObservationValue},
				Value: &d4.Extension_ValueX{Choice: &d4.Extension_ValueX_Attachment{Attachment: v.attachment}},
			})
		case !v.empty():
			ob.Value = v.observationValue(ar)
		}
	}
	if ob.Value == nil && len(ob.Component) == 0 && len(ob.Extension) == 0 && ob.DataAbsentReason == nil {
		switch st {
		case "X":
			ob.DataAbsentReason = ar.conceptCode(SystemDataAbsent, "not-performed", "Not Performed")
		case "N":
			ob.DataAbsentReason = ar.conceptCode(SystemDataAbsent, "not-asked", "Not Asked")
		}
	}

	// Interpretation (OBX-8), reference range (OBX-7), notes, method, site, id.
	f8 := s.Field(8)
	for _, rep := range f8.AllReps() {
		c := code(rep.Component(1))
		if c == "" {
			continue
		}
		if ob.Interpretation == nil {
			ob.Interpretation = ar.conceptPtrs.ptrs(f8.Reps())
		}
		if d, ok := v3Interpretation[c]; ok {
			ob.Interpretation = append(ob.Interpretation, ar.conceptCode(SystemV3Interp, c, d))
		} else {
			cc := ar.conceptCode("", c, rep.Component(2))
			cc.Text = ar.newString(c)
			ob.Interpretation = append(ob.Interpretation, cc)
		}
	}
	ob.ReferenceRange = ar.referenceRange(s.Field(7).Value(), u)
	if note := joinNotes(r.notes); note != "" {
		n := ar.annotations.get()
		n.text.Value = note
		n.a.Text = &n.text
		n.ptr[0] = &n.a
		ob.Note = n.ptr[:]
	}
	ob.Method = ar.concept(s.Field(17))
	ob.BodySite = ar.concept(s.Field(20))
	if oid := ar.identifierEI(s.Field(21), ""); oid != nil {
		ob.Identifier = ar.identPtrs.take(1)
		ob.Identifier[0] = oid
	}
	return obsOut{res: ob, id: id}, nil
}

// obsCategory returns the Observation category concept of code c, built
// once per Bundle and shared by its Observations (read only, like subject).
func (b *builder) obsCategory(c string) *d4.CodeableConcept {
	if cc := b.obsCats[c]; cc != nil {
		return cc
	}
	cc := b.ar.conceptCode(SystemObsCategory, c, obsCategoryDisplay[c])
	if b.obsCats == nil {
		b.obsCats = map[string]*d4.CodeableConcept{}
	}
	b.obsCats[c] = cc
	return cc
}

var obsCategoryDisplay = map[string]string{
	"laboratory":  "Laboratory",
	"imaging":     "Imaging",
	"procedure":   "Procedure",
	"exam":        "Exam",
	"therapy":     "Therapy",
	"vital-signs": "Vital Signs",
}
