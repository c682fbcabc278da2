package policy

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/resultgate/resultgate/hl7"
)

// ErrNilMessage is returned by FromHL7 for a nil message.
var ErrNilMessage = errors.New("policy: nil HL7 message")

// FromHL7 builds the policy's view of a parsed result message in one pass
// over its segments, with the ORU^R01 grouping rules (which also fit ORF, OUL
// and MDM messages that carry OBX): an ORC opens an order group, an OBR
// fills it (or opens one), an OBX belongs to the current order (one without
// OBR is made for an OBX before any OBR), an NTE belongs to the OBX or OBR
// before it, OBX after SPM belong to the order. It reads PID-3 and PID-15 and
// every DG1-3. Times without a UTC offset are read in loc (the sender's zone;
// UTC when nil). An unparseable OBR-22 leaves FinalizedAt zero, so the
// decision falls back to the receipt time and says so. ReceivedAt and
// Jurisdiction are left for the caller.
//
// It reads fields directly (hl7.Segment.Field) rather than through the typed
// views, which read every field: this is the classify step's hot path.
func FromHL7(m *hl7.Message, loc *time.Location) (*Report, error) {
	if m == nil {
		return nil, ErrNilMessage
	}
	r := new(Report)
	fromHL7(r, m, loc, nil)
	return r, nil
}

// ReportBuilder is FromHL7 for a caller that handles one message after
// another and keeps no report past the next one: it refills one Report and
// reuses its arrays (orders, observations, texts, coded values), so a
// message costs few or no allocations once the builder has seen a message
// as large. Strings are never reused: every string in a report (and
// therefore every string in a Classification of it) stays valid after the
// next call, but the Report itself and its slices do not. The zero value is
// ready to use; a ReportBuilder is not safe for concurrent use.
type ReportBuilder struct {
	r      Report
	orders []Order
	obs    []Observation
	texts  []Text
	coded  []Coded
	diags  []Coded
	arena  []byte // append-only: bytes once handed out are never written again
}

// FromHL7 builds the report of m as the package's FromHL7 does, in the
// builder's memory. The report is valid until the next call.
func (rb *ReportBuilder) FromHL7(m *hl7.Message, loc *time.Location) (*Report, error) {
	if m == nil {
		return nil, ErrNilMessage
	}
	rb.r = Report{}
	fromHL7(&rb.r, m, loc, rb)
	return &rb.r, nil
}

var reportBuilders = sync.Pool{New: func() any { return new(ReportBuilder) }}

// FromHL7Pooled is FromHL7 in the memory of a pooled ReportBuilder, for
// callers that handle messages on several goroutines. release hands that
// memory back for another message; call it once, when neither the Report
// nor its slices are used any more (its strings stay valid, as with
// ReportBuilder). On error there is nothing to release (release is nil).
func FromHL7Pooled(m *hl7.Message, loc *time.Location) (r *Report, release func(), err error) {
	rb := reportBuilders.Get().(*ReportBuilder)
	r, err = rb.FromHL7(m, loc)
	if err != nil {
		reportBuilders.Put(rb)
		return nil, nil, err
	}
	return r, func() { reportBuilders.Put(rb) }, nil
}

// reuse returns s[:n] zeroed when s can hold n elements, else a new slice.
func reuse[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// fromHL7 fills the zero report r; rb, when not nil, lends its arrays.
func fromHL7(r *Report, m *hl7.Message, loc *time.Location, rb *ReportBuilder) {
	if loc == nil {
		loc = time.UTC
	}
	r.ControlID = m.ControlID()
	// Size the slices once: every OBX goes into one backing array that the
	// orders share in turn (each order's slice is clipped when the next one
	// starts, so appending to it later cannot overwrite a neighbour). Texts
	// and notes take their first element from one shared array the same way,
	// and joined repetitions are written into one buffer (see strArena).
	nSeg := m.NumSegments()
	esc := m.Delimiters().Escape
	nOrders, nOBX, nNTE, textBytes := 0, 0, 0, 0
	var pidSeg *hl7.Segment
	for i := 0; i < nSeg; i++ {
		s := m.Segment(i)
		switch s.Name() {
		case "OBR", "ORC":
			nOrders++
		case "OBX":
			nOBX++
			textBytes += arenaBytes(s.Field(5), esc)
		case "NTE":
			nNTE++
			textBytes += arenaBytes(s.Field(3), esc)
		case "PID":
			if pidSeg == nil {
				pidSeg = s
			}
		}
	}
	if pidSeg != nil {
		r.PatientID = patientID(pidSeg)
		r.Language = pidSeg.Field(15).Component(1)
	}
	b := builder{loc: loc, d: m.Delimiters()}
	var obsBuf []Observation
	if rb == nil {
		b.arena.buf = make([]byte, 0, textBytes)
		b.texts = make([]Text, 0, nOBX+nNTE)
		r.Orders = make([]Order, 0, max(nOrders, 1))
		obsBuf = make([]Observation, nOBX)
	} else {
		if cap(rb.arena)-len(rb.arena) < textBytes {
			rb.arena = make([]byte, 0, max(textBytes, 4<<10))
		}
		b.arena.buf = rb.arena
		b.texts = reuse(rb.texts, nOBX+nNTE)[:0]
		r.Orders = reuse(rb.orders, max(nOrders, 1))[:0]
		obsBuf = reuse(rb.obs, nOBX)
		b.coded = rb.coded[:0]
		if b.coded == nil {
			b.coded = []Coded{} // not nil: count what does not fit
		}
		r.Diagnoses = rb.diags[:0]
		defer func() {
			rb.arena = b.arena.buf
			rb.texts, rb.orders, rb.obs = b.texts, r.Orders, obsBuf
			if b.codedMiss > 0 {
				// Some coded values did not fit: have room for all of
				// them next time.
				rb.coded = make([]Coded, 0, len(b.coded)+b.codedMiss)
			} else {
				rb.coded = b.coded
			}
			rb.diags = r.Diagnoses
			if len(r.Diagnoses) == 0 {
				r.Diagnoses = nil // as FromHL7 leaves it
			}
		}()
	}
	free := 0          // first slot of obsBuf not used by an earlier order
	cur, obs := -1, -1 // current order and observation indexes
	var orc *hl7.Segment
	newOrder := func() {
		if cur >= 0 {
			o := &r.Orders[cur]
			if o.Observations != nil {
				free += len(o.Observations)
				o.Observations = o.Observations[:len(o.Observations):len(o.Observations)]
			}
		}
		r.Orders = append(r.Orders, Order{})
		cur, obs = len(r.Orders)-1, -1
		if orc != nil {
			o := &r.Orders[cur]
			o.Loc = segLoc(orc, "")
			o.PlacerID = orc.Field(2).Component(1)
			o.FillerID = orc.Field(3).Component(1)
			o.OrderingProvider = orc.Field(12).Component(1)
		}
	}
	for i := 0; i < nSeg; i++ {
		s := m.Segment(i)
		switch s.Name() {
		case "ORC":
			orc = s
			newOrder()
		case "OBR":
			if cur < 0 || r.Orders[cur].Service.Loc.Segment != "" || len(r.Orders[cur].Observations) > 0 || orc == nil {
				newOrder()
			}
			b.fillOBR(&r.Orders[cur], s)
			orc = nil
		case "OBX":
			if cur < 0 {
				newOrder()
			}
			o := &r.Orders[cur]
			if o.Observations == nil {
				o.Observations = obsBuf[free:free]
			}
			// obsBuf has a (zero) slot for every OBX: extend in place
			// rather than append a copy of a zero Observation.
			o.Observations = o.Observations[:len(o.Observations)+1]
			b.fromOBX(&o.Observations[len(o.Observations)-1], s)
			obs = len(o.Observations) - 1
		case "NTE":
			if cur < 0 {
				continue // patient-level note
			}
			t := b.joinReps(s.Field(3))
			if t == "" {
				continue
			}
			o := &r.Orders[cur]
			if obs >= 0 {
				b.addText(&o.Observations[obs].Notes, Text{Value: t, Loc: segLoc(s, "NTE-3")})
			} else {
				b.addText(&o.Notes, Text{Value: t, Loc: segLoc(s, "NTE-3")})
			}
		case "SPM":
			obs = -1
		case "DG1":
			if cd := b.fromField(s.Field(3), segLoc(s, "DG1-3")); cd.Code != "" || cd.Text != "" {
				r.Diagnoses = append(r.Diagnoses, cd)
			}
		}
	}
}

// patientID reads the patient identifier from a PID segment as
// hl7.PID.PrimaryIdentifier chooses it (hl7.PrimaryIdentifierField), written
// "id" or "id^^^authority", without reading the whole typed view.
func patientID(s *hl7.Segment) string {
	pick, ok := hl7.PrimaryIdentifierField(s)
	if !ok {
		return ""
	}
	id := pick.Component(1)
	a := pick.Sub(4, 1)
	if a == "" {
		a = pick.Sub(4, 2)
	}
	if a == "" {
		return id
	}
	// Usually the repetition itself reads "id^^^authority...": return that
	// part of the message instead of a new string.
	if raw, n := pick.Raw(), len(id)+3+len(a); len(raw) >= n && raw[:len(id)] == id && raw[len(id):len(id)+3] == "^^^" && raw[len(id)+3:n] == a {
		return raw[:n]
	}
	return id + "^^^" + a
}

// builder holds what FromHL7 shares between segments.
type builder struct {
	loc   *time.Location
	d     hl7.Delimiters
	arena strArena // the joined texts of the report: one allocation for all
	texts []Text   // backing for the first text or note of each observation and order
	// coded, when not nil, lends room for coded values (OBX-5 values and
	// alternate triplets); codedMiss counts those that did not fit.
	coded     []Coded
	codedMiss int
}

// takeCoded returns an empty slice with room for n coded values, from the
// lent array when it has room (clipped, so appending beyond n copies).
func (b *builder) takeCoded(n int) []Coded {
	if b.coded != nil && cap(b.coded)-len(b.coded) >= n {
		k := len(b.coded)
		b.coded = b.coded[:k+n]
		clear(b.coded[k:])
		return b.coded[k : k : k+n]
	}
	if b.coded != nil {
		b.codedMiss += n
	}
	return make([]Coded, 0, n)
}

// addText appends t to *dst; a first element comes from the shared array,
// clipped so that a later append to *dst copies instead of overwriting a
// neighbour.
func (b *builder) addText(dst *[]Text, t Text) {
	if *dst == nil && len(b.texts) < cap(b.texts) {
		k := len(b.texts)
		b.texts = append(b.texts, t)
		*dst = b.texts[k : k+1 : k+1]
		return
	}
	*dst = append(*dst, t)
}

// arenaBytes returns the room a text field needs in the text arena: its raw
// length when joinReps writes it there (several repetitions, or escapes to
// decode), else 0. Decoding can need more (\.sp n\ is n line breaks); the
// arena then moves on to a new array.
func arenaBytes(f hl7.Field, esc byte) int {
	raw := f.Raw()
	if f.Reps() > 1 || esc != 0 && strings.IndexByte(raw, esc) >= 0 {
		return len(raw)
	}
	return 0
}

// joinReps returns every repetition of f unescaped, joined by "\n" (TX/FT
// senders use repetitions as line breaks). A single repetition without
// escapes is returned as it is in the message; anything else is written into
// the text arena.
func (b *builder) joinReps(f hl7.Field) string {
	n := f.Reps()
	switch {
	case n == 0:
		return ""
	case n == 1 && (b.d.Escape == 0 || strings.IndexByte(f.Raw(), b.d.Escape) < 0):
		return f.Value()
	}
	a := &b.arena
	start := len(a.buf)
	for i, rep := range f.AllReps() {
		if i > 1 {
			a.buf = append(a.buf, '\n')
		}
		a.buf = rep.AppendValue(a.buf)
	}
	if len(a.buf) == start {
		return ""
	}
	return unsafe.String(&a.buf[start], len(a.buf)-start)
}

func (b *builder) fillOBR(o *Order, s *hl7.Segment) {
	o.Loc = segLoc(s, "")
	if v := s.Field(2).Component(1); v != "" {
		o.PlacerID = v
	}
	if v := s.Field(3).Component(1); v != "" {
		o.FillerID = v
	}
	o.Service = b.fromField(s.Field(4), segLoc(s, "OBR-4"))
	o.ServiceSection = strings.TrimSpace(s.Field(24).Component(1))
	o.ServiceSectionLoc = segLoc(s, "OBR-24")
	o.ResultStatus = strings.TrimSpace(s.Field(25).Component(1))
	o.ObservedAt = parseTS(s.Field(7).Component(1), b.loc)
	o.FinalizedAt = parseTS(s.Field(22).Component(1), b.loc)
	if o.OrderingProvider == "" {
		o.OrderingProvider = s.Field(16).Component(1)
	}
}

func segLoc(s *hl7.Segment, field string) Location {
	if s == nil {
		return Location{}
	}
	return Location{Segment: s.Name(), Occurrence: s.Occurrence(), Field: field}
}

// fromField reads the first repetition of a coded field (CE/CWE/CNE) with its
// alternate triplets.
func (b *builder) fromField(f hl7.Field, loc Location) Coded {
	var cs comps
	cs.split(f, b.d)
	cd := Coded{Code: cs.get(1), Text: cs.get(2), System: cs.get(3), Loc: loc}
	if cs.n <= 1 {
		return cd
	}
	if cd.Text == "" {
		cd.Text = cs.get(9)
	}
	code4, text4 := cs.get(4), cs.get(5)
	code10, text10 := cs.get(10), cs.get(11)
	alt4 := code4 != "" || text4 != ""
	alt10 := code10 != "" || text10 != ""
	if !alt4 && !alt10 {
		return cd
	}
	n := 0
	if alt4 {
		n++
	}
	if alt10 {
		n++
	}
	cd.Alt = b.takeCoded(n)
	if alt4 {
		l := loc
		l.Field = altField(loc.Field, ".4")
		cd.Alt = append(cd.Alt, Coded{Code: code4, Text: text4, System: cs.get(6), Loc: l})
	}
	if alt10 {
		l := loc
		l.Field = altField(loc.Field, ".10")
		cd.Alt = append(cd.Alt, Coded{Code: code10, Text: text10, System: cs.get(12), Loc: l})
	}
	return cd
}

// altField returns field+suffix, without allocating for the fields FromHL7
// reads coded values from.
func altField(field, suffix string) string {
	if suffix == ".4" {
		switch field {
		case "OBR-4":
			return "OBR-4.4"
		case "OBX-3":
			return "OBX-3.4"
		case "OBX-5":
			return "OBX-5.4"
		case "DG1-3":
			return "DG1-3.4"
		}
	} else if suffix == ".10" {
		switch field {
		case "OBR-4":
			return "OBR-4.10"
		case "OBX-3":
			return "OBX-3.10"
		case "OBX-5":
			return "OBX-5.10"
		case "DG1-3":
			return "DG1-3.10"
		}
	}
	return field + suffix
}

// comps holds the components of a field's first repetition, split once, so
// that reading several components costs one pass over the field instead of
// one per component (hl7.Field.Component walks from the start each time).
// get(c), for c from 1 to 12, returns exactly what f.Component(c) returns
// (for any field but the literal MSH-1 and MSH-2).
type comps struct {
	raw [12]string // raw (still escaped) components 1-12
	n   int        // number of components (0 for an empty first repetition)
	d   hl7.Delimiters
}

func (cs *comps) split(f hl7.Field, d hl7.Delimiters) {
	cs.d = d
	v := f.Rep(1).Raw()
	if v == "" {
		return
	}
	sep := d.Component
	if sep == 0 {
		cs.raw[0], cs.n = v, 1
		return
	}
	for {
		i := strings.IndexByte(v, sep)
		if i < 0 {
			if cs.n < len(cs.raw) {
				cs.raw[cs.n] = v
			}
			cs.n++
			return
		}
		if cs.n < len(cs.raw) {
			cs.raw[cs.n] = v[:i]
		}
		cs.n++
		v = v[i+1:]
	}
}

func (cs *comps) get(c int) string {
	if c > cs.n {
		return ""
	}
	v := cs.raw[c-1]
	if v == `""` {
		return ""
	}
	return hl7.Unescape(v, cs.d)
}

func parseTS(v string, loc *time.Location) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := hl7.ParseTime(v, loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

// valueKind says how FromHL7 reads OBX-5 for an OBX-2 value type (already
// upper case): coded (CE, CWE, CNE, CF, CV), text (ST, TX, FT, or none) or
// neither.
func valueKind(vt string) (coded, text bool) {
	switch vt {
	case "CE", "CWE", "CNE", "CF", "CV":
		return true, false
	case "ST", "TX", "FT", "":
		return false, true
	}
	return false, false
}

func (b *builder) fromOBX(ob *Observation, s *hl7.Segment) {
	// ob is a zero slot of the shared array: set the fields in place (an
	// assignment of a whole Observation would copy 300-odd bytes with write
	// barriers).
	ob.SetID = s.Field(1).Value()
	ob.ValueType = strings.TrimSpace(s.Field(2).Component(1))
	ob.ID = b.fromField(s.Field(3), segLoc(s, "OBX-3"))
	ob.Status = strings.TrimSpace(s.Field(11).Component(1))
	ob.ObservedAt = parseTS(s.Field(14).Component(1), b.loc)
	ob.ReleaseCategory = s.Field(26).Component(1)
	ob.Loc = segLoc(s, "")
	if f := s.Field(8); !f.IsEmpty() {
		for _, rep := range f.AllReps() {
			if v := rep.Component(1); v != "" {
				ob.AbnormalFlags = append(ob.AbnormalFlags, v)
			}
		}
	}
	coded, text := valueKind(strings.ToUpper(ob.ValueType))
	f := s.Field(5)
	switch {
	case f.IsEmpty():
	case coded:
		n := f.Reps()
		codes := b.takeCoded(n)
		for i, rep := range f.AllReps() {
			field := "OBX-5"
			if i > 1 {
				field = "OBX-5(" + strconv.Itoa(i) + ")"
			}
			cd := b.fromField(rep, segLoc(s, field))
			if cd.Code == "" && cd.Text == "" && len(cd.Alt) == 0 {
				continue
			}
			codes = append(codes, cd)
			if orig := rep.Component(9); orig != "" && cd.Text != "" && orig != cd.Text {
				ob.Texts = append(ob.Texts, Text{Value: orig, Loc: segLoc(s, field+".9")})
			}
		}
		if len(codes) > 0 {
			ob.Codes = codes
		}
	case text:
		if t := b.joinReps(f); strings.TrimSpace(t) != "" {
			b.addText(&ob.Texts, Text{Value: t, Loc: segLoc(s, "OBX-5")})
		}
	}
}
