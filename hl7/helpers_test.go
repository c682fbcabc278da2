package hl7

import "testing"

func TestSmallHelpers(t *testing.T) {
	m := mustParse(t, msg(`MSH|^~\&|A|B|||1||ORU^R01|1|P|2.5`, `OBX|1|ST|X||v`, `NTE|1||note`))
	obx := m.First("OBX")
	if obx.Offset() != len(`MSH|^~\&|A|B|||1||ORU^R01|1|P|2.5`)+1 {
		t.Errorf("Offset %d", obx.Offset())
	}
	fs := obx.Fields()
	if len(fs) != 5 || fs[4].Value() != "v" || fs[0].Value() != "1" {
		t.Errorf("Fields %v", fs)
	}
	o := m.Group()
	ord := o.Orders()[0]
	if ord.Request().Seg != nil || len(ord.Notes()) != 0 || len(ord.Observations[0].Notes()) != 1 {
		t.Errorf("order group without OBR")
	}
	p := &o.Patients[0]
	if p.Patient().Seg != nil || p.Visit().Seg != nil {
		t.Errorf("patient group without PID/PV1")
	}
	if !(HD{}).IsZero() || (HD{UniversalID: "1.2"}).String() != "1.2" || (HD{NamespaceID: "N", UniversalID: "1.2"}).String() != "N" {
		t.Errorf("HD helpers")
	}
	for _, tt := range []struct {
		c    CWE
		want string
	}{
		{CWE{Code: "C", Text: "T"}, "T"},
		{CWE{Code: "C", OriginalText: "O"}, "O"},
		{CWE{Code: "C", AltText: "A"}, "A"},
		{CWE{Code: "C"}, "C"},
		{CWE{AltCode: "AC"}, "AC"},
		{CWE{}, ""},
	} {
		if got := tt.c.BestText(); got != tt.want {
			t.Errorf("BestText(%+v) = %q", tt.c, got)
		}
	}
	if !(EI{}).IsZero() || !(XAD{}).IsZero() || !TS("").IsZero() || !(XCN{}).IsZero() || !(CWE{}).IsZero() {
		t.Errorf("IsZero helpers")
	}
	for p, want := range map[Precision]string{PrecisionYear: "year", PrecisionMonth: "month", PrecisionHour: "hour",
		PrecisionMinute: "minute", PrecisionSecond: "second", PrecisionFraction: "fraction"} {
		if p.String() != want {
			t.Errorf("%d: %s", p, p.String())
		}
	}
	if (MessageType{Code: "ACK"}).String() != "ACK" || (MessageType{"ORU", "R01", ""}).String() != "ORU^R01" {
		t.Errorf("MessageType.String")
	}
	if DefaultDelimiters.EncodingCharacters() != `^~\&` || (Delimiters{'|', '^', '~', '\\', 0, 0}).EncodingCharacters() != `^~\` {
		t.Errorf("EncodingCharacters")
	}
	lit := m.First("MSH").Field(2)
	if lit.Reps() != 1 || lit.Rep(2).Value() != "" || lit.Components() != 1 || lit.Sub(1, 1) != `^~\&` || lit.Sub(1, 2) != "" || lit.Subcomponents(1) != 1 {
		t.Errorf("literal MSH-2 helpers")
	}
}
