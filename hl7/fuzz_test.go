package hl7

import (
	"bytes"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/internal/hostile"
)

// fuzzSeeds are small inputs covering the parser's branches; the committed seed
// corpora under testdata/fuzz add more, and crashers found by fuzzing.
var fuzzSeeds = []string{
	"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rPID|||1^^^X&Y&Z^MR~2||N^G\rOBX|1|FT|C||a\\.br\\b\\X0D0A\\\\S\\~r2\r",
	"MSH|^~\\&#|A\nPID|1\r\nOBX|1|TX|C||x\\P\\#\n",
	"MSH!$r?@!A!B\rPID!!!1@2$3r4\r",
	"MSH|^~}|A\rPID|||A}F}B\r",
	"\xEF\xBB\xBFMSH|^~\\&|A||||||||||||||||8859/1\rPID|||\xe9\r",
	"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|1\rBTS|1\rFTS|1\r",
	"MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.3||| EVN|A01\r",
	"MSH|^~\\\\&|A\rPID|1|wrapped\ncontinued\r",
	"MSH|^&&^|A\r",
	"MSH",
	"",
}

// hostileSeeds returns every adversarial shape (internal/hostile) at 4 KiB:
// large enough to hold thousands of repetitions, components or segments,
// small enough to keep fuzzing fast.
func hostileSeeds() [][]byte {
	var out [][]byte
	for _, s := range hostile.Shapes() {
		out = append(out, s.Message(4<<10))
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, b := range hostileSeeds() {
		f.Add(b)
	}
	f.Add(loadFixture(f, "oru_r01_v251.hl7"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		_ = BuildACKFromBytes(data, AR, ErrorDetail{Code: CodeSegmentSequence, Message: "x"})
		if err != nil {
			var pe *ParseError
			if !asParseError(err, &pe) {
				t.Fatalf("error is not a *ParseError: %T %v", err, err)
			}
			if _, err2 := Parse(data); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("not deterministic: %v then %v", err, err2)
			}
			return
		}
		if !bytes.Equal(m.Encode(), data) {
			t.Fatalf("Encode is not byte-for-byte")
		}
		if m.NumSegments() == 0 || m.Segments()[0].Name() != "MSH" {
			t.Fatalf("first segment is not MSH")
		}
		for _, s := range m.Segments() {
			if len(s.Name()) != 3 {
				t.Fatalf("segment name %q", s.Name())
			}
			if !strings.Contains(m.Text(), s.Raw()) {
				t.Fatalf("segment text is not part of the message")
			}
			for f := 0; f <= s.NumFields()+1; f++ {
				checkIterators(t, s.Field(f))
			}
		}
		_ = Describe(m).String()
		_ = m.Group()
		_ = m.MSH()
		ack, err := Parse(BuildACK(m, AE, ErrorDetail{Code: CodeDataTypeError, Segment: "PID", Field: 3, Message: m.ControlID()}))
		if err != nil {
			t.Fatalf("ACK does not parse: %v", err)
		}
		esc := m.Delimiters().Escape
		if got, want := ack.First("MSA").Field(2).Raw(), m.Segments()[0].Field(10).Raw(); got != TruncateValue(want, MaxHeaderValue, esc) &&
			got != TruncateValue(strings.TrimPrefix(want, " "), MaxHeaderValue, esc) && isASCII(data) && !strings.ContainsAny(want, "\r\n") {
			// A wrapped MSH-10 is echoed with its line break escaped.
			t.Fatalf("MSA-2 %q does not echo MSH-10 %q", got, want)
		}
	})
}

// checkIterators checks that AllReps, AllComponents and AllSubcomponents
// yield exactly what the indexed accessors return (Rep(i), Component(c),
// RawComponent(c), Sub(c, k)), and that the accessors read nothing past the
// last part. The indexed reads rescan from the start, so only the first
// iterCheckParts parts of each level are compared: a fuzzed field of 64
// repetitions of 64 components of 64 subcomponents would otherwise cost
// half a second an input.
const iterCheckParts = 8

func checkIterators(t *testing.T, fl Field) {
	_ = fl.Value()
	_ = fl.Values()
	n := 0
	for r, rep := range fl.AllReps() {
		n++
		if r != n {
			t.Fatalf("AllReps yielded %d for repetition %d", r, n)
		}
		if r > iterCheckParts {
			continue
		}
		if want := fl.Rep(r); rep != want {
			t.Fatalf("AllReps %d = %q, Rep = %q", r, rep.Raw(), want.Raw())
		}
		nc := 0
		for c, comp := range rep.AllComponents() {
			nc++
			if c != nc || c > iterCheckParts {
				continue
			}
			if comp.Value() != rep.Component(c) || comp.Raw() != rep.RawComponent(c) {
				t.Fatalf("AllComponents %d = %q (%q), Component = %q (%q)", c, comp.Value(), comp.Raw(), rep.Component(c), rep.RawComponent(c))
			}
			ns := 0
			for k, sub := range comp.AllSubcomponents() {
				ns++
				if k == ns && k <= iterCheckParts && sub.Value() != rep.Sub(c, k) {
					t.Fatalf("AllSubcomponents %d.%d = %q, Sub = %q", c, k, sub.Value(), rep.Sub(c, k))
				}
			}
			if ns != rep.Subcomponents(c) || (ns <= iterCheckParts && rep.Sub(c, ns+1) != "") {
				t.Fatalf("component %d: %d subcomponents yielded, Subcomponents = %d", c, ns, rep.Subcomponents(c))
			}
		}
		if nc != rep.Components() || rep.Component(nc+1) != "" {
			t.Fatalf("repetition %d: %d components yielded, Components = %d", r, nc, rep.Components())
		}
	}
	if n != fl.Reps() || !fl.Rep(n+1).IsEmpty() {
		t.Fatalf("%d repetitions yielded, Reps = %d", n, fl.Reps())
	}
}

func asParseError(err error, pe **ParseError) bool {
	p, ok := err.(*ParseError)
	*pe = p
	return ok
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`a\F\b`, `\X0D0A\`, `\.sp3\`, `\H\x\N\`, `\C2842\`, `\Zabc\`, `\\`, `\`, `\X\`, `\.sk99999\`, `plain`, "\xff\\E\\"} {
		f.Add(s)
	}
	for _, s := range hostile.Shapes() {
		f.Add(strings.Repeat(s.Unit, (4<<10)/max(len(s.Unit), 1)))
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := Delimiters{'|', '^', '~', '\\', '&', '#'}
		u := Unescape(s, d)
		k := UnescapeWith(s, d, UnescapeOptions{KeepFormatting: true})
		if !strings.Contains(s, `\`) && (u != s || k != s) {
			t.Fatalf("text without escapes changed: %q -> %q / %q", s, u, k)
		}
		if len(u) > 100*len(s)+1 {
			t.Fatalf("output %d bytes for input %d bytes", len(u), len(s))
		}
		if back := Unescape(Escape(s, d), d); back != s {
			t.Fatalf("Unescape(Escape(%q)) = %q", s, back)
		}
		e := Escape(s, d)
		for _, c := range []byte{'|', '^', '~', '&', '#', '\r', '\n'} {
			if bytes.IndexByte([]byte(e), c) >= 0 {
				t.Fatalf("Escape(%q) = %q still contains %q", s, e, c)
			}
		}
	})
}

func FuzzSplitMessages(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, b := range hostileSeeds() {
		f.Add(b)
	}
	f.Add([]byte("BHS|^~\\&\rMSH|^~\\&|1\rPID|1\rMSH|^~\\&|2\rBTS|2\r"))
	f.Add([]byte("MSH|^~\\&|1\nMSH|^~\\&|2\n\nMSH|^~\\&|3"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := SplitMessages(data)
		if err != nil {
			return
		}
		pos := 0
		for i, mb := range msgs {
			if !bytes.HasPrefix(mb, []byte("MSH")) {
				t.Fatalf("message %d does not start with MSH: %q", i, mb)
			}
			k := pos
			for k < len(data) && &data[k] != &mb[0] {
				k++
			}
			if k == len(data) || k+len(mb) > len(data) {
				t.Fatalf("message %d is not a sub-slice of the input after the previous one", i)
			}
			pos = k + len(mb)
		}
	})
}
