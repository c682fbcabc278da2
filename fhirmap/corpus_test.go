package fhirmap

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/testutil"
)

// namedInputErrors are the errors Bundle may give for input it must refuse.
// ErrInvalidBundle is not among them: a corpus message must never produce an
// invalid Bundle.
var namedInputErrors = []error{ErrUnsupportedMessage, ErrNoResults, ErrMultiplePatients, ErrResultStatus}

// TestCorpus maps every ORU and MDM message of the shared public corpus
// (../shared/corpus; skipped when absent). Each must give a Bundle that
// validates with google/fhir/go, or one of the named input errors.
func TestCorpus(t *testing.T) {
	dir := testutil.CorpusDir(t)
	var mapped, refused int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".hl7") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		msgs, err := hl7.SplitMessages(data)
		if err != nil {
			// Unsplittable input is the parser's test, not ours.
			t.Logf("%s: not split: %v", path, err)
			return nil
		}
		for i, raw := range msgs {
			m, err := hl7.Parse(raw)
			if err != nil {
				t.Logf("%s #%d: not parsed: %v", path, i+1, err)
				continue
			}
			code, _, _ := m.Type()
			if code != "ORU" && code != "MDM" {
				continue
			}
			name, _ := filepath.Rel(dir, path)
			if len(msgs) > 1 {
				name += "#" + strconv.Itoa(i+1)
			}
			rel := testRelease()
			out, err := bundleChecked(t, m, rel, testOptions(t))
			switch {
			case err == nil:
				mapped++
				if verr := Validate(out); verr != nil {
					t.Errorf("%s: output does not validate: %v", name, verr)
				}
				// A report whose OBR is followed by OBX must carry content: an
				// empty report released to a patient is worse than none.
				b := decode(t, out)
				if hasResultOBX(m) && len(b.resources("Observation")) == 0 && !strings.Contains(string(out), `"presentedForm"`) {
					t.Errorf("%s: message has result OBX but the Bundle has no Observation or presentedForm", name)
				}
				again, _ := Bundle(m, rel, testOptions(t))
				if string(again) != string(out) {
					t.Errorf("%s: not deterministic", name)
				}
			case isNamed(err):
				refused++
				t.Logf("%s: refused: %v", name, err)
			default:
				t.Errorf("%s: %v", name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("corpus: %d mapped, %d refused with a named error", mapped, refused)
	if mapped < 30 {
		t.Errorf("only %d corpus messages mapped; expected most of the ~40 ORU/MDM files", mapped)
	}
}

func isNamed(err error) bool {
	for _, e := range namedInputErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// hasResultOBX reports whether an OBX follows an OBR (or a TXA) in m.
func hasResultOBX(m *hl7.Message) bool {
	seen := false
	for _, s := range m.Segments() {
		switch s.Name() {
		case "OBR", "TXA":
			seen = true
		case "OBX":
			if seen {
				return true
			}
		}
	}
	return false
}
