package hl7

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateValue(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		esc  byte
		want string
	}{
		{"within bound", "ABC", 3, '\\', "ABC"},
		{"cut", "ABCDEF", 4, 0, "ABCD"},
		{"zero bound", "ABC", 0, 0, ""},
		{"utf-8 character kept whole", "AB\u00e9CD", 3, 0, "AB"},
		{"four-byte character kept whole", "A\U0001F600B", 3, 0, "A"},
		{"open escape sequence dropped", `AB\X0D\CD`, 5, '\\', "AB"},
		{"closed escape sequence kept", `AB\F\CD`, 6, '\\', `AB\F\C`},
		{"escape at the cut dropped", `ABC\F\`, 4, '\\', "ABC"},
		{"unescaped value ignores escape character", `AB\X0D\CD`, 5, 0, `AB\X0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TruncateValue(tt.in, tt.max, tt.esc); got != tt.want {
				t.Fatalf("TruncateValue(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

// header builds an ORU whose MSH-n (n = 3..12) is replaced by v.
func header(n int, v string) string {
	f := []string{"MSH", `^~\&`, "LAB", "HOSP", "PORTAL", "HOSP", "20260101120000", "", "ORU^R01^ORU_R01", "C1", "P", "2.5.1"}
	f[n-1] = v
	return strings.Join(f, "|") + "\rPID|1||123^^^HOSP^MR\r"
}

func TestCheckHeaderBounds(t *testing.T) {
	tests := []struct {
		name  string
		field int
		value string
		want  string // "" means accepted
	}{
		{"control ID at the bound", 10, strings.Repeat("C", MaxHeaderValue), ""},
		{"control ID over the bound", 10, strings.Repeat("C", 100<<10), "MSH-10 (message control ID) is 102400 characters long; at most 199 are accepted"},
		{"message type over the bound", 9, "ORU^R01^" + strings.Repeat("X", 150<<10), "MSH-9 (message type) is 153608 characters long; at most 199 are accepted"},
		{"message type of repetitions", 9, strings.Repeat("~", 200), "MSH-9 (message type) is 200 characters long; at most 199 are accepted"},
		{"sending application at the HD bound", 3, strings.Repeat("A", MaxHDValue), ""},
		{"sending facility over the HD bound", 4, strings.Repeat("F^", 114), "MSH-4 (sending facility) is 228 characters long; at most 227 are accepted"},
		{"receiving facility over the HD bound", 6, strings.Repeat("F", 1000), "MSH-6 (receiving facility) is 1000 characters long; at most 227 are accepted"},
		{"version over the bound", 12, "2.5.1^" + strings.Repeat("&", 300), "MSH-12 (version ID) is 306 characters long; at most 199 are accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(header(tt.field, tt.value)))
			if err != nil {
				t.Fatal(err)
			}
			d, bad := m.CheckHeaderBounds()
			switch {
			case tt.want == "" && bad:
				t.Fatalf("refused: %+v", d)
			case tt.want != "" && !bad:
				t.Fatal("accepted")
			case tt.want != "" && (d.Message != tt.want || d.Field != tt.field || d.Code != CodeDataTypeError || d.Segment != "MSH"):
				t.Fatalf("got %+v, want field %d, code 102, %q", d, tt.field, tt.want)
			}
		})
	}
}

// TestACKEchoesBoundedValues: whatever a header holds, an ACK (from a parsed
// message or from bytes) echoes at most the bound of each value, and ERR-8
// at most MaxHeaderValue bytes of a message text.
func TestACKEchoesBoundedValues(t *testing.T) {
	long := strings.Repeat("X", 100<<10)
	for _, n := range []int{3, 4, 5, 6, 9, 10, 11, 12} {
		msg := header(n, long+`\X0D\`+long)
		m, err := Parse([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		for name, ack := range map[string][]byte{
			"parsed":     BuildACKWith(m, fixedACK, AR, ErrorDetail{Code: CodeDataTypeError, Message: long}),
			"from bytes": BuildACKFromBytesWith([]byte(msg), fixedACK, AR, ErrorDetail{Code: CodeDataTypeError, Message: long}),
		} {
			am, err := Parse(ack)
			if err != nil {
				t.Fatalf("MSH-%d %s: ACK does not parse: %v", n, name, err)
			}
			for i := 0; i < am.NumSegments(); i++ {
				s := am.Segment(i)
				for f := 1; f <= s.NumFields(); f++ {
					if l := len(s.Field(f).Raw()); l > MaxHDValue {
						t.Errorf("MSH-%d %s: ACK %s-%d is %d bytes", n, name, s.Name(), f, l)
					}
				}
			}
			if len(ack) > 2048 {
				t.Errorf("MSH-%d %s: ACK is %d bytes", n, name, len(ack))
			}
		}
	}
	// MSA-2 echoes MSH-10 cut to MaxHeaderValue, on a character boundary.
	m, err := Parse([]byte(header(10, strings.Repeat("\u00e9", 150))))
	if err != nil {
		t.Fatal(err)
	}
	am, err := Parse(BuildACKWith(m, fixedACK, AR))
	if err != nil {
		t.Fatal(err)
	}
	msa2 := am.First("MSA").Field(2).Raw()
	if len(msa2) > MaxHeaderValue || !utf8.ValidString(msa2) || len(msa2) < MaxHeaderValue-1 {
		t.Fatalf("MSA-2 is %d bytes (valid UTF-8: %v)", len(msa2), utf8.ValidString(msa2))
	}
}
