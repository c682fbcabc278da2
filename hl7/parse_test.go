package hl7

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// msg joins segments with CR and ends with CR.
func msg(segs ...string) []byte { return []byte(strings.Join(segs, "\r") + "\r") }

func mustParse(t *testing.T, data []byte) *Message {
	t.Helper()
	m, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func get(t *testing.T, m *Message, path string) string {
	t.Helper()
	v, err := m.Get(path)
	if err != nil {
		t.Fatalf("Get(%q): %v", path, err)
	}
	return v
}

func TestParseDelimiters(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		want   Delimiters
		msh2   string
		checks map[string]string // path -> value
	}{
		{
			name: "standard four",
			data: msg(`MSH|^~\&|APP|FAC|||20240101||ORU^R01|1|P|2.5`, `PID|||A^^^B&C&D~E`),
			want: Delimiters{'|', '^', '~', '\\', '&', 0}, msh2: `^~\&`,
			checks: map[string]string{"MSH-1": "|", "MSH-2": `^~\&`, "PID-3.4.2": "C", "PID-3(2)": "E", "MSH-9.2": "R01"},
		},
		{
			name: "three encoding characters, no subcomponent separator",
			data: msg(`MSH|^~}|APP|FAC|||20240101||BAR^P01|1|P|2.4`, `PID|||A&B^X}F}Y`),
			want: Delimiters{'|', '^', '~', '}', 0, 0}, msh2: `^~}`,
			checks: map[string]string{"PID-3.1": "A&B", "PID-3.2": "X|Y", "PID-3.1.1": "A&B", "PID-3.1.2": ""},
		},
		{
			name: "five encoding characters with v2.7 truncation",
			data: msg(`MSH|^~\&#|APP|FAC|||20240101||RSP^K22^RSP_K21|1|D|2.7`, `QPD|q|1|name\P\sign#`),
			want: Delimiters{'|', '^', '~', '\\', '&', '#'}, msh2: `^~\&#`,
			checks: map[string]string{"MSH-2": `^~\&#`, "QPD-3": "name#sign#", "MSH-9.3": "RSP_K21"},
		},
		{
			name: "custom field separator and encoding characters",
			data: msg(`MSH!$r?@!LIP!LIP!LB!LB!20111207121030!!RSP$SLI$RSP_K11!430102!D!2.5`, `PID!!!1@2$x?F?yr3`),
			want: Delimiters{'!', '$', 'r', '?', '@', 0}, msh2: `$r?@`,
			checks: map[string]string{"MSH-1": "!", "MSH-9.2": "SLI", "PID-3.1.2": "2", "PID-3.2": "x!y", "PID-3(2)": "3"},
		},
		{
			name: "non-default subcomponent brace",
			data: msg(`MSH|^~\}|APP|FAC|||19930502||ACK^|1|P|2.4`, `MSA|AA|X}Y&Z`),
			want: Delimiters{'|', '^', '~', '\\', '}', 0}, msh2: `^~\}`,
			checks: map[string]string{"MSA-2.1.2": "Y&Z", "MSA-2.1.1": "X"},
		},
		{
			name: "doubled escape from a source-code literal read leniently",
			data: msg(`MSH|^~\\&|APP|FAC|||20240101||ADT^A01|1|P|2.6`, `PID|||1^^^A&B`),
			want: Delimiters{'|', '^', '~', '\\', '&', 0}, msh2: `^~\\&`,
			checks: map[string]string{"PID-3.4.2": "B", "MSH-2": `^~\\&`},
		},
		{
			name: "MSH with nothing after the encoding characters",
			data: []byte(`MSH|^~\&`),
			want: DefaultDelimiters, msh2: `^~\&`,
			checks: map[string]string{"MSH-10": "", "MSH-1": "|"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.data)
			if got := m.Delimiters(); got != tt.want {
				t.Errorf("Delimiters = %+q, want %+q", got, tt.want)
			}
			if got := m.Segments()[0].Field(2).Raw(); got != tt.msh2 {
				t.Errorf("MSH-2 raw = %q, want %q", got, tt.msh2)
			}
			for p, want := range tt.checks {
				if got := get(t, m, p); got != want {
					t.Errorf("Get(%q) = %q, want %q", p, got, want)
				}
			}
			if !bytes.Equal(m.Encode(), tt.data) {
				t.Errorf("Encode changed the bytes")
			}
		})
	}
}

func TestParseTerminators(t *testing.T) {
	segs := []string{`MSH|^~\&|A|B|||20240101||ORU^R01|T1|P|2.5.1`, `PID|||1`, `OBR|1`, `OBX|1|ST|X||v`}
	tests := []struct {
		name string
		data string
	}{
		{"CR", strings.Join(segs, "\r") + "\r"},
		{"CR without final CR", strings.Join(segs, "\r")},
		{"LF", strings.Join(segs, "\n") + "\n"},
		{"CRLF", strings.Join(segs, "\r\n") + "\r\n"},
		{"mixed", segs[0] + "\r" + segs[1] + "\n" + segs[2] + "\r\n" + segs[3] + "\n"},
		{"CR with final LF", strings.Join(segs, "\r") + "\r\n"},
		{"blank lines and trailing spaces between", "\r\n" + segs[0] + "\r\r\n" + segs[1] + "\n  \n" + segs[2] + "\r\t\r" + segs[3] + "\r\n\r\n"},
		{"UTF-8 BOM", "\xEF\xBB\xBF" + strings.Join(segs, "\r")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, []byte(tt.data))
			var names []string
			for _, s := range m.Segments() {
				names = append(names, s.Name())
			}
			if got := strings.Join(names, ","); got != "MSH,PID,OBR,OBX" {
				t.Fatalf("segments = %s", got)
			}
			for i, s := range m.Segments() {
				if s.Raw() != segs[i] {
					t.Errorf("segment %d raw = %q, want %q", i, s.Raw(), segs[i])
				}
			}
			if got := get(t, m, "OBX-5"); got != "v" {
				t.Errorf("OBX-5 = %q", got)
			}
			if string(m.Encode()) != tt.data {
				t.Errorf("Encode is not byte-for-byte")
			}
			if m.ControlID() != "T1" {
				t.Errorf("ControlID = %q", m.ControlID())
			}
		})
	}
}

func TestFieldAccess(t *testing.T) {
	m := mustParse(t, msg(
		`MSH|^~\&|SEND^1.2.3^ISO|FAC|RECV|RFAC|20240101120000||ORU^R01^ORU_R01|CTL\F\1|P|2.5.1`,
		`PID|1||ID1^^^AUTH&1.2.840&ISO^MR~ID2^^^OTHER^PI||DOE^JANE^""||""|F|||a\S\b^c\T\d&e\R\f`,
		`OBX|1|FT|CODE^Text^LN||line1\.br\line2~rep2||||||F|`,
		`OBX|2|ST|C2||  spaced  `,
		`ZZZ|custom|x^y`,
	))
	tests := []struct{ path, want string }{
		{"MSH-1", "|"},
		{"MSH-2", `^~\&`},
		{"MSH-3", "SEND^1.2.3^ISO"},
		{"MSH-3.2", "1.2.3"},
		{"MSH-10", "CTL|1"},
		{"MSH-12", "2.5.1"},
		{"PID-1", "1"},
		{"PID-2", ""},
		{"PID-3", "ID1^^^AUTH&1.2.840&ISO^MR"},
		{"PID-3.1", "ID1"},
		{"PID-3.4", "AUTH&1.2.840&ISO"},
		{"PID-3.4.1", "AUTH"},
		{"PID-3.4.2", "1.2.840"},
		{"PID-3.4.3", "ISO"},
		{"PID-3.4.4", ""},
		{"PID-3.5", "MR"},
		{"PID-3(1).5", "MR"},
		{"PID-3(2).1", "ID2"},
		{"PID-3(2).4", "OTHER"},
		{"PID-3(2).5", "PI"},
		{"PID-3(3)", ""},
		{"PID-5.3", ""}, // "" null reads as empty
		{"PID-7", ""},
		{"PID-8", "F"},
		{"PID-11.1", "a^b"},
		{"PID-11.2", "c&d&e~f"},
		{"PID-11.2.1", "c&d"},
		{"PID-11.2.2", "e~f"},
		{"PID-99", ""},
		{"OBX-5", "line1\nline2"},
		{"OBX-5(2)", "rep2"},
		{"OBX(2)-5", "  spaced  "},
		{"OBX(2)-1", "2"},
		{"OBX-11", "F"},
		{"OBX-12", ""},
		{"ZZZ-2.2", "y"},
		{"PID.3.1", "ID1"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := get(t, m, tt.path); got != tt.want {
				t.Errorf("Get(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}

	pid := m.First("PID")
	if !pid.Field(7).IsNull() || pid.Field(8).IsNull() {
		t.Errorf("IsNull: PID-7 %v PID-8 %v", pid.Field(7).IsNull(), pid.Field(8).IsNull())
	}
	if !pid.Field(5).Rep(1).IsNull() == pid.Field(5).IsNull() {
		t.Errorf("a composite with a null component is not itself null")
	}
	if got := pid.Field(3).Reps(); got != 2 {
		t.Errorf("PID-3 Reps = %d", got)
	}
	if got := pid.Field(3).Components(); got != 5 {
		t.Errorf("PID-3 Components = %d", got)
	}
	if got := pid.Field(3).Subcomponents(4); got != 3 {
		t.Errorf("PID-3.4 Subcomponents = %d", got)
	}
	if got := pid.Field(2).Reps(); got != 0 {
		t.Errorf("empty field Reps = %d", got)
	}
	if got := pid.Field(3).Raw(); got != `ID1^^^AUTH&1.2.840&ISO^MR~ID2^^^OTHER^PI` {
		t.Errorf("Raw = %q", got)
	}
	if got := pid.Field(3).Rep(2).Raw(); got != `ID2^^^OTHER^PI` {
		t.Errorf("Rep(2).Raw = %q", got)
	}
	if got := m.First("OBX").Field(5).Values(); len(got) != 2 || got[0] != "line1\nline2" || got[1] != "rep2" {
		t.Errorf("Values = %q", got)
	}
	if got := pid.NumFields(); got != 11 {
		t.Errorf("PID NumFields = %d", got)
	}
	if got := m.First("MSH").NumFields(); got != 12 {
		t.Errorf("MSH NumFields = %d", got)
	}
	if got := m.First("OBX").NumFields(); got != 12 { // trailing empty field counts
		t.Errorf("OBX NumFields = %d", got)
	}
	if got := pid.Field(0).Value(); got != "PID" {
		t.Errorf("Field(0) = %q", got)
	}
	if got := m.First("MSH").Field(2).Component(2); got != "" {
		t.Errorf("MSH-2 is not split: Component(2) = %q", got)
	}
	nf := NewField(`a^b\S\c~d`, DefaultDelimiters)
	if nf.Component(2) != "b^c" || nf.Rep(2).Value() != "d" || nf.Reps() != 2 {
		t.Errorf("NewField: %q %q %d", nf.Component(2), nf.Rep(2).Value(), nf.Reps())
	}
}

func TestSegmentNavigation(t *testing.T) {
	m := mustParse(t, msg(`MSH|^~\&|A|B|||20240101||ORU^R01|1|P|2.5`, `PID|1`, `OBX|1`, `NTE|1`, `OBX|2`, `NTE|2`, `OBX|3`))
	if m.NumSegments() != 7 {
		t.Fatalf("NumSegments = %d", m.NumSegments())
	}
	obx := m.All("OBX")
	if len(obx) != 3 {
		t.Fatalf("All(OBX) = %d", len(obx))
	}
	for i, s := range obx {
		if s.Occurrence() != i+1 || s.Field(1).Value() != string(rune('1'+i)) {
			t.Errorf("OBX %d: occurrence %d set ID %q", i, s.Occurrence(), s.Field(1).Value())
		}
	}
	if obx[1].Index() != 4 || m.Nth("NTE", 2).Index() != 5 || m.Segment(6) != obx[2] {
		t.Errorf("Index/Nth/Segment disagree")
	}
	if m.First("PV1") != nil || m.All("PV1") != nil || m.Nth("OBX", 4) != nil || m.Segment(7) != nil || m.Segment(-1) != nil {
		t.Errorf("absent segments must be nil")
	}
	if _, err := m.Get("PV1-3"); !errors.Is(err, ErrSegmentNotFound) || err.Error() != "PV1-3: segment not found: no PV1 segment" {
		t.Errorf("Get absent segment: %v", err)
	}
	if _, err := m.Get("OBX(4)-3"); err == nil || err.Error() != "OBX(4)-3: segment not found: no OBX occurrence 4" {
		t.Errorf("Get absent occurrence: %v", err)
	}
	all, err := m.GetAll("OBX-1")
	if err != nil || strings.Join(all, ",") != "1,2,3" {
		t.Errorf("GetAll = %q, %v", all, err)
	}
	if all, _ := m.GetAll("PV1-1"); len(all) != 0 {
		t.Errorf("GetAll absent = %q", all)
	}
}

func TestParsePath(t *testing.T) {
	good := []struct {
		in   string
		want Path
	}{
		{"PID-3", Path{Segment: "PID", Field: 3}},
		{"PID-3.1", Path{Segment: "PID", Field: 3, Component: 1}},
		{"PID-3.4.1", Path{Segment: "PID", Field: 3, Component: 4, Sub: 1}},
		{"PID-3(2).1", Path{Segment: "PID", Field: 3, Repetition: 2, Component: 1}},
		{"OBX(12)-5(3).2.1", Path{Segment: "OBX", Occurrence: 12, Field: 5, Repetition: 3, Component: 2, Sub: 1}},
		{"ZB1-1", Path{Segment: "ZB1", Field: 1}},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			if err != nil || p != tt.want {
				t.Fatalf("ParsePath = %+v, %v", p, err)
			}
			if p.String() != tt.in && tt.in != "PID.3.1" {
				t.Errorf("String = %q", p.String())
			}
		})
	}
	bad := []struct{ in, err string }{
		{"", `invalid field path "": want SEG-F[(R)][.C[.S]], e.g. PID-3.1`},
		{"pid-3", `invalid field path "pid-3": want SEG-F[(R)][.C[.S]], e.g. PID-3.1`},
		{"PID-0", `invalid field path "PID-0": field number must be a positive integer`},
		{"PID-x", `invalid field path "PID-x": field number must be a positive integer`},
		{"PID_3", `invalid field path "PID_3": want '-' and a field number after the segment ID`},
		{"PID-3(0)", `invalid field path "PID-3(0)": repetition must be (n) with n >= 1`},
		{"PID-3(2", `invalid field path "PID-3(2": repetition must be (n) with n >= 1`},
		{"PID-3.", `invalid field path "PID-3.": component number must be a positive integer`},
		{"PID-3.1.", `invalid field path "PID-3.1.": subcomponent number must be a positive integer`},
		{"PID-3.1.1.1", `invalid field path "PID-3.1.1.1": unexpected ".1"`},
		{"PID(0)-3", `invalid field path "PID(0)-3": segment occurrence must be (n) with n >= 1`},
		{"PID-3 ", `invalid field path "PID-3 ": unexpected " "`},
	}
	for _, tt := range bad {
		t.Run("bad "+tt.in, func(t *testing.T) {
			_, err := ParsePath(tt.in)
			if !errors.Is(err, ErrBadPath) || err.Error() != tt.err {
				t.Fatalf("err = %v, want %s", err, tt.err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		strict bool
		is     error
		err    string
	}{
		{"empty", "", false, ErrEmpty, "hl7: empty message"},
		{"only blank lines", "\r\n \r\n", false, ErrEmpty, "hl7: empty message"},
		{"no MSH", "PID|1|2\r", false, ErrNoMSH, `hl7: segment (line 1, byte 0): message does not start with MSH: starts with "PID|1|2\r"`},
		{"garbage", "\x0bhello", false, ErrNoMSH, `hl7: segment (line 1, byte 0): message does not start with MSH: starts with "\vhello"`},
		{"UTF-16", "\xff\xfeM\x00S\x00H\x00", false, ErrUnsupportedCharset, `hl7: segment (line 1, byte 0): unsupported character set: the input is UTF-16; send UTF-8 (MSH-18 UNICODE UTF-8) or an 8-bit character set`},
		{"batch header", "FHS|^~\\&\rMSH|^~\\&\r", false, ErrBatch, `hl7: segment FHS (line 1, byte 0): input is a batch or file, not a single message: split the input with SplitMessages`},
		{"two messages", "MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\r", false, ErrMultipleMessages, `hl7: segment MSH (line 3, byte 17): more than one message in input: split the input with SplitMessages`},
		{"BTS inside", "MSH|^~\\&|A\rBTS|1\r", false, ErrBatch, `hl7: segment BTS (line 2, byte 11): input is a batch or file, not a single message: split the input with SplitMessages`},
		{"duplicate encoding characters", "MSH|^&&^|A\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 6) field 2: invalid delimiters in MSH-1/MSH-2: "^&&^" repeats '&' (encoding characters 2 and 3)`},
		{"encoding character equal to field separator is impossible; repeated component", "MSH|^~\\^|A\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 7) field 2: invalid delimiters in MSH-1/MSH-2: "^~\\^" repeats '^' (encoding characters 1 and 4)`},
		{"too many encoding characters", "MSH|^~\\&#!|A\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 4) field 2: invalid delimiters in MSH-1/MSH-2: "^~\\&#!" has 6 encoding characters; at most 5 (component, repetition, escape, subcomponent, truncation)`},
		{"no encoding characters", "MSH||A\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 4) field 2: invalid delimiters in MSH-1/MSH-2: no encoding characters`},
		{"no field separator", "MSH\rPID|1\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 3) field 1: invalid delimiters in MSH-1/MSH-2: no field separator after MSH`},
		{"control character field separator", "MSH\x01^~\\&\x01\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 3) field 1: invalid delimiters in MSH-1/MSH-2: field separator '\x01' is not a printable ASCII character`},
		{"non-ASCII encoding character", "MSH|^\xff\\&|\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 5) field 2: invalid delimiters in MSH-1/MSH-2: encoding character 2 of "^\xff\\&" is '\xff', not a printable ASCII character`},
		{"letter field separator", "MSHX^~\\&X\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 3) field 1: invalid delimiters in MSH-1/MSH-2: field separator 'X' is a letter, digit or space`},
		{"space in encoding characters", "MSH|^ \\&|\r", false, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 5) field 2: invalid delimiters in MSH-1/MSH-2: encoding character 2 of "^ \\&" is ' ', not a printable ASCII character`},
		{"doubled escape is an error when strict", "MSH|^~\\\\&|A|B|||1||ADT^A01|1|P|2.5\r", true, ErrBadDelimiters, `hl7: segment MSH (line 1, byte 7) field 2: invalid delimiters in MSH-1/MSH-2: "^~\\\\&" repeats '\\' (encoding characters 3 and 4)`},
		{"joined segments", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.3||| EVN|A01\r", false, ErrJoinedSegments, `hl7: segment MSH (line 1, byte 36) field 15: segments joined without a segment terminator: field 15 is " EVN", the start of a EVN segment`},
		{"OBX run into OBR", "MSH|^~\\&|A\rOBR|1|x| OBX|1|TX\r", false, ErrJoinedSegments, `hl7: segment OBR (line 2, byte 19) field 3: segments joined without a segment terminator: field 3 is " OBX", the start of a OBX segment`},
		{"bad segment ID when strict", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|1|long\rwrapped text\r", true, ErrBadSegmentID, `hl7: segment (line 3, byte 45): invalid segment ID: line starts with "wrapped text" (a segment starts with a 3-character ID of A-Z/0-9 followed by '|')`},
		{"lower-case segment when strict", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rpid|1\r", true, ErrBadSegmentID, `hl7: segment (line 2, byte 34): invalid segment ID: line starts with "pid|1" (a segment starts with a 3-character ID of A-Z/0-9 followed by '|')`},
		{"strict requires MSH-10", "MSH|^~\\&|A|B|||1||ADT^A01||P|2.5\r", true, ErrMissingField, `hl7: segment MSH (line 1, byte 0) field 10: required field missing: MSH-10 is required`},
		{"strict requires MSH-12", "MSH|^~\\&|A|B|||1||ADT^A01|1|P\r", true, ErrMissingField, `hl7: segment MSH (line 1, byte 0) field 12: required field missing: MSH-12 is required`},
		{"unknown charset with non-ASCII bytes", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||KLINGON\rPID|||\xe9\r", false, ErrUnsupportedCharset, `hl7: segment MSH (line 1, byte 0) field 18: unsupported character set: MSH-18 "KLINGON"`},
		{"unknown charset when strict", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||KLINGON\r", true, ErrUnsupportedCharset, `hl7: segment MSH (line 1, byte 0) field 18: unsupported character set: MSH-18 "KLINGON"`},
		{"invalid UTF-8 when strict", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rPID|||\xe9\r", true, ErrCharsetMismatch, `hl7: segment MSH (line 1, byte 0) field 18: bytes do not match the declared character set: MSH-18 is "UNICODE UTF-8" but the message has bytes outside it`},
		{"non-ASCII under ASCII when strict", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||ASCII\rPID|||\xc3\xa9\r", true, ErrCharsetMismatch, `hl7: segment MSH (line 1, byte 0) field 18: bytes do not match the declared character set: MSH-18 is "ASCII" but the message has bytes outside it`},
		{"no MSH-18 and not UTF-8 when strict", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|||\xe9\r", true, ErrCharsetMismatch, `hl7: segment MSH (line 1, byte 0) field 18: bytes do not match the declared character set: no MSH-18 and the bytes are not valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseWithOptions([]byte(tt.data), ParseOptions{Strict: tt.strict})
			if err == nil {
				t.Fatalf("no error; %d segments", m.NumSegments())
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("not a *ParseError: %T", err)
			}
			if err.Error() != tt.err {
				t.Errorf("error\n got %s\nwant %s", err.Error(), tt.err)
			}
		})
	}
}

func TestParseLenient(t *testing.T) {
	t.Run("wrapped line continues the segment", func(t *testing.T) {
		data := "MSH|^~\\&|A|B|||1||ORU^R01|1|P|2.5\nOBX|1|TX|C||first part of a long\nline of text||||||F\nOBX|2|ST|C||x\n"
		m := mustParse(t, []byte(data))
		if m.NumSegments() != 3 {
			t.Fatalf("segments = %d", m.NumSegments())
		}
		if got := get(t, m, "OBX-5"); got != "first part of a long\nline of text" {
			t.Errorf("OBX-5 = %q", got)
		}
		if got := get(t, m, "OBX-11"); got != "F" {
			t.Errorf("OBX-11 after the wrap = %q", got)
		}
		if got := get(t, m, "OBX(2)-5"); got != "x" {
			t.Errorf("second OBX-5 = %q", got)
		}
		if string(m.Encode()) != data {
			t.Errorf("Encode not byte-for-byte")
		}
	})
	t.Run("MSH-18 on a wrapped header line", func(t *testing.T) {
		data := "MSH|^~\\&|A|B|||1||ADT^A01|1|P|\n2.5||||||8859/1\nPID|||1||M\xfcller\n"
		m := mustParse(t, []byte(data))
		if m.Charset() != "8859/1" || get(t, m, "PID-5") != "Müller" || get(t, m, "MSH-12") != "\n2.5" {
			t.Errorf("charset %q PID-5 %q MSH-12 %q", m.Charset(), get(t, m, "PID-5"), get(t, m, "MSH-12"))
		}
		ack := BuildACKWith(m, fixedACK, AA)
		if strings.ContainsAny(strings.TrimSuffix(string(ack), "\r"), "\n") || !strings.Contains(string(ack), "|P|\\X0A\\2.5||||||8859/1\r") {
			t.Errorf("ACK must escape the wrapped line break: %q", ack)
		}
	})
	t.Run("unescaped delimiters in text are kept", func(t *testing.T) {
		m := mustParse(t, msg(`MSH|^~\&|A|B|||1||ORU^R01|1|P|2.5`, `OBX|1|TX|C||C:\temp\file & more`))
		if got := get(t, m, "OBX-5"); got != `C:\temp\file & more` {
			t.Errorf("OBX-5 = %q", got)
		}
	})
	t.Run("unknown charset with only ASCII bytes", func(t *testing.T) {
		m := mustParse(t, msg(`MSH|^~\&|A|B|||1||ORU^R01|1|P|2.4||||||x~y`, `PID|1`))
		if m.Charset() != "x" || m.MSH().CharacterSets[1] != "y" {
			t.Errorf("charset %q, MSH-18 %q", m.Charset(), m.MSH().CharacterSets)
		}
	})
	t.Run("Z-segment and segment with name only", func(t *testing.T) {
		m := mustParse(t, msg(`MSH|^~\&|A|B|||1||ORU^R01|1|P|2.5`, `ZPI|1|x`, `DSC`))
		if m.First("ZPI").Field(2).Value() != "x" || m.First("DSC").NumFields() != 0 {
			t.Errorf("ZPI/DSC not read")
		}
	})
	t.Run("input is copied", func(t *testing.T) {
		data := msg(`MSH|^~\&|A|B|||1||ORU^R01|ORIG|P|2.5`)
		m := mustParse(t, data)
		copy(data[bytes.Index(data, []byte("ORIG")):], "XXXX")
		if m.ControlID() != "ORIG" {
			t.Errorf("message changed with the caller's buffer: %q", m.ControlID())
		}
		enc := m.Encode()
		enc[0] = 'X'
		if m.Raw()[0] != 'M' {
			t.Errorf("Encode does not return a copy")
		}
	})
}

func TestNotes(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"clean message", "MSH|^~\\&|A|B|||1||ORU^R01|1|P|2.5\rPID|1\r", nil},
		{"wrapped line", "MSH|^~\\&|A|B|||1||ORU^R01|1|P|2.5\nOBX|1|TX|C||a\nb\nc||F\n", []string{
			"line 3 (OBX): a line that does not start a segment was read as the continuation of the segment before it (a wrapped field)",
			"line 4 (OBX): a line that does not start a segment was read as the continuation of the segment before it (a wrapped field)"}},
		{"doubled escape", "MSH|^~\\\\&|A\r", []string{`line 1 (MSH): MSH-2 "^~\\&" doubles the escape character; read as "^~\&"`}},
		{"unknown charset", "MSH|^~\\&|A|B|||1||ORU^R01|1|P|2.5||||||x\r", []string{`line 1 (MSH): MSH-18 "x" is not a known character set; the message is 7-bit ASCII`}},
		{"ASCII with UTF-8", "MSH|^~\\&|A|B|||1||ORU^R01|1|P|2.5||||||ASCII\rPID|||\xc3\xa9\r", []string{`line 1 (MSH): MSH-18 is "ASCII" but the message has UTF-8 characters; read as UTF-8`}},
		{"fallback", "MSH|^~\\&|A|B|||1||ORU^R01|1|P|2.5\rPID|||\xe9\r", []string{`line 1 (MSH): no MSH-18 and the bytes are not valid UTF-8; decoded as 8859/1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, []byte(tt.data))
			var got []string
			for _, n := range m.Notes() {
				got = append(got, n.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("notes\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	if (Note{Segment: "PID", Text: "x"}).String() != "PID: x" || (Note{Text: "y"}).String() != "y" {
		t.Errorf("Note.String")
	}
}

func TestCharsets(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		opts     ParseOptions
		charset  string
		pid5     string
		wantFail bool
	}{
		{"8859/1", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||8859/1\rPID|||1||M\xfcller^J\xf6rg\r", ParseOptions{}, "8859/1", "Müller^Jörg", false},
		{"8859/15 euro", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||8859/15\rPID|||1||\xa4uro\r", ParseOptions{}, "8859/15", "€uro", false},
		{"8859/2", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||8859/2\rPID|||1||\xa3\xf3d\xbc\r", ParseOptions{}, "8859/2", "Łódź", false},
		{"8859/5 Cyrillic", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||8859/5\rPID|||1||\xbf\xd5\xe2\xe0\r", ParseOptions{}, "8859/5", "Петр", false},
		{"8859/7 Greek", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||8859/7\rPID|||1||\xe1\xe2\r", ParseOptions{}, "8859/7", "αβ", false},
		{"UNICODE UTF-8", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rPID|||1||Ren\xc3\xa9e\r", ParseOptions{}, "UNICODE UTF-8", "Renée", false},
		{"no MSH-18, UTF-8 bytes", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|||1||Ren\xc3\xa9e\r", ParseOptions{}, "UNICODE UTF-8", "Renée", false},
		{"no MSH-18, ASCII", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|||1||Rene\r", ParseOptions{}, "ASCII", "Rene", false},
		{"no MSH-18, Latin-1 bytes use the default fallback", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|||1||Ren\xe9e\r", ParseOptions{}, "8859/1", "Renée", false},
		{"declared UTF-8 but Latin-1 bytes", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rPID|||1||Ren\xe9e\r", ParseOptions{}, "8859/1", "Renée", false},
		{"declared ASCII but UTF-8 bytes", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||ASCII\rPID|||1||Ren\xc3\xa9e\r", ParseOptions{}, "UNICODE UTF-8", "Renée", false},
		{"configured fallback Windows-1252", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|||1||\x80\x96\r", ParseOptions{FallbackCharset: "WINDOWS-1252"}, "WINDOWS-1252", "€–", false},
		{"unknown charset with a fallback", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||EBCDIC\rPID|||1||\xe9\r", ParseOptions{FallbackCharset: "8859/1"}, "8859/1", "é", false},
		{"GB 18030", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||GB 18030-2000\rPID|||1||\xd6\xd0\r", ParseOptions{}, "GB 18030-2000", "中", false},
		{"BIG-5", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||BIG-5\rPID|||1||\xa4\xa4\r", ParseOptions{}, "BIG-5", "中", false},
		{"KS X 1001", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||KS X 1001\rPID|||1||\xc7\xd1\r", ParseOptions{}, "KS X 1001", "한", false},
		{"IANA spelling", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5||||||ISO-8859-1\rPID|||1||\xe9\r", ParseOptions{}, "8859/1", "é", false},
		{"unsupported fallback", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|||1||\xe9\r", ParseOptions{FallbackCharset: "NOPE"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseWithOptions([]byte(tt.data), tt.opts)
			if tt.wantFail {
				if !errors.Is(err, ErrUnsupportedCharset) {
					t.Fatalf("err = %v, want ErrUnsupportedCharset", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Charset() != tt.charset {
				t.Errorf("Charset = %q, want %q", m.Charset(), tt.charset)
			}
			if got := get(t, m, "PID-5"); got != tt.pid5 {
				t.Errorf("PID-5 = %q, want %q", got, tt.pid5)
			}
			if string(m.Encode()) != tt.data {
				t.Errorf("Encode is not the original bytes")
			}
		})
	}
	if !IsSupportedCharset("8859/9") || !IsSupportedCharset("") || IsSupportedCharset("UNICODE UTF-16") {
		t.Errorf("IsSupportedCharset")
	}
}
