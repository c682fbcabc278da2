package hl7

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// indexInputs returns the corpus messages, the fixtures and a few built to hit
// the index's edge cases (wrapped lines, a segment without fields, trailing
// empty fields, escapes, CRLF and LF terminators).
func indexInputs(t *testing.T) map[string][]byte {
	t.Helper()
	in := map[string][]byte{
		"edges":  []byte("MSH|^~\\&|A|B|||1||ORU^R01|1|P|2.5\r\nZRG\r\nOBX|1|TX|X^Y~Z||line one\nline two \\F\\ x&y|||\n\nNTE|||\rPID||\rOBX|2\r"),
		"short":  msg(`MSH|^~\&`, `PID|1`),
		"delims": msg(`MSH#*@!$#A#B##1##ORU*R01#1#P#2.5`, `OBX#1#ST#X*Y@Z$W##a!F!b`),
	}
	for _, name := range []string{"oru_r01_v23.hl7", "oru_r01_v251.hl7", "oru_r01_v28.hl7"} {
		in[name] = loadFixture(t, name)
	}
	dir, files := corpusFiles(t)
	for _, rel := range files {
		if _, bad := corpusInvalid[rel]; bad {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := SplitMessages(data)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for i, b := range msgs {
			in[fmt.Sprintf("%s#%d", rel, i)] = b
		}
	}
	return in
}

// dumpFields reads every field of m every way the API offers, plus two fields
// beyond the last, into one string.
func dumpFields(m *Message) string {
	var b strings.Builder
	for i := 0; i < m.NumSegments(); i++ {
		s := m.Segment(i)
		fmt.Fprintf(&b, "%s %d %d %q\n", s.Name(), s.NumFields(), s.Occurrence(), s.Raw())
		for n := 0; n <= s.NumFields()+2; n++ {
			f := s.Field(n)
			fmt.Fprintf(&b, " %d %q %q %d %d %t %t", n, f.Raw(), f.Value(), f.Reps(), f.Components(), f.IsNull(), f.IsEmpty())
			for c := 1; c <= 3; c++ {
				fmt.Fprintf(&b, " %q %q %d %q %q", f.Component(c), f.RawComponent(c), f.Subcomponents(c), f.Sub(c, 1), f.Sub(c, 2))
			}
			fmt.Fprintf(&b, " %q %q\n", f.Rep(1).Value(), f.Rep(2).Component(2))
		}
	}
	return b.String()
}

// TestFieldIndexMatchesNaiveSplit checks the field index against a plain
// strings.Split of each segment's text, and that each field's content flags
// cover every delimiter the field holds (flags may over-state, never
// under-state: a missing flag would make Value skip unescaping).
func TestFieldIndexMatchesNaiveSplit(t *testing.T) {
	for name, data := range indexInputs(t) {
		m, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.fsh != 4 || m.fmask != uint32(fAll) {
			t.Fatalf("%s: a small message uses the wide index (fsh %d, fmask %#x)", name, m.fsh, m.fmask)
		}
		checkIndex(t, name, m)
	}
}

// TestWideIndexReadsTheSame parses every input with the index a text of 256
// MiB or more gets (offsets alone, every field assumed to hold anything) and
// checks that every reading is the same as with the compact index.
func TestWideIndexReadsTheSame(t *testing.T) {
	inputs := indexInputs(t)
	want := map[string]string{}
	for name, data := range inputs {
		m, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want[name] = dumpFields(m)
	}
	saved := wideIndex
	wideIndex = 0
	t.Cleanup(func() { wideIndex = saved })
	for name, data := range inputs {
		m, err := Parse(data)
		if err != nil {
			t.Fatalf("%s (wide): %v", name, err)
		}
		if m.fsh != 0 || m.fmask != 0 {
			t.Fatalf("%s: wide index not used (fsh %d, fmask %#x)", name, m.fsh, m.fmask)
		}
		if got := dumpFields(m); got != want[name] {
			t.Errorf("%s: the wide index reads differently:\n%s\nwant:\n%s", name, got, want[name])
		}
	}
}

// TestMSH18FastPath checks msh18's one-line reading against msh18Wrapped, the
// general reading, on every corpus message and on MSH segments built to end
// MSH-18 every way a sender can.
func TestMSH18FastPath(t *testing.T) {
	const head = `MSH|^~\&|A|B|C|D|20240305||ORU^R01|1|P|2.5.1|||AL|NE||`
	in := map[string][]byte{}
	for name, b := range indexInputs(t) {
		in[name] = b
	}
	for i, tail := range []string{
		"UNICODE UTF-8", " 8859/1 \rPID|1", "8859/1~UNICODE UTF-8|EN\r", "8859/1^x|", "8859/1\r\nPID|1\r\n",
		"8859/1\nwrapped text\rPID|1", "8859/1\r\r\rPID|1", "8859/1\r  \rPID|1", "8859/1\r \rmore\rPID|1",
		"8859/1\rPI", "8859/1\rPID", "8859/1\rPIDX|1", "\rPID|1", "", "|", "~", "^",
	} {
		in[fmt.Sprintf("tail%d", i)] = []byte(head + tail)
	}
	in["short"] = []byte("MSH|^~\\&|A|B\rPID|1")
	in["wrapped-before-18"] = []byte("MSH|^~\\&|A|B|C|D|2024\rwrapped||ORU^R01|1|P|2.5.1|||AL|NE||8859/1\rPID|1")
	in["no-rep-delim"] = []byte("MSH|^|A|B|C|D|20240305||ORU^R01|1|P|2.5.1|||AL|NE||8859/1~x\rPID|1")
	for name, b := range in {
		d, err := delimitersFrom(b, false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := msh18(b, d), msh18Wrapped(b, d); got != want {
			t.Errorf("%s: msh18 %q, msh18Wrapped %q", name, got, want)
		}
	}
	if got := msh18([]byte(head+" 8859/1 \rPID|1"), DefaultDelimiters); got != "8859/1" {
		t.Errorf("msh18 = %q, want 8859/1", got)
	}
}

// checkIndex fails t when a field of m differs from a naive split of its
// segment's text or its flags miss a delimiter the field holds.
func checkIndex(t *testing.T, name string, m *Message) {
	t.Helper()
	d := m.Delimiters()
	for i := 0; i < m.NumSegments(); i++ {
		s := m.Segment(i)
		parts := strings.Split(s.Raw(), string(d.Field))
		want := parts[1:] // want[n-1] is field n
		if i == 0 {
			want = append([]string{string(d.Field)}, parts[1:]...)
		}
		if s.NumFields() != len(want) {
			t.Fatalf("%s %s(%d): NumFields %d, naive %d", name, s.Name(), i, s.NumFields(), len(want))
		}
		for n := 1; n <= len(want)+1; n++ {
			f := s.Field(n)
			w := ""
			if n <= len(want) {
				w = want[n-1]
			}
			if f.Raw() != w {
				t.Fatalf("%s %s(%d)-%d: %q, naive %q", name, s.Name(), i, n, f.Raw(), w)
			}
			if f.literal() {
				continue
			}
			for _, x := range []struct {
				c  byte
				fl uint8
			}{{d.Repetition, fRep}, {d.Component, fComp}, {d.Subcomponent, fSub}, {d.Escape, fEsc}} {
				if x.c != 0 && strings.IndexByte(f.Raw(), x.c) >= 0 && f.flags()&x.fl == 0 {
					t.Fatalf("%s %s(%d)-%d %q: flags %#x lack %#x", name, s.Name(), i, n, f.Raw(), f.flags(), x.fl)
				}
			}
		}
	}
}

// FuzzFieldIndex checks, for any input that parses, the field index against a
// naive split and msh18's one-line reading against the general one.
func FuzzFieldIndex(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add(loadFixture(f, "oru_r01_v251.hl7"))
	f.Add([]byte("MSH|^~\\&|A|B|C|D|20240305||ORU^R01|1|P|2.5.1|||AL|NE||8859/1\nwrapped\rPID|1"))
	for _, b := range hostileSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		checkIndex(t, "fuzz", m)
		rest := m.Raw()[m.start:]
		if got, want := msh18(rest, m.Delimiters()), msh18Wrapped(rest, m.Delimiters()); got != want {
			t.Fatalf("msh18 %q, msh18Wrapped %q", got, want)
		}
	})
}
