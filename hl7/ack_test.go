package hl7

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var fixedACK = ACKOptions{Now: func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) }, ControlID: "ACK1"}

func lines(b []byte) string { return strings.ReplaceAll(string(b), "\r", "\n") }

func TestBuildACK(t *testing.T) {
	tests := []struct {
		name string
		orig string
		code AckCode
		errs []ErrorDetail
		want string
	}{
		{
			name: "v2.5.1 original mode accept",
			orig: `MSH|^~\&|LAB^1.2^ISO|LABFAC|PORTAL|HOSP|20240101||ORU^R01^ORU_R01|C1|P|2.5.1`,
			code: AA,
			want: "MSH|^~\\&|PORTAL|HOSP|LAB^1.2^ISO|LABFAC|20240102030405+0000||ACK^R01^ACK|ACK1|P|2.5.1\nMSA|AA|C1\n",
		},
		{
			name: "v2.5.1 application error with location",
			orig: `MSH|^~\&|LAB|LABFAC|PORTAL|HOSP|20240101||ORU^R01^ORU_R01|C1|T|2.5.1`,
			code: AE,
			errs: []ErrorDetail{{Code: CodeRequiredMissing, Segment: "PID", Sequence: 1, Field: 3, Message: "PID-3 is empty"}},
			want: "MSH|^~\\&|PORTAL|HOSP|LAB|LABFAC|20240102030405+0000||ACK^R01^ACK|ACK1|T|2.5.1\nMSA|AE|C1\nERR||PID^1^3^1|101^Required field missing^HL70357|E||||PID-3 is empty\n",
		},
		{
			name: "enhanced commit reject with two errors and full location",
			orig: `MSH|^~\&|LAB|LABFAC|PORTAL|HOSP|20240101||ADT^A01|C2|P|2.6|||AL|NE`,
			code: CR,
			errs: []ErrorDetail{
				{Code: CodeUnsupportedType, Message: "ADT^A01 is not accepted"},
				{Code: CodeDataTypeError, Severity: "w", Segment: "OBX", Sequence: 2, Field: 5, Repetition: 2, Component: 1, Subcomponent: 3, Message: "bad | value"},
			},
			want: "MSH|^~\\&|PORTAL|HOSP|LAB|LABFAC|20240102030405+0000||ACK^A01^ACK|ACK1|P|2.6\nMSA|CR|C2\nERR|||200^Unsupported message type^HL70357|E||||ADT\\S\\A01 is not accepted\nERR||OBX^2^5^2^1^3|102^Data type error^HL70357|W||||bad \\F\\ value\n",
		},
		{
			name: "v2.3 uses ERR-1 and MSA-3",
			orig: `MSH|^~\&|LAB|LABFAC|PORTAL|HOSP|20240101||ORU^R01|C3|P|2.3`,
			code: AR,
			errs: []ErrorDetail{{Code: CodeUnsupportedVersion, Segment: "MSH", Sequence: 1, Field: 12, Message: "version 2.3 not supported"}},
			want: "MSH|^~\\&|PORTAL|HOSP|LAB|LABFAC|20240102030405+0000||ACK^R01|ACK1|P|2.3\nMSA|AR|C3|version 2.3 not supported\nERR|MSH^1^12^203&Unsupported version id&HL70357\n",
		},
		{
			name: "v2.2 message type is ACK alone",
			orig: `MSH|^~\&|RADIS1||DMCRES||19940502||ORU^R01|C4|D|2.2|964||AL|AL`,
			code: CA,
			want: "MSH|^~\\&|DMCRES||RADIS1||20240102030405+0000||ACK|ACK1|D|2.2\nMSA|CA|C4\n",
		},
		{
			name: "custom delimiters are kept and MSH-18 echoed",
			orig: `MSH!$r?@!LIP!LIP!LB!LB!20111207!!RSP$SLI$RSP_K11!430102!D!2.5!!!!!IT!8859/1`,
			code: AE,
			errs: []ErrorDetail{{Code: CodeInternalError, Message: "a!b$c – d"}},
			want: "MSH!$r?@!LB!LB!LIP!LIP!20240102030405+0000!!ACK$SLI$ACK!ACK1!D!2.5!!!!!!8859/1\nMSA!AE!430102\nERR!!!207$Application internal error$HL70357!E!!!!a?F?b?S?c ?E? d\n",
		},
		{
			name: "version with components and empty processing ID",
			orig: `MSH|^~\&|A|B|C|D|20240101||ORU^R01|C5||2.5.1^USA`,
			code: AA,
			want: "MSH|^~\\&|C|D|A|B|20240102030405+0000||ACK^R01^ACK|ACK1|P|2.5.1^USA\nMSA|AA|C5\n",
		},
		{
			name: "code 0 becomes 207",
			orig: `MSH|^~\&|A|B|C|D|20240101||ORU^R01|C6|P|2.5`,
			code: AE,
			errs: []ErrorDetail{{Message: "storage unavailable"}},
			want: "MSH|^~\\&|C|D|A|B|20240102030405+0000||ACK^R01^ACK|ACK1|P|2.5\nMSA|AE|C6\nERR|||207^Application internal error^HL70357|E||||storage unavailable\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, msg(tt.orig, "PID"+tt.orig[3:4]+"1"))
			got := BuildACKWith(m, fixedACK, tt.code, tt.errs...)
			if lines(got) != tt.want {
				t.Errorf("ACK\n got %q\nwant %q", lines(got), tt.want)
			}
			ack, err := Parse(got)
			if err != nil {
				t.Fatalf("the ACK does not parse: %v", err)
			}
			if ack.First("MSA").Field(2).Value() != m.ControlID() {
				t.Errorf("MSA-2 %q does not echo MSH-10 %q", ack.First("MSA").Field(2).Value(), m.ControlID())
			}
			if ack.Delimiters() != m.Delimiters() {
				t.Errorf("delimiters changed")
			}
		})
	}
}

func TestBuildACKDefaults(t *testing.T) {
	m := mustParse(t, msg(`MSH|^~\&|A|B|C|D|20240101||ORU^R01|C1|P|2.5.1`))
	a1, a2 := BuildACK(m, AA), BuildACK(m, AA)
	p1, p2 := mustParse(t, a1), mustParse(t, a2)
	if len(p1.ControlID()) != 20 || p1.ControlID() == p2.ControlID() {
		t.Errorf("control IDs %q %q: want 20 random characters", p1.ControlID(), p2.ControlID())
	}
	if _, err := ParseTime(get(t, p1, "MSH-7"), nil); err != nil {
		t.Errorf("MSH-7: %v", err)
	}
	if !strings.HasSuffix(string(a1), "\r") || strings.Contains(string(a1), "\n") {
		t.Errorf("segments must be CR-terminated")
	}
	nilACK := BuildACKWith(nil, fixedACK, AR)
	if lines(nilACK) != "MSH|^~\\&|||||20240102030405+0000||ACK^^ACK|ACK1|P|2.5.1\nMSA|AR|\n" {
		t.Errorf("nil message: %q", lines(nilACK))
	}
	withText := BuildACKWith(m, ACKOptions{Now: fixedACK.Now, ControlID: "X", Text: "stored"}, CA)
	if !strings.Contains(string(withText), "MSA|CA|C1|stored\r") {
		t.Errorf("MSA-3 text: %q", withText)
	}
}

func TestBuildACKFromBytes(t *testing.T) {
	full := "MSH|^~\\&|LAB|LABFAC|PORTAL|HOSP|20240101||ORU^R01^ORU_R01|BIG1|P|2.4\rPID|1\rOBX|1|ED|PDF||"
	tests := []struct {
		name   string
		prefix string
		want   string
	}{
		{"whole header available", full, "MSH|^~\\&|PORTAL|HOSP|LAB|LABFAC|20240102030405+0000||ACK^R01^ACK|ACK1|P|2.4\nMSA|AR|BIG1|message too large\nERR|^^^207&Application internal error&HL70357\n"},
		{"header cut inside MSH-9", full[:55], "MSH|^~\\&|PORTAL|HOSP|LAB|LABFAC|20240102030405+0000||ACK^^ACK|ACK1|P|2.5.1\nMSA|AR|\nERR|||207^Application internal error^HL70357|E||||message too large\n"},
		{"header cut inside MSH-10", full[:61], "MSH|^~\\&|PORTAL|HOSP|LAB|LABFAC|20240102030405+0000||ACK^R01^ACK|ACK1|P|2.5.1\nMSA|AR|\nERR|||207^Application internal error^HL70357|E||||message too large\n"},
		{"header cut after MSH-10", full[:63], "MSH|^~\\&|PORTAL|HOSP|LAB|LABFAC|20240102030405+0000||ACK^R01^ACK|ACK1|P|2.5.1\nMSA|AR|BIG1\nERR|||207^Application internal error^HL70357|E||||message too large\n"},
		{"junk before MSH", "\x0b\x00junkMSH|^~\\&|S|F|R|G|1||ORU^R01|J1|P|2.5.1\r", "MSH|^~\\&|R|G|S|F|20240102030405+0000||ACK^R01^ACK|ACK1|P|2.5.1\nMSA|AR|J1\nERR|||207^Application internal error^HL70357|E||||message too large\n"},
		{"no MSH at all", "\x00\x01garbage", "MSH|^~\\&|||||20240102030405+0000||ACK^^ACK|ACK1|P|2.5.1\nMSA|AR|\nERR|||207^Application internal error^HL70357|E||||message too large\n"},
		{"bad MSH-2 falls back to defaults", "MSH|^&&^|S|F|R|G|1||ORU^R01|D1|P|2.5\r", "MSH|^~\\&|||||20240102030405+0000||ACK^^ACK|ACK1|P|2.5.1\nMSA|AR|\nERR|||207^Application internal error^HL70357|E||||message too large\n"},
		{"empty", "", "MSH|^~\\&|||||20240102030405+0000||ACK^^ACK|ACK1|P|2.5.1\nMSA|AR|\nERR|||207^Application internal error^HL70357|E||||message too large\n"},
		{"only MSH", "MSH", "MSH|^~\\&|||||20240102030405+0000||ACK^^ACK|ACK1|P|2.5.1\nMSA|AR|\nERR|||207^Application internal error^HL70357|E||||message too large\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BuildACKFromBytesWith([]byte(tt.prefix), fixedACK, AR, ErrorDetail{Code: CodeInternalError, Message: "message too large"})
			if lines(got) != tt.want {
				t.Errorf("ACK\n got %q\nwant %q", lines(got), tt.want)
			}
			if _, err := Parse(got); err != nil {
				t.Errorf("ACK does not parse: %v", err)
			}
		})
	}
	if got := BuildACKFromBytes([]byte(full), CR); !strings.Contains(string(got), "\rMSA|CR|BIG1\r") {
		t.Errorf("BuildACKFromBytes: %q", got)
	}
}

func TestAcceptAckWanted(t *testing.T) {
	tests := []struct {
		mode             string
		success, failure bool
	}{
		{"AL", true, true},
		{"NE", false, false},
		{"ER", false, true},
		{"SU", true, false},
		{"", true, true},
		{"al", true, true},
		{" NE ", false, false},
		{"XX", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			if got := AcceptAckWanted(tt.mode, true); got != tt.success {
				t.Errorf("success: %v", got)
			}
			if got := AcceptAckWanted(tt.mode, false); got != tt.failure {
				t.Errorf("failure: %v", got)
			}
		})
	}
}

func TestAckCodes(t *testing.T) {
	tests := []struct {
		enhanced bool
		o        Outcome
		want     AckCode
	}{
		{false, Accepted, AA}, {false, Errored, AE}, {false, Rejected, AR},
		{true, Accepted, CA}, {true, Errored, CE}, {true, Rejected, CR},
	}
	for _, tt := range tests {
		if got := AckCodeFor(tt.enhanced, tt.o); got != tt.want {
			t.Errorf("AckCodeFor(%v, %d) = %s, want %s", tt.enhanced, tt.o, got, tt.want)
		}
	}
	if !AA.Positive() || !CA.Positive() || AE.Positive() || CR.Positive() || !CE.Enhanced() || AA.Enhanced() {
		t.Errorf("Positive/Enhanced")
	}
	for code, text := range map[int]string{100: "Segment sequence error", 101: "Required field missing", 102: "Data type error",
		103: "Table value not found", 200: "Unsupported message type", 201: "Unsupported event code",
		203: "Unsupported version id", 204: "Unknown key identifier", 206: "Application record locked", 207: "Application internal error"} {
		if CodeText(code) != text {
			t.Errorf("CodeText(%d) = %q", code, CodeText(code))
		}
	}
}

func TestErrorDetailFromParseError(t *testing.T) {
	_, err := Parse([]byte("MSH|^&&^|A\r"))
	d := ErrorDetailFor(err)
	want := ErrorDetail{Code: 102, Severity: "E", Segment: "MSH", Sequence: 1, Field: 2,
		Message: `invalid delimiters in MSH-1/MSH-2: "^&&^" repeats '&' (encoding characters 2 and 3)`}
	if d != want {
		t.Errorf("got %+v\nwant %+v", d, want)
	}
	_, err = Parse([]byte("PID|1\r"))
	if d := ErrorDetailFor(err); d.Code != CodeSegmentSequence || d.Segment != "" {
		t.Errorf("no MSH: %+v", d)
	}
	_, errStrict := ParseWithOptions([]byte("MSH|^~\\&|A|B|||1||ORU^R01||P|2.5\r"), ParseOptions{Strict: true})
	if d := ErrorDetailFor(errStrict); d.Code != CodeRequiredMissing || d.Field != 10 || d.Segment != "MSH" {
		t.Errorf("missing MSH-10: %+v", d)
	}
	if d := ErrorDetailFor(errors.New("boom")); d.Code != CodeInternalError || d.Message != "boom" {
		t.Errorf("plain error: %+v", d)
	}
	// The ACK for an unparseable message built from the error.
	ack := BuildACKFromBytesWith([]byte("MSH|^&&^|A|B|C|D|1||ORU^R01|Z9|P|2.5.1\r"), fixedACK, AR, ErrorDetailFor(err))
	if !strings.Contains(string(ack), "ERR|||100^Segment sequence error^HL70357|E") {
		t.Errorf("ACK %q", ack)
	}
}
