package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Reports placing text in a named field, for the abbreviation tests.
var (
	finalDx    = ln("22637-3", "Pathology report final diagnosis")
	microDesc  = ln("22635-7", "Pathology report microscopic observation")
	radFinding = ln("18782-3", "Radiology Study observation")
)

func pathText(id Coded, text string) *Report {
	return report(order(ln("60567-5", "Comprehensive pathology report panel"), "SP", obsText(id, text)))
}

func labText(text string) *Report {
	ob := obsText(Coded{Code: "CA", Text: "CA", System: "99LAB"}, text)
	ob.ValueType = "ST"
	return report(order(Coded{Code: "BMP", Text: "Basic metabolic panel", System: "99LAB"}, "CH", ob))
}

var (
	pathMal  = []string{TagPathology, TagMalignancy, TagNewCancer}
	pathSusp = []string{TagPathology, TagSuspectedMalignancy}
	pathOnly = []string{TagPathology}
)

// TestClassifyAbbreviations covers the abbreviation layer: the shorthand of
// issue 16, its expansion in the evidence, its false friends, and negation,
// hedges and context applied to it.
func TestClassifyAbbreviations(t *testing.T) {
	runClassifyCases(t, []classifyCase{
		// The shorthand diagnoses of the issue.
		{name: "SCC moderately differentiated", r: pathText(microDesc, "SCC, moderately differentiated"), want: pathMal, rule: "abbr-scc", match: "SCC", mod: "abbreviation: squamous cell carcinoma"},
		{name: "Hepatocellular ca.", r: pathText(microDesc, "Hepatocellular ca."), want: pathMal, rule: "abbr-ca", match: "ca", mod: "abbreviation: carcinoma"},
		{name: "invasive ca", r: pathText(microDesc, "Sections show invasive ca"), want: pathMal, rule: "abbr-ca"},
		{name: "Ca in situ", r: pathText(microDesc, "Ca in situ"), want: pathMal, rule: "abbr-ca-in-situ", match: "Ca in situ", mod: "abbreviation: carcinoma in situ"},
		{name: "GBM IDH-wildtype", r: pathText(microDesc, "GBM, IDH-wildtype"), want: pathMal, rule: "abbr-gbm", mod: "abbreviation: glioblastoma"},
		{name: "AML with NPM1 mutation", r: pathText(microDesc, "AML with NPM1 mutation"), want: pathMal, rule: "abbr-aml", mod: "acute myeloid leukaemia"},
		{name: "T-ALL anywhere", r: pathText(microDesc, "T-ALL"), want: pathMal, rule: "abbr-all-lineage", match: "T-ALL"},
		{name: "MDS with excess blasts", r: pathText(microDesc, "MDS with excess blasts"), want: pathMal, rule: "abbr-mds", mod: "myelodysplastic"},
		// Contexts that make a diagnosis.
		{name: "final diagnosis field", r: pathText(finalDx, "MM"), want: pathMal, rule: "abbr-mm", mod: "multiple myeloma"},
		{name: "final diagnosis by OBX-3 text", r: pathText(Coded{Code: "FDX", Text: "Final Diagnosis", System: "L"}, "BCC"), want: pathMal, rule: "abbr-bcc"},
		{name: "pre-operative diagnosis text is not a diagnosis field", r: pathText(Coded{Code: "PDX", Text: "Pre-operative diagnosis", System: "L"}, "BCC"), want: pathOnly},
		{name: "diagnosis header in the value", r: pathText(microDesc, "Gross: two cores.\nDIAGNOSIS: FL"), want: pathMal, rule: "abbr-fl"},
		{name: "specimen label colon", r: pathText(microDesc, "B. Lymph node, excision: MCL"), want: pathMal, rule: "abbr-mcl"},
		{name: "specimen label colon then bullet", r: pathText(microDesc, "LIVER, BIOPSY:\n- HCC"), want: pathMal, rule: "abbr-hcc"},
		{name: "stage token after", r: pathText(microDesc, "Tongue resection shows SCC pT2 pN0"), want: pathMal, rule: "abbr-scc"},
		{name: "DG1 text is a diagnosis", r: withDiag(report(), Coded{Text: "MDS"}), want: mal, rule: "abbr-mds"},
		{name: "unambiguous form anywhere", r: pathText(microDesc, "Block A2 contains NSCLC."), want: pathMal, rule: "abbr-nsclc"},
		{name: "prior NSCLC is history", r: pathText(microDesc, "Compare with prior NSCLC specimen."), want: pathOnly, mod: "history: prior"},
		{name: "lower-case dcis as before", r: pathText(microDesc, "foci of dcis"), want: pathMal, rule: "abbr-dcis"},
		// Negation, hedges and context apply to abbreviations.
		{name: "negated SCC", r: pathText(finalDx, "Negative for SCC."), want: pathOnly, rule: "abbr-scc", mod: "abbreviation: squamous cell carcinoma; negated: Negative for"},
		{name: "post-negated HCC", r: pathText(finalDx, "HCC is not identified."), want: pathOnly, mod: "negated: is not identified"},
		{name: "hedged HCC", r: pathText(microDesc, "Suspicious for HCC"), want: pathSusp, rule: "abbr-hcc", mod: "hedge: Suspicious for"},
		{name: "hedge-post FL", r: pathText(finalDx, "FL cannot be excluded"), want: pathSusp, rule: "abbr-fl"},
		{name: "history of CLL is prior", r: pathText(microDesc, "History of CLL."), want: pathOnly, mod: "history: History of"},
		{name: "rule out MM in history", r: pathText(ln("22636-5", "Relevant history"), "Rule out MM."), want: pathOnly, rule: "abbr-mm"},
		{name: "known MM is not new", r: pathText(finalDx, "Known MM, restaging marrow."), want: []string{TagPathology, TagMalignancy}, mod: "known: Known"},
		// False friends.
		{name: "calcium result labelled CA", r: labText("CA 9.4 mg/dL"), want: none},
		{name: "calcium value alone", r: labText("Ca 10.1"), want: none},
		{name: "calcium in a final diagnosis field", r: pathText(finalDx, "CA 9.4 mg/dL"), want: pathOnly},
		{name: "ionized Ca", r: pathText(finalDx, "ionized Ca"), want: pathOnly},
		{name: "Calcium (Ca)", r: pathText(finalDx, "Calcium (Ca)"), want: pathOnly},
		{name: "Ca++", r: pathText(finalDx, "Ca++ low"), want: pathOnly},
		{name: "CA 19-9 37 U/mL", r: pathText(finalDx, "CA 19-9 37 U/mL"), want: pathOnly},
		{name: "CA-125", r: pathText(finalDx, "CA-125 elevated"), want: pathOnly},
		{name: "CA 15-3 lab", r: labText("CA 15-3: 22"), want: none},
		{name: "California address with ZIP", r: pathText(finalDx, "DIAGNOSIS: see below.\nPerformed at 100 Test Way, San Diego, CA 92101"), want: pathOnly},
		{name: "California address at a line end", r: pathText(finalDx, "DIAGNOSIS: benign.\nReferred from Sacramento, CA"), want: pathOnly},
		{name: "ALL margins negative", r: pathText(finalDx, "ALL margins negative"), want: pathOnly},
		{name: "ALL upper-case sentence", r: pathText(finalDx, "ALL MARGINS ARE FREE OF TUMOUR."), want: pathOnly},
		{name: "all in lower case", r: pathText(finalDx, "all margins negative"), want: pathOnly},
		{name: "5 MM nodule", r: pathText(finalDx, "5 MM nodule"), want: pathOnly},
		{name: "1.5 MM in parentheses", r: pathText(finalDx, "MICROMETASTASIS (1.5 MM)"), want: pathMal, rule: "lex-metastasis"},
		{name: "2 x 3 MM", r: pathText(finalDx, "Polyp, 2 x 3 MM."), want: pathOnly},
		{name: "MCV 88 FL", r: labText("MCV 88 FL"), want: none},
		{name: "MCL tear", r: report(order(ln("24627-2", "MRI knee"), "MR", obsText(ln("19005-8", "Impression"), "Grade 2 MCL sprain."))), want: []string{TagImaging}},
		{name: "GBM thickening", r: pathText(finalDx, "Kidney: diffuse GBM thickening."), want: pathOnly},
		{name: "anti-GBM disease", r: pathText(finalDx, "Anti-GBM disease."), want: pathOnly},
		{name: "anterior mitral leaflet", r: report(order(ln("24627-2", "Echo"), "CUS", obsText(radFinding, "Echocardiogram: AML and PML are mildly thickened."))), want: []string{TagImaging}},
		{name: "relapsed ALL", r: pathText(microDesc, "Marrow shows relapsed ALL."), want: pathMal, rule: "abbr-all"},
		{name: "ALL, relapsed", r: pathText(microDesc, "ALL, relapsed."), want: pathMal, rule: "abbr-all"},
		{name: "ALL relapse: relapse is a follower", r: pathText(finalDx, "ALL relapse."), want: pathMal, rule: "abbr-all"},
		{name: "ALL blasts is read as English", r: pathText(finalDx, "ALL blasts 80%."), want: pathOnly},
		{name: "SCC before a number is not counted", r: pathText(finalDx, "SCC 2.1 cm."), want: pathOnly},
		{name: "SCC after its size is", r: pathText(finalDx, "2.1 cm SCC."), want: pathMal, rule: "abbr-scc"},
		{name: "ca. before a number is circa", r: pathText(finalDx, "Liver, biopsy: ca. 2 cm of tissue."), want: pathOnly},
		{name: "SCC antigen", r: labText("SCC antigen 1.4 ng/mL"), want: none},
		{name: "gist in lower case", r: pathText(finalDx, "The gist of the consult: benign."), want: pathOnly},
		{name: "abbreviation outside a diagnosis", r: pathText(microDesc, "Slides reviewed with the MM service."), want: pathOnly},
	})
}

// TestClassifyOtherLanguages covers Spanish and Portuguese forms: malignant
// neoplasms named in the report's language are malignancy, and the
// language's negations and hedges apply.
func TestClassifyOtherLanguages(t *testing.T) {
	runClassifyCases(t, []classifyCase{
		{name: "Neoplasia maligna", r: textReport("Neoplasia maligna de pulmón."), want: mal, rule: "lex-malignancy-es-pt", match: "Neoplasia maligna"},
		{name: "NEOPLASIA MALIGNA upper case", r: textReport("NEOPLASIA MALIGNA."), want: mal},
		{name: "neoplasia alone stays suspected", r: textReport("Neoplasia de bajo grado."), want: susp},
		{name: "cáncer", r: textReport("Cáncer de mama."), want: mal, match: "Cáncer"},
		{name: "cáncer written without accent", r: textReport("Cancer de mama."), want: mal},
		{name: "tumor maligno", r: textReport("Tumor maligno de colon."), want: mal},
		{name: "linfoma no Hodgkin", r: textReport("Linfoma no Hodgkin difuso de células grandes B."), want: mal, match: "Linfoma no Hodgkin"},
		{name: "negativo para malignidad", r: textReport("Negativo para malignidad."), want: none, mod: "negated: Negativo para"},
		{name: "sin evidencia de neoplasia maligna", r: textReport("Sin evidencia de neoplasia maligna."), want: none},
		{name: "negativo para neoplasia", r: textReport("Negativo para neoplasia."), want: none},
		{name: "sospechoso de carcinoma", r: textReport("Sospechoso de carcinoma."), want: susp, mod: "hedge: Sospechoso de"},
		{name: "no se descarta linfoma", r: textReport("No se descarta linfoma."), want: susp},
		{name: "antecedente de cáncer", r: textReport("Antecedente de cáncer de mama."), want: none, mod: "history"},
		{name: "Portuguese ausência de", r: textReport("Ausência de neoplasia maligna."), want: none},
		{name: "premaligna with hyphen", r: textReport("Lesión pre-maligna."), want: none},
	})
}

// TestLatin1Fold checks that accented letters fold in patterns and in text,
// and that evidence offsets cover the original bytes.
func TestLatin1Fold(t *testing.T) {
	for in, want := range map[string]string{"Cáncer": "cancer", "DIAGNÓSTICO": "diagnostico", "mieloma múltiple": "mieloma multiple", "3×4": "3×4", "Ñandú": "nandu"} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	text := "Diagnóstico: CÁNCER."
	got := c.Classify(textReport(text), nil)
	found := false
	for _, tg := range got.Tags {
		for _, e := range tg.Evidence {
			if tg.Tag == TagMalignancy {
				found = true
				if text[e.Start:e.End] != "CÁNCER" || e.Match != "CÁNCER" {
					t.Errorf("evidence span %d:%d = %q, want CÁNCER", e.Start, e.End, text[e.Start:e.End])
				}
			}
		}
	}
	if !found {
		t.Fatalf("no malignancy in %q: %+v", text, got)
	}
}

// TestAbbreviationRuleErrors checks the validation of the abbreviations
// section.
func TestAbbreviationRuleErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no expansion", "version: x\nabbreviations:\n  - {id: a, tag: malignancy, forms: [X]}\n", "abbreviations[0]: expansion is required"},
		{"no forms", "version: x\nabbreviations:\n  - {id: a, tag: malignancy, expansion: y}\n", "abbreviations[0].forms: at least one form is required"},
		{"bad context", "version: x\nabbreviations:\n  - {id: a, tag: malignancy, expansion: y, forms: [X], context: sometimes}\n", `unknown context "sometimes"`},
		{"bad collision", "version: x\nabbreviations:\n  - {id: a, tag: malignancy, expansion: y, forms: [X], collides: [drug]}\n", `unknown collision "drug"`},
		{"form with punctuation at an end", "version: x\nabbreviations:\n  - {id: a, tag: malignancy, expansion: y, forms: [\"ca.\"]}\n", "abbreviations[0].forms[0]: a form must start and end with a letter or digit"},
		{"duplicate id with lexicon", "version: x\nlexicon:\n  - {id: a, kind: pseudo, phrases: [x]}\nabbreviations:\n  - {id: a, tag: malignancy, expansion: y, forms: [X]}\n", `duplicate rule id "a"`},
		{"bad tag", "version: x\nabbreviations:\n  - {id: a, tag: Bad!, expansion: y, forms: [X]}\n", `invalid tag "Bad!"`},
		{"diagnosis header context", "version: x\nlexicon:\n  - {id: h, kind: pseudo, context: diagnosis, phrases: [x]}\n", `context "diagnosis" does not fit kind "pseudo"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadRuleSet([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// A valid abbreviation in a minimal rule set compiles and matches in a
	// diagnosis header only.
	rs, err := LoadRuleSet([]byte("version: x\nlexicon:\n  - {id: h, kind: header, context: diagnosis, phrases: [dx]}\nabbreviations:\n  - {id: a, tag: malignancy, expansion: zeta cell carcinoma, forms: [ZCC]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	runClassifyCases(t, []classifyCase{
		{name: "custom abbreviation in a diagnosis", rs: rs, r: textReport("Dx: ZCC"), want: mal, mod: "abbreviation: zeta cell carcinoma"},
		{name: "custom abbreviation elsewhere", rs: rs, r: textReport("ZCC"), want: none},
		{name: "custom abbreviation lower case", rs: rs, r: textReport("Dx: zcc"), want: none},
	})
}

// TestExtendAbbreviations checks that a site's rules: section adds its own
// abbreviations, validated like the default ones, and that an extension
// without them keeps the version it had before the section existed.
func TestExtendAbbreviations(t *testing.T) {
	ext, err := DecodeRuleSetExtension([]byte("abbreviations:\n  - {id: site-abbr-cca, tag: malignancy, expansion: cholangiocarcinoma, forms: [CCA]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := DefaultRuleSet().Extend(ext)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rs.Version(), DefaultRuleSet().Version()+"+local.") {
		t.Errorf("version = %q", rs.Version())
	}
	runClassifyCases(t, []classifyCase{
		{name: "site abbreviation in a diagnosis", rs: rs, r: pathText(microDesc, "Liver, biopsy: CCA."), want: pathMal, rule: "site-abbr-cca", mod: "abbreviation: cholangiocarcinoma"},
		{name: "site abbreviation elsewhere", rs: rs, r: pathText(microDesc, "Discussed at the CCA meeting."), want: pathOnly},
	})
	if _, err := DefaultRuleSet().Extend(RuleSetExtension{Abbreviations: []Abbreviation{{ID: "abbr-scc", Tag: TagMalignancy, Expansion: "x", Forms: []string{"X"}}}}); err == nil || !strings.Contains(err.Error(), `abbreviations[0].id: duplicate rule id "abbr-scc"`) {
		t.Errorf("duplicate id: err = %v", err)
	}
	// The canonical YAML of an extension without abbreviations has no
	// abbreviations key, so its +local hash is unchanged by the new field.
	local, err := DefaultRuleSet().Extend(RuleSetExtension{Tags: map[string]bool{"imaging": false}})
	if err != nil {
		t.Fatal(err)
	}
	canon, err := yaml.Marshal(RuleSetExtension{Tags: map[string]bool{"imaging": false}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(canon), "abbreviations") {
		t.Errorf("canonical YAML names abbreviations: %s", canon)
	}
	sum := sha256.Sum256(canon)
	if want := DefaultRuleSet().Version() + "+local." + hex.EncodeToString(sum[:6]); local.Version() != want {
		t.Errorf("version = %q, want %q", local.Version(), want)
	}
}
