package hl7

import (
	"strings"
	"time"
)

// MSH is the typed view of the message header.
type MSH struct {
	FieldSeparator       string      `json:"field_separator"`     // MSH-1
	EncodingCharacters   string      `json:"encoding_characters"` // MSH-2
	SendingApplication   HD          `json:"sending_application,omitzero"`
	SendingFacility      HD          `json:"sending_facility,omitzero"`
	ReceivingApplication HD          `json:"receiving_application,omitzero"`
	ReceivingFacility    HD          `json:"receiving_facility,omitzero"`
	DateTime             string      `json:"date_time,omitempty"`            // MSH-7 (DTM; first component of a TS)
	Security             string      `json:"security,omitempty"`             // MSH-8
	MessageType          MessageType `json:"message_type"`                   // MSH-9
	ControlID            string      `json:"control_id"`                     // MSH-10
	ProcessingID         string      `json:"processing_id,omitempty"`        // MSH-11.1: P, D, T
	Version              string      `json:"version,omitempty"`              // MSH-12.1
	AcceptAckType        string      `json:"accept_ack_type,omitempty"`      // MSH-15: AL, NE, ER, SU
	AppAckType           string      `json:"application_ack_type,omitempty"` // MSH-16
	CharacterSets        []string    `json:"character_sets,omitempty"`       // MSH-18, every repetition
}

// Time parses MSH-7 (see ParseTime).
func (h MSH) Time(loc *time.Location) (time.Time, error) { return ParseTime(h.DateTime, loc) }

// MSH returns the typed message header.
func (m *Message) MSH() MSH {
	s := &m.segs[0]
	h := MSH{
		FieldSeparator:       s.Field(1).Raw(),
		EncodingCharacters:   s.Field(2).Raw(),
		SendingApplication:   hdFromComponents(s.Field(3)),
		SendingFacility:      hdFromComponents(s.Field(4)),
		ReceivingApplication: hdFromComponents(s.Field(5)),
		ReceivingFacility:    hdFromComponents(s.Field(6)),
		DateTime:             s.Field(7).Component(1),
		Security:             s.Field(8).Value(),
		ControlID:            s.Field(10).Value(),
		ProcessingID:         s.Field(11).Component(1),
		Version:              s.Field(12).Component(1),
		AcceptAckType:        strings.TrimSpace(s.Field(15).Value()),
		AppAckType:           strings.TrimSpace(s.Field(16).Value()),
	}
	f9 := s.Field(9)
	h.MessageType = MessageType{Code: f9.Component(1), Event: f9.Component(2), Structure: f9.Component(3)}
	for _, v := range s.Field(18).Values() {
		if v = strings.TrimSpace(v); v != "" {
			h.CharacterSets = append(h.CharacterSets, v)
		}
	}
	return h
}

// EnhancedAckMode reports whether the sender asked for enhanced acknowledgement
// (chapter 2: MSH-15 or MSH-16 valued). Otherwise original mode applies.
func (m *Message) EnhancedAckMode() bool {
	s := &m.segs[0]
	return strings.TrimSpace(s.Field(15).Value()) != "" || strings.TrimSpace(s.Field(16).Value()) != ""
}

// PID is the typed view of the patient identification segment.
type PID struct {
	Seg             *Segment `json:"-"`
	SetID           string   `json:"set_id,omitempty"`          // PID-1
	Identifiers     []CX     `json:"identifiers"`               // PID-3, every repetition
	Names           []XPN    `json:"names,omitempty"`           // PID-5
	BirthDate       TS       `json:"birth_date,omitempty"`      // PID-7
	Sex             string   `json:"sex,omitempty"`             // PID-8 (table 0001)
	Race            []CWE    `json:"race,omitempty"`            // PID-10
	Addresses       []XAD    `json:"addresses,omitempty"`       // PID-11
	PrimaryLanguage CWE      `json:"primary_language,omitzero"` // PID-15
	AccountNumber   CX       `json:"account_number,omitzero"`   // PID-18
	DeathIndicator  string   `json:"death_indicator,omitempty"` // PID-30
}

// Identifier returns the first PID-3 identifier of the given type (table 0203,
// e.g. "MR"); with typ "" it returns the first identifier.
func (p PID) Identifier(typ string) (CX, bool) {
	for _, id := range p.Identifiers {
		if typ == "" || id.IdentifierType == typ {
			return id, true
		}
	}
	return CX{}, false
}

// PrimaryIdentifier returns the identifier resultgate keys a patient by: the
// first medical record number (CX-5 "MR") in PID-3, else the first identifier.
// The intake (partition) and the policy (history, Consents, holds) both use it,
// so one patient is one key everywhere.
func (p PID) PrimaryIdentifier() (CX, bool) {
	if p.Seg != nil {
		f, ok := PrimaryIdentifierField(p.Seg)
		if !ok {
			return CX{}, false
		}
		return cxFrom(f), true
	}
	if cx, ok := p.Identifier("MR"); ok {
		return cx, true
	}
	return p.Identifier("")
}

// PrimaryIdentifierField returns the repetition PID.PrimaryIdentifier reads
// from a PID segment: of PID-3 (PID-2 when PID-3 is empty or null, as in
// v2.1/2.2), the first with identifier type code (CX-5) "MR", else the first
// with an ID, and false when none has one. It reads only those components,
// not the whole segment as ReadPID does, for callers on a hot path.
func PrimaryIdentifierField(s *Segment) (Field, bool) {
	f := s.Field(3)
	if f.Reps() == 0 || f.IsNull() {
		f = s.Field(2)
	}
	var first Field
	found := false
	for _, rep := range f.AllReps() {
		if rep.Component(1) == "" {
			continue
		}
		if rep.Component(5) == "MR" {
			return rep, true
		}
		if !found {
			first, found = rep, true
		}
	}
	return first, found
}

// PID returns the first PID segment's typed view, and false when there is none.
func (m *Message) PID() (PID, bool) {
	s := m.First("PID")
	if s == nil {
		return PID{}, false
	}
	return ReadPID(s), true
}

// ReadPID returns the typed view of a PID segment.
func ReadPID(s *Segment) PID {
	p := PID{Seg: s, SetID: s.Field(1).Value(), BirthDate: tsFrom(s.Field(7)), Sex: s.Field(8).Value(),
		PrimaryLanguage: cweFrom(s.Field(15)), DeathIndicator: s.Field(30).Value()}
	f := s.Field(3)
	if f.Reps() == 0 || f.IsNull() {
		// v2.1/2.2 messages carry the ID in PID-2 (external) or PID-4 (alternate).
		f = s.Field(2)
	}
	for _, rep := range f.AllReps() {
		if cx := cxFrom(rep); cx.ID != "" {
			p.Identifiers = append(p.Identifiers, cx)
		}
	}
	for _, rep := range s.Field(5).AllReps() {
		if n := xpnFrom(rep); n != (XPN{}) {
			p.Names = append(p.Names, n)
		}
	}
	p.Race = cweList(s.Field(10))
	for _, rep := range s.Field(11).AllReps() {
		if a := xadFrom(rep); !a.IsZero() {
			p.Addresses = append(p.Addresses, a)
		}
	}
	if f18 := s.Field(18); !f18.IsEmpty() {
		p.AccountNumber = cxFrom(f18)
	}
	return p
}

// PV1 is the typed view of the patient visit segment.
type PV1 struct {
	Seg               *Segment `json:"-"`
	PatientClass      string   `json:"patient_class,omitempty"`       // PV1-2 (table 0004)
	AssignedLocation  string   `json:"assigned_location,omitempty"`   // PV1-3, point of care^room^bed^facility as written
	PointOfCare       string   `json:"point_of_care,omitempty"`       // PV1-3.1
	Facility          HD       `json:"facility,omitzero"`             // PV1-3.4
	AttendingDoctors  []XCN    `json:"attending_doctors,omitempty"`   // PV1-7
	ReferringDoctors  []XCN    `json:"referring_doctors,omitempty"`   // PV1-8
	HospitalService   string   `json:"hospital_service,omitempty"`    // PV1-10
	VisitNumber       CX       `json:"visit_number,omitzero"`         // PV1-19
	AdmitDateTime     TS       `json:"admit_date_time,omitempty"`     // PV1-44
	DischargeDateTime TS       `json:"discharge_date_time,omitempty"` // PV1-45
}

// ReadPV1 returns the typed view of a PV1 segment.
func ReadPV1(s *Segment) PV1 {
	f3 := s.Field(3)
	return PV1{Seg: s, PatientClass: s.Field(2).Value(), AssignedLocation: f3.Value(), PointOfCare: f3.Component(1),
		Facility: hdFromSubs(f3, 4), AttendingDoctors: xcnList(s.Field(7)), ReferringDoctors: xcnList(s.Field(8)),
		HospitalService: s.Field(10).Value(), VisitNumber: cxFrom(s.Field(19)),
		AdmitDateTime: tsFrom(s.Field(44)), DischargeDateTime: tsFrom(s.Field(45))}
}

// ORC is the typed view of the common order segment.
type ORC struct {
	Seg                 *Segment `json:"-"`
	OrderControl        string   `json:"order_control,omitempty"` // ORC-1 (table 0119: RE, NW, ...)
	PlacerOrderNumber   EI       `json:"placer_order_number,omitzero"`
	FillerOrderNumber   EI       `json:"filler_order_number,omitzero"`
	OrderStatus         string   `json:"order_status,omitempty"`        // ORC-5
	OrderingProviders   []XCN    `json:"ordering_providers,omitempty"`  // ORC-12
	ConfidentialityCode CWE      `json:"confidentiality_code,omitzero"` // ORC-28
}

// ReadORC returns the typed view of an ORC segment.
func ReadORC(s *Segment) ORC {
	return ORC{Seg: s, OrderControl: s.Field(1).Value(), PlacerOrderNumber: eiFrom(s.Field(2)),
		FillerOrderNumber: eiFrom(s.Field(3)), OrderStatus: s.Field(5).Value(),
		OrderingProviders: xcnList(s.Field(12)), ConfidentialityCode: cweFrom(s.Field(28))}
}

// ParentResult is OBR-26 (PRL): the parent's OBX-3, OBX-4 and a part of OBX-5.
type ParentResult struct {
	Identifier CWE    `json:"identifier,omitzero"`
	SubID      string `json:"sub_id,omitempty"`
	Value      string `json:"value,omitempty"`
}

// OBR is the typed view of the observation request segment.
type OBR struct {
	Seg                        *Segment     `json:"-"`
	SetID                      string       `json:"set_id,omitempty"`                      // OBR-1
	PlacerOrderNumber          EI           `json:"placer_order_number,omitzero"`          // OBR-2
	FillerOrderNumber          EI           `json:"filler_order_number,omitzero"`          // OBR-3
	UniversalServiceID         CWE          `json:"universal_service_id,omitzero"`         // OBR-4
	ObservationDateTime        TS           `json:"observation_date_time,omitempty"`       // OBR-7
	OrderingProviders          []XCN        `json:"ordering_providers,omitempty"`          // OBR-16
	ResultsReportedAt          TS           `json:"results_reported_at,omitempty"`         // OBR-22
	DiagnosticServiceSection   string       `json:"diagnostic_service_section,omitempty"`  // OBR-24 (table 0074: SP, CP, RAD, ...)
	ResultStatus               string       `json:"result_status,omitempty"`               // OBR-25 (table 0123: F, P, C, X, ...)
	ParentResult               ParentResult `json:"parent_result,omitzero"`                // OBR-26
	ResultCopiesTo             []XCN        `json:"result_copies_to,omitempty"`            // OBR-28
	ParentPlacer               EI           `json:"parent_placer,omitzero"`                // OBR-29.1
	ParentFiller               EI           `json:"parent_filler,omitzero"`                // OBR-29.2
	PrincipalResultInterpreter XCN          `json:"principal_result_interpreter,omitzero"` // OBR-32.1 (CNN)
}

// ReadOBR returns the typed view of an OBR segment.
func ReadOBR(s *Segment) OBR {
	f26, f29, f32 := s.Field(26), s.Field(29), s.Field(32)
	return OBR{Seg: s, SetID: s.Field(1).Value(), PlacerOrderNumber: eiFrom(s.Field(2)),
		FillerOrderNumber: eiFrom(s.Field(3)), UniversalServiceID: cweFrom(s.Field(4)),
		ObservationDateTime: tsFrom(s.Field(7)), OrderingProviders: xcnList(s.Field(16)),
		ResultsReportedAt: tsFrom(s.Field(22)), DiagnosticServiceSection: s.Field(24).Value(),
		ResultStatus: s.Field(25).Value(),
		ParentResult: ParentResult{
			Identifier: CWE{Code: f26.Sub(1, 1), Text: f26.Sub(1, 2), System: f26.Sub(1, 3),
				AltCode: f26.Sub(1, 4), AltText: f26.Sub(1, 5), AltSystem: f26.Sub(1, 6)},
			SubID: f26.Component(2), Value: f26.Component(3)},
		ResultCopiesTo: xcnList(s.Field(28)),
		ParentPlacer:   eiFromSubs(f29, 1), ParentFiller: eiFromSubs(f29, 2),
		// CNN: ID & family & given & middle & suffix & prefix & degree & source table & AA...
		PrincipalResultInterpreter: XCN{ID: f32.Sub(1, 1), Family: f32.Sub(1, 2), Given: f32.Sub(1, 3),
			Middle: f32.Sub(1, 4), Suffix: f32.Sub(1, 5), Prefix: f32.Sub(1, 6), Degree: f32.Sub(1, 7),
			AssigningAuthority: HD{NamespaceID: f32.Sub(1, 9), UniversalID: f32.Sub(1, 10), UniversalIDType: f32.Sub(1, 11)}},
	}
}

// OBX is the typed view of the observation segment.
type OBX struct {
	Seg                 *Segment `json:"-"`
	SetID               string   `json:"set_id,omitempty"`                // OBX-1
	ValueType           string   `json:"value_type,omitempty"`            // OBX-2 (table 0125: NM, ST, TX, FT, CWE, ED, ...)
	Identifier          CWE      `json:"identifier,omitzero"`             // OBX-3
	SubID               string   `json:"sub_id,omitempty"`                // OBX-4
	Units               CWE      `json:"units,omitzero"`                  // OBX-6
	ReferenceRange      string   `json:"reference_range,omitempty"`       // OBX-7
	AbnormalFlags       []string `json:"abnormal_flags,omitempty"`        // OBX-8, first component of each repetition
	ResultStatus        string   `json:"result_status,omitempty"`         // OBX-11 (table 0085: F, P, C, W, ...)
	ObservationDateTime TS       `json:"observation_date_time,omitempty"` // OBX-14
	ReleaseCategory     string   `json:"release_category,omitempty"`      // OBX-26 (v2.8+, table 0909)
}

// IsText reports whether OBX-5 holds text (ST, TX, FT, or an empty OBX-2).
func (o OBX) IsText() bool {
	switch o.ValueType {
	case "ST", "TX", "FT", "":
		return true
	}
	return false
}

// Value returns OBX-5: the field with all its repetitions.
func (o OBX) Value() Field { return o.Seg.Field(5) }

// Text returns OBX-5 as text: every repetition unescaped (separators a sender
// left unescaped are kept literally) and joined by "\n", since TX/FT senders use
// repetitions as line breaks.
func (o OBX) Text() string { return strings.Join(o.Seg.Field(5).Values(), "\n") }

// Coded returns OBX-5 read as coded values (CE/CWE/CNE), one per repetition.
func (o OBX) Coded() []CWE { return cweList(o.Seg.Field(5)) }

// ReadOBX returns the typed view of an OBX segment.
func ReadOBX(s *Segment) OBX {
	o := OBX{Seg: s, SetID: s.Field(1).Value(), ValueType: strings.TrimSpace(s.Field(2).Value()),
		Identifier: cweFrom(s.Field(3)), SubID: s.Field(4).Value(), Units: cweFrom(s.Field(6)),
		ReferenceRange: s.Field(7).Value(), ResultStatus: strings.TrimSpace(s.Field(11).Value()),
		ObservationDateTime: tsFrom(s.Field(14)), ReleaseCategory: s.Field(26).Component(1)}
	for _, rep := range s.Field(8).AllReps() {
		if v := rep.Component(1); v != "" {
			o.AbnormalFlags = append(o.AbnormalFlags, v)
		}
	}
	return o
}

// NTE is the typed view of a notes and comments segment.
type NTE struct {
	Seg         *Segment `json:"-"`
	SetID       string   `json:"set_id,omitempty"`      // NTE-1
	Source      string   `json:"source,omitempty"`      // NTE-2 (table 0105: L, P, O)
	Comment     string   `json:"comment"`               // NTE-3, repetitions joined by "\n"
	CommentType CWE      `json:"comment_type,omitzero"` // NTE-4
}

// ReadNTE returns the typed view of an NTE segment.
func ReadNTE(s *Segment) NTE {
	return NTE{Seg: s, SetID: s.Field(1).Value(), Source: s.Field(2).Value(),
		Comment: strings.Join(s.Field(3).Values(), "\n"), CommentType: cweFrom(s.Field(4))}
}

// SPM is the typed view of the specimen segment.
type SPM struct {
	Seg              *Segment `json:"-"`
	SetID            string   `json:"set_id,omitempty"`             // SPM-1
	PlacerSpecimenID EI       `json:"placer_specimen_id,omitzero"`  // SPM-2.1
	FillerSpecimenID EI       `json:"filler_specimen_id,omitzero"`  // SPM-2.2
	SpecimenType     CWE      `json:"specimen_type,omitzero"`       // SPM-4
	SourceSite       CWE      `json:"source_site,omitzero"`         // SPM-8
	CollectionStart  TS       `json:"collection_start,omitempty"`   // SPM-17.1
	CollectionEnd    TS       `json:"collection_end,omitempty"`     // SPM-17.2
	ReceivedDateTime TS       `json:"received_date_time,omitempty"` // SPM-18
}

// ReadSPM returns the typed view of an SPM segment.
func ReadSPM(s *Segment) SPM {
	f2, f17 := s.Field(2), s.Field(17)
	return SPM{Seg: s, SetID: s.Field(1).Value(), PlacerSpecimenID: eiFromSubs(f2, 1), FillerSpecimenID: eiFromSubs(f2, 2),
		SpecimenType: cweFrom(s.Field(4)), SourceSite: cweFrom(s.Field(8)),
		CollectionStart: TS(f17.Sub(1, 1)), CollectionEnd: TS(f17.Sub(2, 1)), ReceivedDateTime: tsFrom(s.Field(18))}
}

// DG1 is the typed view of the diagnosis segment.
type DG1 struct {
	Seg           *Segment `json:"-"`
	SetID         string   `json:"set_id,omitempty"`         // DG1-1
	CodingMethod  string   `json:"coding_method,omitempty"`  // DG1-2 (withdrawn in v2.6+)
	Code          CWE      `json:"code,omitzero"`            // DG1-3 (I10, I9, SCT, ...)
	Description   string   `json:"description,omitempty"`    // DG1-4 (withdrawn)
	DateTime      TS       `json:"date_time,omitempty"`      // DG1-5
	DiagnosisType string   `json:"diagnosis_type,omitempty"` // DG1-6 (table 0052: A, W, F)
}

// ReadDG1 returns the typed view of a DG1 segment.
func ReadDG1(s *Segment) DG1 {
	return DG1{Seg: s, SetID: s.Field(1).Value(), CodingMethod: s.Field(2).Value(), Code: cweFrom(s.Field(3)),
		Description: s.Field(4).Value(), DateTime: tsFrom(s.Field(5)), DiagnosisType: s.Field(6).Component(1)}
}
