package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/testutil"
)

// TestDumpFromHL7Classify writes, when RESULTGATE_POLICY_DUMP names a file,
// the JSON of FromHL7 (with the patient ID, which the Report's JSON leaves
// out) and of Classify for every message under policy/testdata, testdata and
// the shared corpus (when present), in a fixed order. It is a differential
// check for changes that must not change results: dump before and after, and
// compare the files byte for byte. Without the variable it is skipped.
func TestDumpFromHL7Classify(t *testing.T) {
	out := os.Getenv("RESULTGATE_POLICY_DUMP")
	if out == "" {
		t.Skip("RESULTGATE_POLICY_DUMP not set")
	}
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	files := messageFiles(t)
	var b strings.Builder
	n, bad := 0, 0
	locs := []*time.Location{time.UTC, time.FixedZone("UTC-5", -5*3600)}
	for _, ff := range files {
		f := ff.name
		data, err := os.ReadFile(ff.path)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := hl7.SplitMessages(data)
		if err != nil {
			fmt.Fprintf(&b, "%s: split: %v\n", f, err)
			bad++
			continue
		}
		for i, raw := range msgs {
			m, err := hl7.Parse(raw)
			if err != nil {
				fmt.Fprintf(&b, "%s #%d: parse: %v\n", f, i, err)
				bad++
				continue
			}
			for _, loc := range locs {
				r, err := FromHL7(m, loc)
				if err != nil {
					fmt.Fprintf(&b, "%s #%d: FromHL7: %v\n", f, i, err)
					continue
				}
				rj, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				cj, err := json.Marshal(c.Classify(r, nil))
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s #%d %s\npatient %q\nreport %s\nclass %s\n", f, i, loc, r.PatientID, rj, cj)
				n++
			}
		}
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d files, %d classifications, %d inputs that do not split or parse", len(files), n, bad)
}

// messageFile is a file of HL7 messages, named by its root's index and its
// path under the root, so dumps made from different checkouts compare equal.
type messageFile struct{ path, name string }

// messageFiles lists the message files under policy/testdata, testdata,
// hl7/testdata and the shared corpus (when present), sorted by name.
func messageFiles(t *testing.T) []messageFile {
	roots := []string{"testdata", filepath.Join("..", "testdata"), filepath.Join("..", "hl7", "testdata")}
	if dir := os.Getenv("RESULTGATE_CORPUS"); dir != "" {
		roots = append(roots, dir)
	} else if dir := filepath.Join(testutil.RepoRoot(t), "..", "shared", "corpus"); isDir(dir) {
		roots = append(roots, dir)
	}
	var files []messageFile
	for ri, root := range roots {
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && (strings.HasSuffix(p, ".hl7") || strings.HasSuffix(p, ".txt") || strings.HasSuffix(p, ".er7")) {
				rel, _ := filepath.Rel(root, p)
				files = append(files, messageFile{p, fmt.Sprintf("%d:%s", ri, filepath.ToSlash(rel))})
			}
			return nil
		})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files
}

// TestReportBuilderMatchesFromHL7 builds every test and corpus message with
// one ReportBuilder and checks that each report and its classification equal
// FromHL7's, and that every classification made earlier still reads the
// same after all the later messages (the builder reuses arrays, never the
// bytes of strings).
func TestReportBuilderMatchesFromHL7(t *testing.T) {
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	var rb ReportBuilder
	type kept struct {
		name string
		cl   Classification
		json []byte
	}
	var all []kept
	forEachMessage(t, func(name string, m *hl7.Message) {
		for _, loc := range []*time.Location{time.UTC, time.FixedZone("UTC-5", -5*3600)} {
			want, _ := FromHL7(m, loc)
			got, err := rb.FromHL7(m, loc)
			if err != nil {
				t.Fatal(err)
			}
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if string(wj) != string(gj) || want.PatientID != got.PatientID {
				t.Errorf("%s: ReportBuilder report differs:\n%s\n%s", name, gj, wj)
			}
			wc, _ := json.Marshal(c.Classify(want, nil))
			cl := c.Classify(got, nil)
			gc, _ := json.Marshal(cl)
			if string(wc) != string(gc) {
				t.Errorf("%s: classification of the ReportBuilder report differs:\n%s\n%s", name, gc, wc)
			}
			all = append(all, kept{name, cl, gc})
		}
	})
	for _, k := range all {
		if j, _ := json.Marshal(k.cl); string(j) != string(k.json) {
			t.Errorf("%s: classification changed after later messages:\n%s\n%s", k.name, j, k.json)
		}
	}
	if len(all) == 0 {
		t.Fatal("no messages")
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// TestClassifyPooledMatchesClassify runs the classify step's pooled path
// (FromHL7Pooled + ClassifyPooled, both released after each message, as the
// router does) over every message, twice over so that every result is built
// in arrays an earlier message used, and compares each with FromHL7 + Classify.
func TestClassifyPooledMatchesClassify(t *testing.T) {
	c, err := NewClassifier(DefaultRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for round := range 2 {
		forEachMessage(t, func(name string, m *hl7.Message) {
			for _, h := range []History{nil, priorHistory(true)} {
				want, _ := FromHL7(m, time.UTC)
				wj, _ := json.Marshal(c.Classify(want, h))
				r, releaseReport, err := FromHL7Pooled(m, time.UTC)
				if err != nil {
					t.Fatal(err)
				}
				cl, releaseResult := c.ClassifyPooled(r, h)
				gj, _ := json.Marshal(cl)
				releaseResult()
				releaseReport()
				if string(gj) != string(wj) {
					t.Errorf("round %d, %s (history %T): pooled classification differs:\n%s\n%s", round, name, h, gj, wj)
				}
				n++
			}
		})
	}
	if n == 0 {
		t.Fatal("no messages")
	}
}

// forEachMessage calls fn for every message of messageFiles that splits and
// parses, named "file #index".
func forEachMessage(t *testing.T, fn func(name string, m *hl7.Message)) {
	t.Helper()
	for _, ff := range messageFiles(t) {
		data, err := os.ReadFile(ff.path)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := hl7.SplitMessages(data)
		if err != nil {
			continue
		}
		for i, raw := range msgs {
			if m, err := hl7.Parse(raw); err == nil {
				fn(fmt.Sprintf("%s #%d", ff.name, i), m)
			}
		}
	}
}
