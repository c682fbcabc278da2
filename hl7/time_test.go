package hl7

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	tests := []struct {
		in   string
		loc  *time.Location
		want time.Time
		prec Precision
	}{
		{"2024", nil, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), PrecisionYear},
		{"202403", nil, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), PrecisionMonth},
		{"20240305", nil, time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC), PrecisionDay},
		{"2024030514", nil, time.Date(2024, 3, 5, 14, 0, 0, 0, time.UTC), PrecisionHour},
		{"202403051430", nil, time.Date(2024, 3, 5, 14, 30, 0, 0, time.UTC), PrecisionMinute},
		{"20240305143012", nil, time.Date(2024, 3, 5, 14, 30, 12, 0, time.UTC), PrecisionSecond},
		{"20240305143012.1", nil, time.Date(2024, 3, 5, 14, 30, 12, 100_000_000, time.UTC), PrecisionFraction},
		{"20240305143012.1234", nil, time.Date(2024, 3, 5, 14, 30, 12, 123_400_000, time.UTC), PrecisionFraction},
		{"20240305143012-0500", nil, time.Date(2024, 3, 5, 19, 30, 12, 0, time.UTC), PrecisionSecond},
		{"20240305143012.5+0130", nil, time.Date(2024, 3, 5, 13, 0, 12, 500_000_000, time.UTC), PrecisionFraction},
		{"202403051430+0000", nil, time.Date(2024, 3, 5, 14, 30, 0, 0, time.UTC), PrecisionMinute},
		{"20240305143012", ny, time.Date(2024, 3, 5, 14, 30, 12, 0, ny), PrecisionSecond},
		{"20240305143012+0100", ny, time.Date(2024, 3, 5, 13, 30, 12, 0, time.UTC), PrecisionSecond},
		{" 20240305 ", nil, time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC), PrecisionDay},
		{"20240305^D", nil, time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC), PrecisionDay},
		{"20240229", nil, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), PrecisionDay},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, prec, err := ParseTimePrecision(tt.in, tt.loc)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) || prec != tt.prec {
				t.Errorf("got %v (%s), want %v (%s)", got, prec, tt.want, tt.prec)
			}
			if tt.loc == ny && !strings.ContainsAny(tt.in, "+-") && got.Location() != ny {
				t.Errorf("value without offset must be in loc, got %v", got.Location())
			}
		})
	}
	if _, off := mustTime(t, "20240305143012-0500").Zone(); off != -5*3600 {
		t.Errorf("offset kept: %d", off)
	}

	bad := []struct{ in, err string }{
		{"", `invalid HL7 date/time "": empty`},
		{"2024030", `invalid HL7 date/time "2024030": want 4, 6, 8, 10, 12 or 14 digits`},
		{"20241305", `invalid HL7 date/time "20241305": month out of range`},
		{"20240230", `invalid HL7 date/time "20240230": day out of range`},
		{"20230229", `invalid HL7 date/time "20230229": day out of range`},
		{"2024030525", `invalid HL7 date/time "2024030525": time of day out of range`},
		{"202403051260", `invalid HL7 date/time "202403051260": time of day out of range`},
		{"2024-03-05", `invalid HL7 date/time "2024-03-05": UTC offset must be +HHMM or -HHMM`},
		{"20240305+05", `invalid HL7 date/time "20240305+05": UTC offset must be +HHMM or -HHMM`},
		{"20240305+2500", `invalid HL7 date/time "20240305+2500": UTC offset out of range`},
		{"2024030514.5", `invalid HL7 date/time "2024030514.5": fraction of a second needs YYYYMMDDHHMMSS before it`},
		{"20240305143012.", `invalid HL7 date/time "20240305143012.": fraction of a second must be 1 to 9 digits`},
		{"2024MAR05", `invalid HL7 date/time "2024MAR05": not digits`},
	}
	for _, tt := range bad {
		t.Run("bad "+tt.in, func(t *testing.T) {
			_, err := ParseTime(tt.in, nil)
			if !errors.Is(err, ErrBadTime) || err.Error() != tt.err {
				t.Errorf("err = %v, want %s", err, tt.err)
			}
		})
	}
	if FormatTime(time.Date(2024, 3, 5, 14, 30, 12, 0, time.FixedZone("", -5*3600))) != "20240305143012-0500" {
		t.Errorf("FormatTime")
	}
	if PrecisionDay.String() != "day" || Precision(0).String() != "unknown" {
		t.Errorf("Precision.String")
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := ParseTime(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDescribe(t *testing.T) {
	m := mustParse(t, msg(`MSH|^~\&|A|B|||20240101||ORU^R01^ORU_R01|C1|P|2.5.1`,
		`PID|1||ID1^^^AUTH&1.2&ISO^MR~ID2||""`,
		`OBX|1|TX|C^Text^LN||one\.br\two`,
		`ZXY|custom`))
	tree := Describe(m)
	if tree.ControlID != "C1" || tree.MessageType != "ORU^R01^ORU_R01" || tree.Version != "2.5.1" || tree.Charset != "ASCII" || len(tree.Segments) != 4 {
		t.Fatalf("tree header %+v", tree)
	}
	pid := tree.Segments[1]
	if pid.Name != "PID" || pid.Index != 1 || pid.Occurrence != 1 || len(pid.Fields) != 4 {
		t.Fatalf("PID node %+v", pid)
	}
	f3 := pid.Fields[1]
	if f3.Number != 3 || f3.Repetition != 1 || f3.Name != "Patient Identifier List" || len(f3.Components) != 3 ||
		f3.Components[1].Number != 4 || strings.Join(f3.Components[1].Subcomponents, ",") != "AUTH,1.2,ISO" {
		t.Errorf("PID-3 node %+v", f3)
	}
	if pid.Fields[3].Number != 5 || !pid.Fields[3].Null || pid.Fields[3].Value != "" {
		t.Errorf("PID-5 null node %+v", pid.Fields[3])
	}
	if tree.Segments[3].Fields[0].Name != "" {
		t.Errorf("Z-segment fields have no name")
	}
	text := tree.String()
	for _, want := range []string{
		"message ORU^R01^ORU_R01 (control ID C1, version 2.5.1, ASCII)\n",
		"  MSH-1 Field Separator: |\n",
		"  MSH-2 Encoding Characters: ^~\\&\n",
		"  PID-3(1) Patient Identifier List: ID1^^^AUTH&1.2&ISO^MR\n",
		"    .4 AUTH&1.2&ISO\n",
		"      .4.2 1.2\n",
		"  PID-5 Patient Name: \"\" (null)\n",
		"  OBX-5 Observation Value: one\\ntwo\n",
		"ZXY (1)\n  ZXY-1: custom\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("tree text lacks %q:\n%s", want, text)
		}
	}
	js, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `{"number":5,"name":"Observation Value","value":"one\ntwo"}`) {
		t.Errorf("JSON: %s", js)
	}
	if FieldName("OBX", 26) != "Patient Results Release Category" || FieldName("OBR", 32) != "Principal Result Interpreter" ||
		FieldName("PID", 0) != "" || FieldName("ZZZ", 1) != "" || FieldName("MSH", 18) != "Character Set" {
		t.Errorf("FieldName table")
	}
	for _, seg := range []string{"MSH", "PID", "PV1", "ORC", "OBR", "OBX", "NTE", "SPM", "DG1", "ERR", "MSA", "EVN"} {
		if FieldName(seg, 1) == "" {
			t.Errorf("no names for %s", seg)
		}
	}
}
