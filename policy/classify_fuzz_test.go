package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/hostile"
)

// FuzzLoadRuleSet checks that the rule-set loader never panics, and that a
// rule set it accepts compiles and classifies.
func FuzzLoadRuleSet(f *testing.F) {
	// The default rule set (70 KB) is loaded by TestDefaultRuleSetLoads; as a
	// seed it would make every mutation cost a full compile.
	if data, err := os.ReadFile(filepath.Join("..", "testdata", "rules", "minimal.yaml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("version: x\nlexicon:\n  - {id: a, kind: term, tag: malignancy, phrases: [\"?\", \"-\", \"a b\"]}\n"))
	f.Add([]byte("version: x\ncategories:\n  - {id: c, system: S, keywords: [k], values: {\"4\": malignancy}}\n"))
	f.Add([]byte("version: x\ncoded:\n  icd10:\n    ranges:\n      - {id: r, from: C, to: CZZZZZZ, tag: uncertain}\n"))
	f.Add([]byte("version: x\nsettings:\n  abbreviation_context:\n    leads: [q]\n    followers: [w]\nlexicon:\n  - {id: h, kind: header, context: diagnosis, phrases: [dx]}\n" +
		"abbreviations:\n  - {id: a, tag: malignancy, expansion: y, forms: [X, ca, \"T-ALL\"], collides: [unit, analyte, word, address], not_before: [p], not_after: [z]}\n"))
	f.Add([]byte("{{{"))
	for _, b := range hostile.Structures(4 << 10) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		rs, err := LoadRuleSet(data)
		if err != nil {
			return
		}
		c, err := NewClassifier(rs)
		if err != nil {
			t.Fatalf("accepted rule set does not compile: %v", err)
		}
		c.Classify(textReport("BI-RADS 4. Negative for carcinoma; suspicious for lymphoma. "+string(data[:min(len(data), 200)])), nil)
	})
}

// FuzzClassify checks, for arbitrary text and HL7 input, that Classify never
// panics, that evidence offsets lie inside the text they point at, and that
// the output is deterministic.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"Invasive ductal carcinoma, margins negative.",
		"Negative for high-grade dysplasia or carcinoma.",
		"BI-RADS 4A. LR-5. Bethesda VI. PI-RADS 5.",
		"CLINICAL HISTORY: r/o lymphoma\nDIAGNOSIS: lymphoma",
		"Non-Hodgkin\u2019s lymphoma \u2013 cannot be excluded?",
		"\xe2\x80", "\xc2", "no", "",
		"Liver, biopsy: HCC, well differentiated. CA 19-9 37 U/mL; Ca++ 1.1; ALL margins negative; 5 MM nodule; T-ALL; MDS with excess blasts.",
		"DIAGNÓSTICO: CÁNCER; negativo para neoplasia maligna. San Diego, CA 92101",
		"ca", "ALL", "MM", "\xc3", "a\xc3\xa1", "\xc3\xa1MM",
	} {
		f.Add([]byte(s))
	}
	for _, s := range hostile.Shapes() {
		f.Add(s.Message(4 << 10))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "classify", "*.hl7"))
	for _, fn := range files {
		if data, err := os.ReadFile(fn); err == nil {
			f.Add(data)
		}
	}
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		text := string(data)
		// As free text.
		r := textReport(text)
		r.Orders[0].Observations[0].ID = Coded{Code: text, Text: text}
		r.Orders[0].Observations[0].Codes = []Coded{{Code: text, Text: text}, {Code: text, System: "I10"}, {Code: text, System: "ICDO3"}}
		r.Orders[0].Service = Coded{Code: text, Text: text}
		r.Orders[0].ServiceSection = text
		r.Diagnoses = []Coded{{Code: text, Text: text, System: "SCT"}}
		got := c.Classify(r, nil)
		for _, tg := range append(got.Tags, got.Suppressed...) {
			for _, e := range tg.Evidence {
				if e.Start < 0 || e.End < e.Start || e.End > len(text) {
					t.Fatalf("evidence offsets %d..%d outside text of %d bytes: %+v", e.Start, e.End, len(text), e)
				}
				if e.Layer == LayerFreeText && e.Field == "OBX-5" && e.End > 0 && text[e.Start:e.End] != e.Match {
					t.Fatalf("match %q != text[%d:%d] %q", e.Match, e.Start, e.End, text[e.Start:e.End])
				}
			}
		}
		if again := c.Classify(r, nil); !equalClassification(got, again) {
			t.Fatal("Classify is not deterministic")
		}
		// As an HL7 message.
		if strings.HasPrefix(text, "MSH") || utf8.Valid(data) {
			if m, err := hl7.Parse(data); err == nil {
				if rep, err := FromHL7(m, time.UTC); err == nil {
					c.Classify(rep, nil)
				}
			}
		}
	})
}

func equalClassification(a, b Classification) bool {
	if a.RulesetVersion != b.RulesetVersion || len(a.Tags) != len(b.Tags) || len(a.Suppressed) != len(b.Suppressed) {
		return false
	}
	eq := func(x, y []Tag) bool {
		for i := range x {
			if x[i].Tag != y[i].Tag || len(x[i].Evidence) != len(y[i].Evidence) {
				return false
			}
			for j := range x[i].Evidence {
				if x[i].Evidence[j] != y[i].Evidence[j] {
					return false
				}
			}
		}
		return true
	}
	return eq(a.Tags, b.Tags) && eq(a.Suppressed, b.Suppressed)
}
