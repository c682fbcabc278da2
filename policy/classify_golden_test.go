package policy

import (
	"bytes"
	"encoding/json"
	stdflag "flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7"
)

// update rewrites golden files under testdata instead of comparing with them
// (go test ./policy -run Golden -update). It is shared by every golden test in
// package policy.
var update = stdflag.Bool("update", false, "rewrite golden files under testdata")

// goldenTags are the tags each synthetic fixture must carry, checked before
// the golden comparison so that an -update cannot silently bless a wrong answer.
var goldenTags = map[string][]string{
	"surgical_breast_carcinoma":       {TagPathology, TagMalignancy, TagNewCancer},
	"cervical_cytology_nilm":          {TagPathology, TagCytology},
	"mammogram_birads4":               {TagImaging, TagSuspectedMalignancy},
	"ct_chest_no_recurrence":          {TagImaging},
	"psa_high":                        {TagTumorMarker},
	"genetic_brca":                    {TagGenetic},
	"routine_cbc":                     {},
	"coded_values_known_cancer":       {TagPathology, TagMalignancy},
	"thyroid_fna_bethesda_v":          {TagPathology, TagCytology, TagSuspectedMalignancy},
	"mdm_prostate_biopsy_repetitions": {TagPathology, TagMalignancy, TagNewCancer},
	// Shorthand (rule set 2026.12.0): AML counts; CLL is history and negated,
	// "r/o MDS" a query, "ALL cores" English, "not ... T-ALL" negated.
	"heme_marrow_shorthand": {TagPathology, TagMalignancy},
	// False friends: a calcium result labelled CA, ionized and corrected Ca,
	// MM as millimetres, a California address.
	"lab_calcium_false_friends": {},
	// "22 MM mass", "5 MM nodule", CA 19-9 and CA-125 values are not
	// shorthand; "suspicious for NSCLC" is.
	"ct_chest_shorthand": {TagImaging, TagSuspectedMalignancy},
}

// TestClassifyGolden classifies the synthetic messages in testdata/classify
// (FromHL7 + Classify) and compares the JSON with the .golden.json files.
func TestClassifyGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "classify", "*.hl7"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hl7")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := hl7.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			r, err := FromHL7(m, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Classify(r, nil)
			want, ok := goldenTags[name]
			if !ok {
				t.Fatalf("fixture %s has no entry in goldenTags", name)
			}
			names := tagNames(got)
			if names == nil {
				names = []string{}
			}
			if !equalStrings(names, want) {
				t.Errorf("tags = %v, want %v\n%+v", names, want, got.Tags)
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			golden := filepath.Join("testdata", "classify", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(out, exp) {
				t.Errorf("output differs from %s (run with -update after checking):\n%s", golden, out)
			}
		})
	}
}
