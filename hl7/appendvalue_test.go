package hl7

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppendValueMatchesValue checks that AppendValue appends exactly what
// Value returns, for every field and repetition of the test messages and of
// messages full of escapes, nulls and unusual delimiters.
func TestAppendValueMatchesValue(t *testing.T) {
	var msgs [][]byte
	for _, glob := range []string{"testdata/*.hl7", "testdata/*/*.hl7", "../testdata/hl7/*.hl7"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if split, err := SplitMessages(data); err == nil {
				msgs = append(msgs, split...)
			}
		}
	}
	msgs = append(msgs,
		[]byte("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rOBX|1|TX|||a\\.br\\b\\.sp 3\\c\\.sk 2\\d\\H\\e\\N\\f\\X0D0A\\g\\XE9\\h\\F\\\\S\\\\T\\\\R\\\\E\\\\P\\\\Zx\\\\C2842\\\\.in 4\\\\.ce\\i\\q\\~\"\"~x\\~\\\\unterminated|\"\"|^\\S\\"),
		[]byte("MSH#$%@!#A#B#C#D#20260101##ORU$R01#1#P#2.5\rOBX#1#TX###a@.br@b%c@F@d#"),
		[]byte("MSH|^~\\&|A\rOBX|1|ST|||plain|"),
	)
	n := 0
	for _, raw := range msgs {
		m, err := Parse(raw)
		if err != nil {
			continue
		}
		for _, s := range m.Segments() {
			for fi := 0; fi <= s.NumFields()+1; fi++ {
				f := s.Field(fi)
				fields := []Field{f}
				for ri := 1; ri <= f.Reps()+1; ri++ {
					fields = append(fields, f.Rep(ri))
				}
				for _, g := range fields {
					got := string(g.AppendValue([]byte("pre")))
					if want := "pre" + g.Value(); got != want {
						t.Errorf("%s-%d %q: AppendValue %q, Value %q", s.Name(), fi, g.Raw(), got, want)
					}
					n++
				}
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d fields checked", n)
	}
	if !strings.Contains(string(msgs[len(msgs)-3]), "\\.br\\") {
		t.Fatal("escape message missing")
	}
}
