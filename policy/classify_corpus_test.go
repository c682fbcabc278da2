package policy

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/testutil"
)

// sensitiveTags are the tags that mark a result as sensitive.
var sensitiveTags = []string{TagPathology, TagCytology, TagImaging, TagGenetic, TagTumorMarker, TagMalignancy, TagSuspectedMalignancy, TagNewCancer}

// classifyFile parses every message in path and classifies it.
func classifyFile(t *testing.T, c *Classifier, path string) []Classification {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := hl7.SplitMessages(data)
	if err != nil {
		t.Fatalf("%s: split: %v", path, err)
	}
	var out []Classification
	for _, raw := range msgs {
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Logf("%s: parse: %v (skipped)", path, err)
			continue
		}
		r, err := FromHL7(m, time.UTC)
		if err != nil {
			t.Fatalf("%s: FromHL7: %v", path, err)
		}
		out = append(out, c.Classify(r, nil))
	}
	return out
}

func tagNames(cl Classification) []string {
	var names []string
	for _, t := range cl.Tags {
		names = append(names, t.Tag)
	}
	return names
}

// TestCorpusNAACCRPathology checks that every NAACCR Vol V cancer pathology
// report in the shared corpus is tagged pathology and malignancy.
func TestCorpusNAACCRPathology(t *testing.T) {
	dir := filepath.Join(testutil.CorpusDir(t), "connect-r-and-d")
	files, _ := filepath.Glob(filepath.Join(dir, "*naaccr*.hl7"))
	if len(files) == 0 {
		t.Skip("no NAACCR files in the corpus")
	}
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cls := classifyFile(t, c, f)
			if len(cls) == 0 {
				t.Fatal("no message parsed")
			}
			for _, cl := range cls {
				if !cl.Has(TagPathology) || !cl.Has(TagMalignancy) {
					t.Errorf("tags = %v, want pathology and malignancy", tagNames(cl))
				}
			}
		})
	}
}

// TestCorpusRoutineLab checks that routine laboratory messages (CBC, CMP,
// blood gases, public-health ELR) carry no sensitive tag.
func TestCorpusRoutineLab(t *testing.T) {
	corpus := testutil.CorpusDir(t)
	routine := []string{
		"connect/oru_r01_cbc_local_loinc.hl7",
		"connect/oru_r01_large_cbc_cmp_nte.hl7",
		"connect/oru_r01_small_cmp.hl7",
		"FHIR-Converter/lab_oru_1_utf8_bom.hl7",
		"FHIR-Converter/lri_ng_cbc_typ.hl7",
		"python-hl7/oru_r01_ghh_lab_glucose.hl7",
		"node-hl7-complete/athena_oru_r01.hl7",
		"node-hl7-complete/cerner_bordetella.hl7",
		"node-hl7-complete/cerner_en.hl7",
		"node-hl7-complete/cerner_lead.hl7",
		"node-hl7-complete/nist_oru_r01_251_case1.hl7",
		"node-hl7-complete/nist_oru_r01_251_case2.hl7",
		"node-hl7-complete/nist_oru_r01_251_case3.hl7",
		"node-hl7-complete/nist_oru_r01_251_case4.hl7",
		"node-hl7-complete/nist_oru_r01_251_case5.hl7",
		"node-hl7-complete/nist_oru_r01_251_case6.hl7",
		"node-hl7-complete/realm_animal_rabies.hl7",
		"node-hl7-complete/realm_campylobacter_jejuni.hl7",
		"node-hl7-complete/realm_cj_joeslab.hl7",
		"node-hl7-complete/realm_hepatitis_c_virus.hl7",
		"nHapi/oru_r01_olis_nte_br_F_table.hl7",
		"clinical-document-library-dotnet/au_pathology_report_fbc_pdf.hl7",
	}
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range routine {
		t.Run(rel, func(t *testing.T) {
			path := filepath.Join(corpus, rel)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("not in corpus: %v", err)
			}
			for _, cl := range classifyFile(t, c, path) {
				for _, tag := range sensitiveTags {
					if tg, ok := findTag(cl, tag); ok {
						t.Errorf("tag %s on a routine lab message: %+v", tag, tg.Evidence)
					}
				}
			}
		})
	}
}

func findTag(cl Classification, tag string) (Tag, bool) {
	for _, t := range cl.Tags {
		if t.Tag == tag {
			return t, true
		}
	}
	return Tag{}, false
}

// TestCorpusSurvey classifies every corpus message and logs the tags, so a
// rule change that moves many results shows up in -v output. It asserts only
// that nothing panics.
func TestCorpusSurvey(t *testing.T) {
	corpus := testutil.CorpusDir(t)
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	_ = filepath.Walk(corpus, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".hl7") && !strings.Contains(p, "badinputs") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		msgs, err := hl7.SplitMessages(data)
		if err != nil {
			continue
		}
		for _, raw := range msgs {
			m, err := hl7.Parse(raw)
			if err != nil {
				continue
			}
			r, _ := FromHL7(m, time.UTC)
			cl := c.Classify(r, nil)
			rel, _ := filepath.Rel(corpus, f)
			t.Logf("%-70s %v", rel, tagNames(cl))
		}
	}
}
