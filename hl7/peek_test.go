package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPeekMSH(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		ok       bool
		delims   Delimiters
		complete bool
		fields   []string // MSH-1 .. MSH-n
	}{
		{"usual", "MSH|^~\\&|LIS|LAB|RG|HOSP|20260101||ORU^R01|C1|P|2.5.1|||AL|NE\rPID|1\r", true, DefaultDelimiters, true,
			[]string{"|", "^~\\&", "LIS", "LAB", "RG", "HOSP", "20260101", "", "ORU^R01", "C1", "P", "2.5.1", "", "", "AL", "NE"}},
		{"LF terminator", "MSH|^~\\&|A|B\nPID|1\n", true, DefaultDelimiters, true, []string{"|", "^~\\&", "A", "B"}},
		{"CRLF terminator", "MSH|^~\\&|A|\r\nPID|1\r\n", true, DefaultDelimiters, true, []string{"|", "^~\\&", "A", ""}},
		{"after a BOM and blanks", "\xEF\xBB\xBF\r\nMSH|^~\\&|A\r", true, DefaultDelimiters, true, []string{"|", "^~\\&", "A"}},
		{"other delimiters", "MSH!$r?@!A!B$C\r", true, Delimiters{'!', '$', 'r', '?', '@', 0}, true, []string{"!", "$r?@", "A", "B$C"}},
		{"three encoding characters", "MSH|^~\\|A\r", true, Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\'}, true, []string{"|", "^~\\", "A"}},
		{"doubled escape from a string literal", "MSH|^~\\\\&|A\r", true, DefaultDelimiters, true, []string{"|", "^~\\\\&", "A"}},
		{"cut in a field", "MSH|^~\\&|LIS|LA", true, DefaultDelimiters, false, []string{"|", "^~\\&", "LIS", "LA"}},
		{"cut in MSH-2", "MSH|^~", true, Delimiters{Field: '|', Component: '^', Repetition: '~'}, false, []string{"|", "^~"}},
		{"no MSH", "PID|1|2\r", false, Delimiters{}, false, nil},
		{"empty", "", false, Delimiters{}, false, nil},
		{"MSH alone", "MSH", false, Delimiters{}, false, nil},
		{"no field separator", "MSH\rPID|1\r", false, Delimiters{}, false, nil},
		{"letter as separator", "MSHX^~\\&XA\r", false, Delimiters{}, false, nil},
		{"no encoding characters", "MSH||A\r", false, Delimiters{}, false, nil},
		{"repeated encoding character", "MSH|^^\\&|A\r", false, Delimiters{}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			p, ok := PeekMSH(in)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				if p.NumFields() != 0 || p.Field(1) != nil {
					t.Errorf("a failed peek has fields: %d %q", p.NumFields(), p.Field(1))
				}
				return
			}
			if p.Delimiters() != tt.delims {
				t.Errorf("Delimiters = %+v, want %+v", p.Delimiters(), tt.delims)
			}
			if p.Complete() != tt.complete {
				t.Errorf("Complete = %v, want %v", p.Complete(), tt.complete)
			}
			if p.NumFields() != len(tt.fields) {
				t.Errorf("NumFields = %d, want %d", p.NumFields(), len(tt.fields))
			}
			for i, want := range tt.fields {
				n := i + 1
				if got := p.Field(n); string(got) != want || got == nil {
					t.Errorf("Field(%d) = %q, want %q", n, got, want)
				}
				s, e, ok := p.FieldSpan(n)
				if !ok || string(in[s:e]) != want {
					t.Errorf("FieldSpan(%d) = %d, %d, %v: %q, want %q", n, s, e, ok, in[s:e], want)
				}
			}
			for _, n := range []int{0, -1, len(tt.fields) + 1, 1000} {
				if got := p.Field(n); got != nil {
					t.Errorf("Field(%d) = %q, want nil", n, got)
				}
			}
			if seg := string(p.Segment()); !strings.HasPrefix(seg, "MSH") || strings.ContainsAny(seg, "\r\n") || !strings.Contains(tt.in, seg) {
				t.Errorf("Segment = %q", seg)
			}
		})
	}
}

// TestPeekMSHField returns a field that can be appended to without writing
// into the input.
func TestPeekMSHFieldCapacity(t *testing.T) {
	in := []byte("MSH|^~\\&|A|B\r")
	p, _ := PeekMSH(in)
	_ = append(p.Field(3), 'X')
	if string(in) != "MSH|^~\\&|A|B\r" {
		t.Fatalf("appending to Field(3) changed the input: %q", in)
	}
}

func TestPeekMSHAllocs(t *testing.T) {
	in := []byte("MSH|^~\\&|LIS|LAB|RG|HOSP|20260101||ORU^R01|C1|P|2.5.1|||AL|NE\rPID|1\r")
	n := testing.AllocsPerRun(100, func() {
		p, ok := PeekMSH(in)
		if !ok || len(p.Field(15)) != 2 || len(p.Field(16)) != 2 {
			t.Fatal("peek failed")
		}
	})
	if n != 0 {
		t.Errorf("PeekMSH and two fields allocate %v times, want 0", n)
	}
}

// TestPeekMSHLongLine checks that the terminator is found in a header far
// longer than the search window, with either line ending.
func TestPeekMSHLongLine(t *testing.T) {
	long := strings.Repeat("x", 3000)
	for _, term := range []string{"\r", "\n", "\r\n"} {
		in := []byte("MSH|^~\\&|" + long + "|B" + term + "PID|" + strings.Repeat("y", 5000) + "\n")
		p, ok := PeekMSH(in)
		if !ok || !p.Complete() || p.NumFields() != 4 || string(p.Field(4)) != "B" {
			t.Errorf("terminator %q: ok %v complete %v fields %d MSH-4 %q", term, ok, p.Complete(), p.NumFields(), p.Field(4))
		}
	}
}

// TestBuildACKFromBytesCutHeader checks the header read for an ACK to a frame
// cut short: a complete last field is echoed, a cut one is not.
func TestBuildACKFromBytesCutHeader(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	o := ACKOptions{Now: now, ControlID: "K1"}
	whole := "MSH|^~\\&|LIS|LAB|RG|HOSP|20260101||ORU^R01|C1|P|2.3\rPID|1\r"
	for _, tt := range []struct{ in, msa string }{
		{whole, "MSA|AR|C1\r"},
		{whole[:strings.Index(whole, "|P|")], "MSA|AR|\r"},     // MSH-10 may be cut: not echoed
		{whole[:strings.Index(whole, "|P|")+1], "MSA|AR|C1\r"}, // MSH-10 ends at a separator
		{"no header at all", "MSA|AR|\r"},
	} {
		ack := string(BuildACKFromBytesWith([]byte(tt.in), o, AR))
		if !strings.Contains(ack, tt.msa) {
			t.Errorf("ACK for %q = %q, want %q", tt.in, ack, tt.msa)
		}
	}
}

func TestReadACK(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ACK
		err  error
	}{
		{"original mode accept", "MSH|^~\\&|RG|HOSP|LIS|LAB|20260101||ACK^R01^ACK|K1|P|2.5.1\rMSA|AA|C1\r",
			ACK{Delimiters: DefaultDelimiters, Version: "2.5.1", Code: AA, ControlID: "C1"}, nil},
		{"enhanced error with ERR v2.5", "MSH|^~\\&|RG|HOSP|LIS|LAB|20260101||ACK^R01^ACK|K1|P|2.5.1\rMSA|CE|C1\r" +
			"ERR||PID^1^3^1^2|207^Application internal error^HL70357|E||||not stored \\T\\ retry\r",
			ACK{Delimiters: DefaultDelimiters, Version: "2.5.1", Code: CE, ControlID: "C1", Errors: []ACKError{{
				ErrorDetail: ErrorDetail{Code: 207, Severity: "E", Segment: "PID", Sequence: 1, Field: 3, Repetition: 1, Component: 2, Message: "not stored & retry"},
				CodeText:    "Application internal error"}}}, nil},
		{"v2.3 ERR-1 and MSA-3", "MSH|^~\\&|RG|HOSP|LIS|LAB|20260101||ACK^R01|K1|P|2.3\rMSA|AR|C1|Unsupported message type\r" +
			"ERR|MSH^1^9^200&Unsupported message type&HL70357\r",
			ACK{Delimiters: DefaultDelimiters, Version: "2.3", Code: AR, ControlID: "C1", Text: "Unsupported message type", Errors: []ACKError{{
				ErrorDetail: ErrorDetail{Code: 200, Segment: "MSH", Sequence: 1, Field: 9},
				CodeText:    "Unsupported message type"}}}, nil},
		{"lower case, padded, no MSA-2", "MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5\rMSA| aa \r",
			ACK{Delimiters: DefaultDelimiters, Version: "2.5", Code: AA}, nil},
		{"no MSH, LF terminators", "garbage\nMSA|AA|C1\n", ACK{Delimiters: DefaultDelimiters, Code: AA, ControlID: "C1"}, nil},
		{"no MSH, other separator", "MSA!CA!C1!fine\r", ACK{Delimiters: delimitersAfter('!'), Code: CA, ControlID: "C1", Text: "fine"}, nil},
		{"other delimiters", "MSH!$r?@!A!B!C!D!1!!ACK!K!P!2.4\rMSA!AE!C?F?1!bad?S?text\r",
			ACK{Delimiters: Delimiters{'!', '$', 'r', '?', '@', 0}, Version: "2.4", Code: AE, ControlID: "C!1", Text: "bad$text"}, nil},
		{"8859/1 text", "MSH|^~\\&|A|B|C|D|1||ACK|K|P|2.5||||||8859/1\rMSA|AE|C1|d\xe9j\xe0 vu\r",
			ACK{Delimiters: DefaultDelimiters, Version: "2.5", Code: AE, ControlID: "C1", Text: "déjà vu"}, nil},
		{"invalid UTF-8 replaced", "MSH|^~\\&|A|B|C|D|1||ACK|K|P|2.5\rMSA|AE|C1|x\xffy\r",
			ACK{Delimiters: DefaultDelimiters, Version: "2.5", Code: AE, ControlID: "C1", Text: "x\uFFFDy"}, nil},
		{"MSA-3 stops at the separator", "MSA|AA|C1|text|4|5\r", ACK{Delimiters: DefaultDelimiters, Code: AA, ControlID: "C1", Text: "text"}, nil},
		{"only the first MSA", "MSA|AA|C1\rMSA|AR|C2\r", ACK{Delimiters: DefaultDelimiters, Code: AA, ControlID: "C1"}, nil},
		{"MSA inside a field is no segment", "MSH|^~\\&|R|F|S|F|20240101|XMSA|ACK|1|P|2.5\r",
			ACK{Delimiters: DefaultDelimiters, Version: "2.5"}, ErrNoMSA},
		{"no MSA", "MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5\r", ACK{Delimiters: DefaultDelimiters, Version: "2.5"}, ErrNoMSA},
		{"MSAB is another segment", "MSAB|AA|C1\r", ACK{}, ErrNoMSA},
		{"unknown code", "MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5\rMSA|OK|C1\r",
			ACK{Delimiters: DefaultDelimiters, Version: "2.5", Code: "OK", ControlID: "C1"}, ErrAckCode},
		{"empty MSA-1", "MSA||C1\r", ACK{Delimiters: DefaultDelimiters, ControlID: "C1"}, ErrAckCode},
		{"MSA without fields", "MSH|^~\\&|A\rMSA\r", ACK{Delimiters: DefaultDelimiters}, ErrAckCode},
		{"garbage", "hello", ACK{}, ErrNoMSA},
		{"empty", "", ACK{}, ErrNoMSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadACK([]byte(tt.in))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadACK =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// TestReadACKReadsBuildACK reads back what BuildACK writes, in every version
// family, both acknowledgement modes and with an ERR per version's layout.
func TestReadACKReadsBuildACK(t *testing.T) {
	for _, ver := range []string{"2.2", "2.3", "2.4", "2.5.1", "2.8"} {
		for _, code := range []AckCode{AA, AE, AR, CA, CE, CR} {
			t.Run(ver+"/"+string(code), func(t *testing.T) {
				orig, err := Parse([]byte("MSH|^~\\&|LIS|LAB|RG|HOSP|20260101||ORU^R01|C\\F\\7|P|" + ver + "\rPID|1\r"))
				if err != nil {
					t.Fatal(err)
				}
				e := ErrorDetail{Code: CodeDataTypeError, Severity: "W", Segment: "PID", Sequence: 1, Field: 3, Message: "PID-3 is not a CX ^ value"}
				var errs []ErrorDetail
				if !code.Positive() {
					errs = append(errs, e)
				}
				a, err := ReadACK(BuildACK(orig, code, errs...))
				if err != nil {
					t.Fatal(err)
				}
				if a.Code != code || a.ControlID != "C|7" || a.Version != ver || a.Delimiters != DefaultDelimiters {
					t.Errorf("ACK = %+v", a)
				}
				if code.Positive() {
					if len(a.Errors) != 0 || a.Text != "" {
						t.Errorf("positive ACK has errors or text: %+v", a)
					}
					return
				}
				if len(a.Errors) != 1 {
					t.Fatalf("errors = %+v", a.Errors)
				}
				got := a.Errors[0]
				if oldERR(ver) {
					// v2.1-2.4: ERR-1 carries the location and code; the message goes in MSA-3.
					want := ACKError{ErrorDetail: ErrorDetail{Code: e.Code, Segment: e.Segment, Sequence: e.Sequence, Field: e.Field}, CodeText: CodeText(e.Code)}
					if !reflect.DeepEqual(got, want) || a.Text != e.Message {
						t.Errorf("error = %+v text %q, want %+v text %q", got, a.Text, want, e.Message)
					}
					return
				}
				want := ACKError{ErrorDetail: e, CodeText: CodeText(e.Code)}
				want.Repetition = 1 // BuildACK writes the first repetition explicitly
				if !reflect.DeepEqual(got, want) {
					t.Errorf("error = %+v, want %+v", got, want)
				}
			})
		}
	}
}

// TestReadACKAllocs pins the cost of reading a usual positive ACK: one
// string for the MSA segment.
func TestReadACKAllocs(t *testing.T) {
	ack := []byte("MSH|^~\\&|RG|HOSP|LIS|LAB|20260101||ACK^R01^ACK|K1|P|2.5.1\rMSA|AA|C1\r")
	n := testing.AllocsPerRun(100, func() {
		if a, err := ReadACK(ack); err != nil || a.Code != AA {
			t.Fatal(a, err)
		}
	})
	if n > 1 {
		t.Errorf("ReadACK allocates %v times, want at most 1", n)
	}
}

// peekSeeds are headers and ACKs covering PeekMSH's and ReadACK's branches.
var peekSeeds = []string{
	"MSH|^~\\&|LIS|LAB|RG|HOSP|20260101||ORU^R01|C1|P|2.5.1|||AL|NE\rPID|1\r",
	"MSH|^~\\&|A|B\nPID|1\n",
	"MSH!$r?@!A!B$C\r",
	"MSH|^~\\\\&|A\r",
	"MSH|^~\\&|LIS|LA",
	"MSH|^~",
	"MSH\r",
	"MSH||A\r",
	"xxMSH|^~\\&|A|B|C|D|E|F|G|H|I|J|K|L|M|N|O|P|Q|R|S\r",
	"MSH|^~\\&|RG|HOSP|LIS|LAB|20260101||ACK^R01^ACK|K1|P|2.5.1\rMSA|CE|C1\rERR||PID^1^3^1^2|207^Application internal error^HL70357|E||||x \\T\\ y\r",
	"MSH|^~\\&|RG|HOSP|LIS|LAB|20260101||ACK^R01|K1|P|2.3\rMSA|AR|C1|text\rERR|MSH^1^9^200&Unsupported&HL70357\r",
	"MSH|^~\\&|A|B|C|D|1||ACK|K|P|2.5||||||8859/1\rMSA|AE|C1|d\xe9j\xe0\r",
	"garbage\nMSA|AA|C1\n",
	"MSA!CA!C1!fine\r",
	"MSA\rERR\r",
	"",
}

// FuzzPeekMSH checks PeekMSH against Parse and against the scanners it
// replaces (copied in legacy_test.go): the same delimiters and fields.
func FuzzPeekMSH(f *testing.F) {
	for _, s := range append(peekSeeds, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ok := PeekMSH(data)
		if got, want := headerFromBytes(data), legacyHeaderFromBytes(data); !reflect.DeepEqual(got, want) {
			t.Fatalf("headerFromBytes = %+v, the old scanner read %+v", got, want)
		}
		if !ok {
			return
		}
		i := bytes.Index(data, []byte("MSH"))
		if d, err := delimitersFrom(data[i:], false); err != nil || d != p.Delimiters() {
			t.Fatalf("delimiters %+v, delimitersFrom says %+v %v", p.Delimiters(), d, err)
		}
		// The fields joined by the separator are the segment again.
		parts := [][]byte{[]byte("MSH")}
		for n := 2; n <= p.NumFields(); n++ {
			fl := p.Field(n)
			if fl == nil {
				t.Fatalf("Field(%d) of %d is nil", n, p.NumFields())
			}
			s, e, ok := p.FieldSpan(n)
			if !ok || !bytes.Equal(data[s:e], fl) {
				t.Fatalf("FieldSpan(%d) disagrees with Field", n)
			}
			parts = append(parts, fl)
		}
		if seg := bytes.Join(parts, p.Field(1)); !bytes.Equal(seg, p.Segment()) {
			t.Fatalf("fields join to %q, segment is %q", seg, p.Segment())
		}
		if p.Field(p.NumFields()+1) != nil {
			t.Fatal("a field after the last")
		}
		if p.Complete() {
			// What the intake reads from a frame that does not parse.
			old := legacyMSHFields(data)
			for n := 3; n <= p.NumFields()+1; n++ {
				if got, want := string(bytes.TrimSpace(p.Field(n))), legacyField(old, n); got != want {
					t.Fatalf("MSH-%d = %q, the intake's scanner read %q", n, got, want)
				}
			}
		}
		if m, err := Parse(data); err == nil && m.Segments()[0].Raw() == string(p.Segment()) {
			for n := 3; n <= p.NumFields(); n++ {
				if got, want := string(p.Field(n)), m.Segments()[0].Field(n).Raw(); got != want {
					t.Fatalf("MSH-%d = %q, Parse reads %q", n, got, want)
				}
			}
		}
	})
}

// FuzzReadACK checks that ReadACK never fails in an unexpected way and reads
// back what BuildACK writes for any message that parses.
func FuzzReadACK(f *testing.F) {
	for _, s := range append(peekSeeds, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ReadACK(data)
		switch {
		case errors.Is(err, ErrNoMSA):
			if a.Code != "" || a.ControlID != "" || a.Text != "" {
				t.Fatalf("no MSA, yet %+v", a)
			}
		case errors.Is(err, ErrAckCode):
			if a.Code.valid() {
				t.Fatalf("code %q rejected", a.Code)
			}
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		default:
			if !a.Code.valid() {
				t.Fatalf("code %q accepted", a.Code)
			}
		}
		if !errors.Is(err, ErrNoMSA) && bytes.Index(data, []byte("MSA")) < 0 {
			t.Fatal("an MSA found where there is none")
		}
		for _, s := range append([]string{a.Version, string(a.Code), a.ControlID, a.Text}, fmt.Sprint(a.Errors)) {
			if !utf8Valid(s) {
				t.Fatalf("invalid UTF-8 in %q", s)
			}
		}
		m, perr := Parse(data)
		if perr != nil || !plainDelimiters(m.Delimiters()) {
			return // BuildACK cannot write numbers and IDs with letters or digits as delimiters
		}
		e := ErrorDetail{Code: CodeRequiredMissing, Segment: "OBX", Sequence: 2, Field: 5, Message: "missing"}
		back, err := ReadACK(BuildACK(m, CE, e))
		if err != nil || back.Code != CE || len(back.Errors) != 1 || back.Errors[0].Code != CodeRequiredMissing || back.Errors[0].Field != 5 {
			t.Fatalf("BuildACK's ACK reads back as %+v, %v", back, err)
		}
		raw := m.Segments()[0].Field(10).Raw()
		want := strings.TrimSpace(m.Segments()[0].Field(10).Value())
		if !isASCII(data) || strings.ContainsAny(raw, "\r\n") {
			return
		}
		if len(raw) <= MaxHeaderValue && back.ControlID != want {
			t.Fatalf("MSA-2 reads back as %q, MSH-10 is %q", back.ControlID, want)
		}
		// A longer MSH-10 is echoed cut to MaxHeaderValue bytes (ackBound):
		// without escape sequences, its first MaxHeaderValue bytes.
		if len(raw) <= MaxHeaderValue {
			return
		}
		d := m.Delimiters()
		if len(back.ControlID) > MaxHeaderValue {
			t.Fatalf("MSA-2 reads back as %d bytes, more than %d", len(back.ControlID), MaxHeaderValue)
		}
		if d.Escape != 0 && strings.IndexByte(raw, d.Escape) >= 0 {
			return
		}
		cut := raw[:MaxHeaderValue]
		if i := strings.IndexByte(cut, d.Repetition); d.Repetition != 0 && i >= 0 {
			cut = cut[:i]
		}
		if back.ControlID != strings.TrimSpace(cut) {
			t.Fatalf("MSA-2 reads back as %q, MSH-10 cut to %d bytes is %q", back.ControlID, MaxHeaderValue, strings.TrimSpace(cut))
		}
	})
}

// plainDelimiters reports whether no delimiter is a letter or digit.
func plainDelimiters(d Delimiters) bool {
	for _, c := range []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent, d.Truncation} {
		if isUpperDigit(c) || (c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
