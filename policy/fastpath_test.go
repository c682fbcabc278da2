package policy

import (
	"strings"
	"testing"

	"github.com/resultgate/resultgate/hl7"
)

// TestCompsMatchesComponent checks that comps (one split per field) reads
// components 1-12 exactly as hl7.Field.Component does, for every field and
// repetition of messages with escapes, nulls, repetitions, subcomponents and
// unusual delimiters.
func TestCompsMatchesComponent(t *testing.T) {
	msgs := []string{
		"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rPID|1||X\\S\\1^^^AUTH&1.2&ISO^MR~Y^^^B||N\rOBX|1|CWE|1^A\\T\\B^LN^2^B^L^^^orig^10^T10^S10^13||\"\"^x~a^b^c^d^e^f^g^h^i^j^k^l^m||||||F\rOBX|2|TX|||^^^^\\.br\\^~~\\E\\|\"\"|^\"\"^",
		"MSH#$%@!#A#B#C#D#20260101##ORU$R01#1#P#2.5\rOBX#1#CE#1$A@S!x$LN$2$B$L%3$C$D#",
		"MSH|^~\\&|A\rOBX|1|ST|||plain value with no separators\rOBX|2|ST|||x\\F\\y\\Zq\\z\\H\\b\\N\\|",
	}
	for _, raw := range msgs {
		m, err := hl7.Parse([]byte(raw))
		if err != nil {
			t.Fatalf("parse %q: %v", raw, err)
		}
		d := m.Delimiters()
		for i := 0; i < m.NumSegments(); i++ {
			s := m.Segment(i)
			if s.Name() == "MSH" {
				continue // MSH-1 and MSH-2 are literal; FromHL7 reads no coded MSH field
			}
			for fi := 1; fi <= s.NumFields()+1; fi++ {
				f := s.Field(fi)
				for ri := 1; ri <= max(f.Reps(), 1); ri++ {
					for _, g := range []hl7.Field{f, f.Rep(ri)} {
						var cs comps
						cs.split(g, d)
						if (cs.n <= 1) != (g.Components() <= 1) {
							t.Errorf("%s-%d rep %d: n %d, Components %d", s.Name(), fi, ri, cs.n, g.Components())
						}
						for c := 1; c <= 12; c++ {
							if got, want := cs.get(c), g.Component(c); got != want {
								t.Errorf("%s-%d rep %d comp %d: %q, Component %q", s.Name(), fi, ri, c, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestFirstWordLower checks the allocation-free first word against the
// plain reading (strings.ToLower, then cut at the first separator).
func TestFirstWordLower(t *testing.T) {
	ref := func(val string) string {
		v := strings.ToLower(strings.TrimSpace(val))
		if i := strings.IndexAny(v, " ,;:(–-"); i > 0 {
			v = v[:i]
		}
		return v
	}
	var buf [64]byte
	for _, v := range []string{"", " ", "Present", " PRESENT ", "Yes, identified", "POSITIVE (95%)", "-x", "Identified–focal",
		"Infiltrating duct carcinoma, NOS", "ÉLEVÉ", "İstanbul", strings.Repeat("A", 64), strings.Repeat("A", 65), "a:b", ":b", "Ab\tCd"} {
		if got, want := firstWordLower(&buf, v), ref(v); got != want {
			t.Errorf("firstWordLower(%q) = %q, want %q", v, got, want)
		}
	}
}
