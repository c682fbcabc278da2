package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/internal/testutil"
)

func TestDefaultRuleSetLoads(t *testing.T) {
	rs := DefaultRuleSet()
	if rs.Version() == "" {
		t.Fatal("default rule set has no version")
	}
	if len(rs.Coded.SNOMED.Concepts) < 200 {
		t.Errorf("SNOMED CT list has %d concepts, want a substantial list", len(rs.Coded.SNOMED.Concepts))
	}
	if _, err := NewClassifier(rs); err != nil {
		t.Fatal(err)
	}
	// Every embedded phrase normalises to something and compiles.
	if _, err := LoadRuleSet(DefaultRuleSetYAML()); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRuleSetErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"empty document", ``, "invalid rule set: empty document"},
		{"unknown top-level key", "version: x\nlexicons: []\n", "line 2: field lexicons not found"},
		{"unknown nested key", "version: x\nsettings:\n  pre_windw: 3\n", "line 3: field pre_windw not found"},
		{"missing version", "released: x\n", "version: version is required"},
		{"bad window", "version: x\nsettings:\n  pre_window: 500\n", "line 3: settings.pre_window: must be 0..100"},
		{"bad uncertain setting", "version: x\nsettings:\n  uncertain_neoplasm: maybe\n", `line 3: settings.uncertain_neoplasm: "maybe" is not`},
		{"unknown kind", "version: x\nlexicon:\n  - id: a\n    kind: negation\n    phrases: [no]\n", `line 4: lexicon[0].kind: unknown kind "negation"`},
		{"term without tag", "version: x\nlexicon:\n  - id: a\n    kind: term\n    phrases: [x]\n", `lexicon[0].tag: invalid tag ""`},
		{"bad tag", "version: x\nlexicon:\n  - id: a\n    kind: term\n    tag: Malignancy!\n    phrases: [x]\n", `line 5: lexicon[0].tag: invalid tag "Malignancy!"`},
		{"duplicate id", "version: x\nlexicon:\n  - {id: a, kind: pseudo, phrases: [x]}\n  - {id: a, kind: pseudo, phrases: [y]}\n", `lexicon[1].id: duplicate rule id "a"`},
		{"empty phrase", "version: x\nlexicon:\n  - {id: a, kind: pseudo, phrases: [\" - \"]}\n", "lexicon[0].phrases[0]: empty phrase"},
		{"no phrases", "version: x\nlexicon:\n  - {id: a, kind: pseudo}\n", "lexicon[0].phrases: at least one phrase"},
		{"context without kind", "version: x\nlexicon:\n  - {id: a, kind: context-pre, phrases: [x]}\n", "context-pre needs context"},
		{"bad context", "version: x\nlexicon:\n  - {id: a, kind: context-pre, context: gossip, phrases: [x]}\n", `context "gossip" does not fit`},
		{"bad range bound", "version: x\ncoded:\n  icd10:\n    ranges:\n      - {id: r, from: \"C-0\", to: C96, tag: malignancy}\n", `coded.icd10.ranges[0].from: invalid bound "C-0"`},
		{"range reversed", "version: x\ncoded:\n  icd10:\n    ranges:\n      - {id: r, from: C96, to: C00, tag: malignancy}\n", `from "C96" is after to "C00"`},
		{"bad behaviour", "version: x\ncoded:\n  icdo3:\n    id: b\n    behaviours: {\"33\": malignancy}\n", `behaviour "33" is not one digit`},
		{"snomed without version", "version: x\ncoded:\n  snomed:\n    id: s\n    concepts: [{code: \"363346000\"}]\n", "version is required for the SNOMED CT list"},
		{"bad snomed id", "version: x\ncoded:\n  snomed:\n    id: s\n    version: v\n    concepts: [{code: \"12ab\"}]\n", `invalid SNOMED CT identifier "12ab"`},
		{"category value upper case", "version: x\ncategories:\n  - {id: c, system: S, keywords: [k], values: {\"4A\": malignancy}}\n", `value "4A" must be lower case`},
		{"category prior not a value", "version: x\ncategories:\n  - {id: c, system: S, keywords: [k], values: {\"4\": malignancy}, prior: [\"6\"]}\n", `prior value "6" is not in values`},
		{"code rule without codes", "version: x\ncodes:\n  - {id: c, system: LN, tags: [pathology]}\n", "codes[0].codes: at least one code"},
		{"code rule without system", "version: x\ncodes:\n  - {id: c, codes: [\"1-1\"], tags: [pathology]}\n", "codes[0]: system is required"},
		{"bad section", "version: x\ncodes:\n  - {id: c, system: LN, codes: [\"1-1\"], section: intro}\n", `unknown section "intro"`},
		{"name with bad kind", "version: x\nnames:\n  - {id: n, kind: term, tag: x, phrases: [a]}\n", `names[0].kind: unknown kind "term"`},
		{"prefix on a lexicon group", "version: x\nlexicon:\n  - {id: a, kind: pseudo, prefix: true, phrases: [x]}\n", "are for names only"},
		{"two documents", "version: x\n---\nversion: y\n", "more than one YAML document"},
		{"not a mapping", "- a\n- b\n", "cannot unmarshal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadRuleSet([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !errors.Is(err, ErrRuleSet) {
				t.Errorf("error %v does not wrap ErrRuleSet", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadRuleSetMinimalExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "rules", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := LoadRuleSet(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClassifier(rs)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Classify(report(order(Coded{Code: "X"}, "SP", obsText(dxID, "Carcinoma. Negative for carcinoma in the margin."))), nil)
	if want := []string{TagPathology, TagMalignancy, TagNewCancer}; !equalStrings(tagNames(got), want) {
		t.Errorf("tags = %v, want %v", tagNames(got), want)
	}
	if got.RulesetVersion != "example-1" {
		t.Errorf("version = %q", got.RulesetVersion)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExtendFromConfigExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata", "rules", "site-extension.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ext, err := DecodeRuleSetExtension(data)
	if err != nil {
		t.Fatal(err)
	}
	base := DefaultRuleSet()
	rs, err := base.Extend(ext)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rs.Version(), base.Version()+"+local.") || len(rs.Version()) != len(base.Version())+len("+local.")+12 {
		t.Errorf("extended version = %q", rs.Version())
	}
	rs2, _ := base.Extend(ext)
	if rs2.Version() != rs.Version() {
		t.Errorf("extension version is not stable: %q vs %q", rs.Version(), rs2.Version())
	}
	if base.Version() != DefaultRuleSet().Version() || len(base.Codes) != len(DefaultRuleSet().Codes) {
		t.Error("Extend modified the base rule set")
	}
	c, err := NewClassifier(rs)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		r    *Report
		want []string
	}{
		{"local pathology code", report(order(Coded{Code: "SP-TISSUE", System: "99HOSP"}, "")), []string{TagPathology}},
		{"custom hiv term", textReport("HIV-1 RNA detected."), []string{"hiv"}},
		{"imaging switched off", report(order(ln("18748-4", "Imaging"), "RAD")), []string{}},
		{"local hedge phrase", textReport("We cannot entirely exclude lymphoma."), []string{TagSuspectedMalignancy}},
		{"local name", report(order(Coded{Code: "OMP", Text: "Oncology Molecular Panel", System: "L"}, "")), []string{TagGenetic}},
		{"local context section", report(order(Coded{Code: "X", System: "L"}, "", obsText(Coded{Code: "99HOSP-HX", System: "LN"}, "Breast carcinoma."))), []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tagNames(c.Classify(tc.r, nil))
			if got == nil {
				got = []string{}
			}
			if !equalStrings(got, tc.want) {
				t.Errorf("tags = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExtendEmptyKeepsVersion(t *testing.T) {
	base := DefaultRuleSet()
	rs, err := base.Extend(RuleSetExtension{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Version() != base.Version() {
		t.Errorf("empty extension changed the version to %q", rs.Version())
	}
}

func TestExtendErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown key", "local_code: []\n", "line 1: field local_code not found"},
		{"local code without system", "local_codes:\n  - {id: a, codes: [X], tags: [pathology]}\n", "local_codes[0]: system is required"},
		{"duplicate of a default id", "phrases:\n  - {id: lex-carcinoma, kind: term, tag: malignancy, phrases: [x]}\n", `duplicate rule id "lex-carcinoma"`},
		{"bad tag switch", "tags:\n  Imaging: false\n", `tags.Imaging: invalid tag "Imaging"`},
		{"bad uncertain", "uncertain_neoplasm: often\n", `uncertain_neoplasm: "often" is not`},
		{"bad phrase kind", "phrases:\n  - {id: z, kind: maybe, phrases: [x]}\n", `phrases[0].kind: unknown kind "maybe"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ext, err := DecodeRuleSetExtension([]byte(tc.yaml))
			if err == nil {
				_, err = DefaultRuleSet().Extend(ext)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewClassifierNil(t *testing.T) {
	if _, err := NewClassifier(nil); !errors.Is(err, ErrRuleSet) {
		t.Errorf("err = %v", err)
	}
	var rs *RuleSet
	if rs.Version() != "" {
		t.Error("nil version")
	}
	if _, err := rs.Extend(RuleSetExtension{}); err == nil {
		t.Error("extending nil should fail")
	}
}

func TestNormalizeAndMorphology(t *testing.T) {
	for in, want := range map[string]string{
		"Non-Hodgkin's  Lymphoma": "non hodgkins lymphoma",
		"CA 19-9":                 "ca 19 9",
		"  BI–RADS\t4 ":           "bi rads 4",
		"r/o":                     "r/o",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]byte{"8140/3": '3', "81403": '3', "M-8500/2": '2', "M80703": '3', "9590/33": '3'} {
		if got, ok := morphologyBehaviour(in); !ok || got != want {
			t.Errorf("morphologyBehaviour(%q) = %c %v", in, got, ok)
		}
	}
	for _, in := range []string{"C50.9", "1234/3", "8140", "8140/", "81403x"} {
		if _, ok := morphologyBehaviour(in); ok {
			t.Errorf("morphologyBehaviour(%q) accepted", in)
		}
	}
	for in, want := range map[string]bool{"C50.911": true, "C7A.1": true, "Z85.3": true, "D3A.010": true, "C509": true, "8140/3": false, "CA": false, "C5.09": false} {
		if got := looksICD10(in); got != want {
			t.Errorf("looksICD10(%q) = %v", in, got)
		}
	}
}
