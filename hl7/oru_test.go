package hl7

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func segNames(segs []*Segment) []string {
	out := []string{}
	for _, s := range segs {
		out = append(out, s.Name()+"/"+s.Field(1).Value())
	}
	return out
}

func TestORUv251(t *testing.T) {
	m := mustParse(t, loadFixture(t, "oru_r01_v251.hl7"))
	o, err := m.ORU()
	if err != nil {
		t.Fatal(err)
	}
	if len(o.SFTs) != 1 || len(o.Patients) != 1 {
		t.Fatalf("SFT %d patients %d", len(o.SFTs), len(o.Patients))
	}
	p := &o.Patients[0]
	if p.PID == nil || p.PV1 == nil || len(p.Orders) != 2 {
		t.Fatalf("patient group: PID %v PV1 %v orders %d", p.PID != nil, p.PV1 != nil, len(p.Orders))
	}
	o1, o2 := &p.Orders[0], &p.Orders[1]
	if o1.ORC == nil || o1.OBR == nil || o2.ORC != nil || o2.OBR == nil {
		t.Fatalf("order 1 ORC %v OBR %v; order 2 ORC %v (want none) OBR %v", o1.ORC != nil, o1.OBR != nil, o2.ORC != nil, o2.OBR != nil)
	}
	if got := segNames(o1.NTEs); !reflect.DeepEqual(got, []string{"NTE/1"}) {
		t.Errorf("order 1 NTEs %v", got)
	}
	if len(o1.Observations) != 4 || len(o1.Observations[0].NTEs) != 1 || len(o1.Observations[1].NTEs) != 0 {
		t.Fatalf("order 1 observations %d", len(o1.Observations))
	}
	if len(o1.Specimens) != 1 || len(o1.Specimens[0].OBXs) != 1 || len(o1.SPMs) != 1 || o1.SPMs[0] != o1.Specimens[0].SPM {
		t.Fatalf("specimens %d", len(o1.Specimens))
	}
	if len(o2.Observations) != 2 || len(o2.Observations[1].NTEs) != 1 || len(o2.Observations[1].Extra) != 1 {
		t.Errorf("order 2: %d observations, last NTEs %d extra %d", len(o2.Observations), len(o2.Observations[1].NTEs), len(o2.Observations[1].Extra))
	}
	if got := o2.Observations[1].Extra[0].Name(); got != "ZRG" {
		t.Errorf("Z-segment kept as %s", got)
	}
	if n := len(o.Orders()); n != 2 {
		t.Errorf("Orders() = %d", n)
	}

	// Typed views.
	obr := o1.Request()
	wantOBR := OBR{Seg: o1.OBR, SetID: "1",
		PlacerOrderNumber:          EI{ID: "PLC-100", NamespaceID: "PORTAL"},
		FillerOrderNumber:          EI{ID: "FIL-200", NamespaceID: "SYNTH LAB"},
		UniversalServiceID:         CWE{Code: "88305", Text: "Surgical pathology", System: "CPT", AltCode: "SP", AltText: "Tissue exam", AltSystem: "L"},
		ObservationDateTime:        "20240304093000",
		OrderingProviders:          []XCN{{ID: "D001", Family: "DOCTOR", Given: "DELTA", Prefix: "DR", Degree: "MD"}},
		ResultsReportedAt:          "20240305142500",
		DiagnosticServiceSection:   "SP",
		ResultStatus:               "F",
		ResultCopiesTo:             []XCN{{ID: "C002", Family: "COPY", Given: "CHARLIE"}, {ID: "C003", Family: "COPY", Given: "CAROL"}},
		PrincipalResultInterpreter: XCN{ID: "P001", Family: "PATHOLOGIST", Given: "PAT", Prefix: "DR", Degree: "MD"},
	}
	if !reflect.DeepEqual(obr, wantOBR) {
		t.Errorf("OBR\n got %+v\nwant %+v", obr, wantOBR)
	}
	orc := o1.Common()
	if orc.OrderControl != "RE" || orc.PlacerOrderNumber.ID != "PLC-100" || orc.FillerOrderNumber.NamespaceID != "SYNTH LAB" ||
		len(orc.OrderingProviders) != 1 || orc.OrderingProviders[0].Family != "DOCTOR" || orc.ConfidentialityCode.Code != "R" || orc.OrderStatus != "CM" {
		t.Errorf("ORC %+v", orc)
	}
	if o2.Common().Seg != nil {
		t.Errorf("missing ORC must give a zero view")
	}
	x1 := o1.Observations[0].Result()
	if x1.ValueType != "TX" || x1.Identifier.Code != "22637-3" || x1.Identifier.System != "LN" || x1.ResultStatus != "F" ||
		x1.Text() != "Invasive ductal carcinoma, grade 2.\nMargins negative." || !x1.IsText() || x1.ObservationDateTime != "20240305142000" {
		t.Errorf("OBX 1 %+v text %q", x1, x1.Text())
	}
	if n := o1.Observations[0].Notes(); len(n) != 1 || n[0].Comment != "Reviewed at tumour board\nsee addendum" || n[0].Source != "L" {
		t.Errorf("OBX 1 notes %+v", n)
	}
	if got := o1.Observations[1].Result().Text(); got != "Line one\nLine two & more\n\nEnd" {
		t.Errorf("FT text %q", got)
	}
	x3 := o1.Observations[2].Result()
	if x3.Value().Value() != "105" || x3.Units.Code != "mg/dL" || x3.Units.System != "UCUM" || x3.ReferenceRange != "70-99" ||
		!reflect.DeepEqual(x3.AbnormalFlags, []string{"H"}) || x3.ReleaseCategory != "R" || x3.Identifier.AltCode != "GLU" || x3.IsText() {
		t.Errorf("OBX 3 %+v", x3)
	}
	if c := o1.Observations[3].Result().Coded(); len(c) != 1 || c[0].Code != "8500/3" || c[0].System != "ICDO3" {
		t.Errorf("OBX 4 coded %+v", c)
	}
	spm := o1.Specimens[0].Specimen()
	if spm.PlacerSpecimenID.ID != "SPC-1" || spm.FillerSpecimenID.ID != "SPC-1F" || spm.FillerSpecimenID.NamespaceID != "SYNTH LAB" ||
		spm.SpecimenType.Code != "119376003" || spm.CollectionStart != "20240304090000" || spm.CollectionEnd != "20240304093000" || spm.ReceivedDateTime != "20240304110000" {
		t.Errorf("SPM %+v", spm)
	}
	if n := o2.Observations[1].Notes(); n[0].Comment != "Slight haemolysis | repeat if clinically indicated ^ ~ \\" {
		t.Errorf("NTE escapes %q", n[0].Comment)
	}

	pid := p.Patient()
	if len(pid.Identifiers) != 2 {
		t.Fatalf("PID-3 %+v", pid.Identifiers)
	}
	mrn, ok := pid.Identifier("MR")
	wantMRN := CX{ID: "MRN0001", IdentifierType: "MR", AssigningAuthority: HD{NamespaceID: "GENHOSP", UniversalID: "2.16.840.1.113883.19.5", UniversalIDType: "ISO"}}
	if !ok || mrn != wantMRN {
		t.Errorf("MR identifier %+v", mrn)
	}
	if ss, _ := pid.Identifier("SS"); ss.AssigningAuthority.NamespaceID != "SSA" {
		t.Errorf("SS identifier %+v", ss)
	}
	if _, ok := pid.Identifier("XX"); ok {
		t.Errorf("absent identifier type found")
	}
	if pid.Names[0] != (XPN{Family: "TESTPATIENT", Given: "ALPHA", Middle: "Q", Suffix: "JR", NameType: "L"}) {
		t.Errorf("PID-5 %+v", pid.Names[0])
	}
	if pid.BirthDate != "19700101" || pid.Sex != "F" || pid.Race[0].Code != "2106-3" || pid.Addresses[0].City != "SAMPLETOWN" ||
		pid.Addresses[0].Other != "APT 2" || pid.AccountNumber.ID != "ACCT-1" || pid.DeathIndicator != "N" {
		t.Errorf("PID %+v", pid)
	}
	bd, err := pid.BirthDate.Time(time.UTC)
	if err != nil || !bd.Equal(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("birth date %v %v", bd, err)
	}
	pv1 := p.Visit()
	if pv1.PatientClass != "O" || pv1.PointOfCare != "LAB" || pv1.Facility.NamespaceID != "GENHOSP" || pv1.AttendingDoctors[0].AssigningAuthority.UniversalID != "1.2.3" ||
		pv1.HospitalService != "MED" || pv1.VisitNumber.ID != "VN-77" || pv1.AdmitDateTime != "20240305120000" {
		t.Errorf("PV1 %+v", pv1)
	}

	h := m.MSH()
	wantH := MSH{FieldSeparator: "|", EncodingCharacters: `^~\&`,
		SendingApplication:   HD{"LABSYS", "2.16.840.1.113883.19.4.6", "ISO"},
		SendingFacility:      HD{"SYNTH LAB", "2.16.840.1.113883.19.4.7", "ISO"},
		ReceivingApplication: HD{NamespaceID: "PORTAL"}, ReceivingFacility: HD{NamespaceID: "GENHOSP"},
		DateTime: "20240305143012-0500", MessageType: MessageType{"ORU", "R01", "ORU_R01"}, ControlID: "CTRL-0001",
		ProcessingID: "P", Version: "2.5.1", AcceptAckType: "AL", AppAckType: "NE", CharacterSets: []string{"UNICODE UTF-8"}}
	if !reflect.DeepEqual(h, wantH) {
		t.Errorf("MSH\n got %+v\nwant %+v", h, wantH)
	}
	ts, err := h.Time(nil)
	if err != nil || !ts.Equal(time.Date(2024, 3, 5, 19, 30, 12, 0, time.UTC)) {
		t.Errorf("MSH-7 %v %v", ts, err)
	}
	if !m.EnhancedAckMode() {
		t.Errorf("MSH-15/16 set: enhanced mode")
	}
}

func TestORUv23(t *testing.T) {
	m := mustParse(t, loadFixture(t, "oru_r01_v23.hl7"))
	o, err := m.ORU()
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Patients) != 1 || len(o.Patients[0].Orders) != 2 {
		t.Fatalf("patients %d", len(o.Patients))
	}
	p := &o.Patients[0]
	if p.PV1 != nil {
		t.Errorf("no PV1 in this message")
	}
	o1 := &p.Orders[0]
	if o1.ORC == nil || o1.Request().UniversalServiceID.Code != "CBC" {
		t.Errorf("order 1")
	}
	if got := segNames(o1.NTEs); !reflect.DeepEqual(got, []string{"NTE/1"}) {
		t.Errorf("order NTEs %v", got)
	}
	if len(o1.Observations) != 2 || len(o1.Observations[0].NTEs) != 2 || len(o1.Observations[1].NTEs) != 0 {
		t.Errorf("observations %d", len(o1.Observations))
	}
	o2 := &p.Orders[1]
	if o2.ORC != nil || o2.OBR == nil || len(o2.Observations) != 1 || len(o2.Observations[0].Extra) != 1 {
		t.Errorf("order 2: ORC %v OBX %d extra %v", o2.ORC != nil, len(o2.Observations), o2.Observations)
	}
	if m.EnhancedAckMode() {
		t.Errorf("no MSH-15/16: original mode")
	}
	if pid := p.Patient(); pid.Identifiers[0].AssigningAuthority.NamespaceID != "FAC1" {
		t.Errorf("PID-3.4 %+v", pid.Identifiers[0])
	}
}

func TestORUv28(t *testing.T) {
	m := mustParse(t, loadFixture(t, "oru_r01_v28.hl7"))
	o, err := m.ORU()
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Patients) != 2 {
		t.Fatalf("patients %d", len(o.Patients))
	}
	p := &o.Patients[0]
	if len(p.PRTs) != 1 || len(p.NTEs) != 1 || p.PV1 == nil || len(p.Others) != 1 || p.Others[0].Name() != "PRT" {
		t.Errorf("patient: PRT %d NTE %d PV1 %v others %v", len(p.PRTs), len(p.NTEs), p.PV1 != nil, segNames(p.Others))
	}
	ord := &p.Orders[0]
	if len(ord.PRTs) != 1 || len(ord.Timing) != 1 || len(ord.Observations) != 1 || len(ord.Specimens) != 1 {
		t.Fatalf("order: PRT %d TQ1 %d OBX %d SPM %d", len(ord.PRTs), len(ord.Timing), len(ord.Observations), len(ord.Specimens))
	}
	obs := &ord.Observations[0]
	if len(obs.PRTs) != 1 || len(obs.NTEs) != 1 || obs.Result().ReleaseCategory != "DELAYED" {
		t.Errorf("observation: PRT %d NTE %d OBX-26 %q", len(obs.PRTs), len(obs.NTEs), obs.Result().ReleaseCategory)
	}
	if sp := &ord.Specimens[0]; len(sp.SACs) != 1 || len(sp.OBXs) != 1 {
		t.Errorf("specimen: SAC %d OBX %d", len(sp.SACs), len(sp.OBXs))
	}
	p2 := &o.Patients[1]
	if len(p2.Orders) != 1 || p2.Orders[0].OBR != nil || len(p2.Orders[0].Observations) != 1 {
		t.Errorf("OBX without OBR must get an order group without OBR")
	}
	if m.Delimiters().Truncation != '#' {
		t.Errorf("truncation %q", m.Delimiters().Truncation)
	}
}

func TestGroupingTolerance(t *testing.T) {
	tests := []struct {
		name  string
		segs  []string
		check func(t *testing.T, o *ORU)
	}{
		{"no PID", []string{`OBR|1`, `OBX|1`}, func(t *testing.T, o *ORU) {
			if len(o.Patients) != 1 || o.Patients[0].PID != nil || len(o.Patients[0].Orders[0].Observations) != 1 {
				t.Errorf("got %+v", o.Patients)
			}
		}},
		{"ORC ORC OBR", []string{`PID|1`, `ORC|NW`, `ORC|RE`, `OBR|1`, `OBX|1`}, func(t *testing.T, o *ORU) {
			ords := o.Orders()
			if len(ords) != 2 || ords[0].OBR != nil || ords[1].ORC.Field(1).Value() != "RE" || ords[1].OBR == nil {
				t.Errorf("got %d orders", len(ords))
			}
		}},
		{"OBR after OBX starts a new order", []string{`PID|1`, `OBR|1`, `OBX|1`, `OBR|2`, `OBX|1`}, func(t *testing.T, o *ORU) {
			if len(o.Orders()) != 2 {
				t.Errorf("orders %d", len(o.Orders()))
			}
		}},
		{"NTE before PID", []string{`NTE|1|L|early`, `PID|1`, `OBR|1`}, func(t *testing.T, o *ORU) {
			if len(o.Extra) != 1 || o.Extra[0].Name() != "NTE" {
				t.Errorf("extra %v", segNames(o.Extra))
			}
		}},
		{"DSC ends the message", []string{`PID|1`, `OBR|1`, `OBX|1`, `DSC|cont`, `ZZZ|after`}, func(t *testing.T, o *ORU) {
			if o.DSC == nil || len(o.Extra) != 1 {
				t.Errorf("DSC %v extra %v", o.DSC != nil, segNames(o.Extra))
			}
		}},
		{"unknown segment in patient part", []string{`PID|1`, `IN1|1`, `OBR|1`}, func(t *testing.T, o *ORU) {
			if len(o.Patients[0].Extra) != 1 {
				t.Errorf("patient extra %v", segNames(o.Patients[0].Extra))
			}
		}},
		{"SPM then OBX then new SPM", []string{`PID|1`, `OBR|1`, `OBX|1`, `SPM|1`, `OBX|1`, `SPM|2`, `OBX|1`, `OBX|2`}, func(t *testing.T, o *ORU) {
			ord := o.Orders()[0]
			if len(ord.Observations) != 1 || len(ord.Specimens) != 2 || len(ord.Specimens[1].OBXs) != 2 {
				t.Errorf("obs %d specimens %d", len(ord.Observations), len(ord.Specimens))
			}
		}},
		{"FT1 CTI CTD", []string{`PID|1`, `OBR|1`, `CTD|1`, `OBX|1`, `FT1|1`, `CTI|1`}, func(t *testing.T, o *ORU) {
			ord := o.Orders()[0]
			if ord.CTD == nil || len(ord.FT1s) != 1 || len(ord.CTIs) != 1 {
				t.Errorf("CTD %v FT1 %d CTI %d", ord.CTD != nil, len(ord.FT1s), len(ord.CTIs))
			}
		}},
		{"PD1 NK1 PV2", []string{`PID|1`, `PD1|1`, `NK1|1`, `NK1|2`, `PV1|1`, `PV2|1`, `OBR|1`}, func(t *testing.T, o *ORU) {
			p := o.Patients[0]
			if p.PD1 == nil || len(p.NK1s) != 2 || p.PV2 == nil {
				t.Errorf("PD1 %v NK1 %d PV2 %v", p.PD1 != nil, len(p.NK1s), p.PV2 != nil)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs := append([]string{`MSH|^~\&|A|B|||1||ORU^R01|1|P|2.5.1`}, tt.segs...)
			o, err := mustParse(t, msg(segs...)).ORU()
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
	_, err := mustParse(t, msg(`MSH|^~\&|A|B|||1||ADT^A01|1|P|2.5.1`)).ORU()
	if !errors.Is(err, ErrNotORU) || err.Error() != "not an ORU message: MSH-9 is ADT^A01" {
		t.Errorf("ORU on ADT: %v", err)
	}
}

func TestTypedOthers(t *testing.T) {
	m := mustParse(t, msg(`MSH|^~\&|A|B|||1||ADT^A01|1|P|2.5.1`,
		`PID|||||DOE^J`,
		`DG1|1|I10|C50.911^Malignant neoplasm of right female breast^I10|old desc|20240101|F`,
		"OBR|1"+strings.Repeat("|", 25)+`PARENT&Parent test&LN^1^value|||PLC&NS^FIL&NS2`,
	))
	dg := ReadDG1(m.First("DG1"))
	if dg.Code.Code != "C50.911" || dg.Code.System != "I10" || dg.CodingMethod != "I10" || dg.Description != "old desc" || dg.DiagnosisType != "F" || dg.DateTime != "20240101" {
		t.Errorf("DG1 %+v", dg)
	}
	obr := ReadOBR(m.First("OBR"))
	if obr.ParentPlacer.ID != "PLC" || obr.ParentFiller.NamespaceID != "NS2" {
		t.Errorf("OBR-29 %+v %+v", obr.ParentPlacer, obr.ParentFiller)
	}
	if obr.ParentResult.Identifier.Code != "PARENT" || obr.ParentResult.Identifier.System != "LN" || obr.ParentResult.SubID != "1" || obr.ParentResult.Value != "value" {
		t.Errorf("OBR-26 %+v", obr.ParentResult)
	}
	pid, ok := m.PID()
	if !ok || len(pid.Identifiers) != 0 || pid.Names[0].Family != "DOE" {
		t.Errorf("PID %+v", pid)
	}
	if _, ok := mustParse(t, msg(`MSH|^~\&|A`)).PID(); ok {
		t.Errorf("PID without PID segment")
	}
	// v2.2 style: identifier in PID-2 when PID-3 is empty.
	old := mustParse(t, msg(`MSH|^~\&|A|B|||1||ORU^R01|1|P|2.2`, `PID||EXT123|||X^Y`))
	if p, _ := old.PID(); len(p.Identifiers) != 1 || p.Identifiers[0].ID != "EXT123" {
		t.Errorf("PID-2 fallback %+v", p.Identifiers)
	}
}
