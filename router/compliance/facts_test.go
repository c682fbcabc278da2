package compliance

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/policy"
	"github.com/resultgate/resultgate/report"
)

// fromHL7 is the policy side of a Builder for these tests: the report in
// the given time zone.
type fromHL7 struct{ loc *time.Location }

func (f fromHL7) Report(m *hl7.Message) (*policy.Report, error) { return policy.FromHL7(m, f.loc) }

// factsOfWhole is what reportFacts read before factSegments: the whole
// message parsed and reported.
func factsOfWhole(b *Builder, data []byte) (report.Demographics, time.Time) {
	m, err := hl7.ParseWithOptions(data, hl7.ParseOptions{NoCopy: true})
	if err != nil {
		return report.Demographics{}, time.Time{}
	}
	return b.factsOf(m)
}

// messages returns the repository's HL7 test messages and, when present,
// the shared corpus (read from its place, never copied).
func messages(t *testing.T) map[string][]byte {
	t.Helper()
	root := testutil.RepoRoot(t)
	out := map[string][]byte{}
	read := func(path string) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Files keep one segment a line; some split several messages.
		data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\r")), []byte("\n"), []byte("\r"))
		for i, msg := range bytes.Split(data, []byte("\rMSH")) {
			if i > 0 {
				msg = append([]byte("MSH"), msg...)
			}
			out[path+"#"+string(rune('0'+i%10))] = msg
		}
	}
	for _, dir := range []string{"testdata/hl7", "testdata/explain", "testdata/bench", "policy/testdata/classify", "fhirmap/testdata"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.hl7"))
		for _, f := range files {
			read(f)
		}
	}
	corpus := filepath.Join(root, "..", "shared", "corpus")
	if st, err := os.Stat(corpus); err == nil && st.IsDir() {
		_ = filepath.WalkDir(corpus, func(path string, de os.DirEntry, err error) error {
			if err == nil && !de.IsDir() && !strings.EqualFold(filepath.Base(path), "SOURCES") {
				read(path)
			}
			return nil
		})
	}
	return out
}

// TestReportFactsFromFactSegments: the demographics and the finalisation
// time read from the MSH, PID, ORC and OBR segments alone are those read
// from the whole message, for every test message and the shared corpus.
func TestReportFactsFromFactSegments(t *testing.T) {
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	b := &Builder{Policy: fromHL7{loc: loc}, Log: zerolog.Nop()}
	msgs := messages(t)
	if len(msgs) < 40 {
		t.Fatalf("%d test messages found, want the repository's fixtures", len(msgs))
	}
	var withDem, withFin int
	for name, data := range msgs {
		if _, err := hl7.Parse(data); err != nil {
			// HL7_IN holds what the intake accepted and the pipeline
			// parsed; a report never reads anything else.
			continue
		}
		wantD, wantF := factsOfWhole(b, data)
		gotD, gotF := b.reportFacts(data)
		if gotD != wantD || !gotF.Equal(wantF) {
			t.Errorf("%s: facts %+v %v, from the whole message %+v %v", name, gotD, gotF, wantD, wantF)
		}
		if wantD.Known {
			withDem++
		}
		if !wantF.IsZero() {
			withFin++
		}
	}
	// The comparison is about messages that have something to find.
	if withDem < len(msgs)/2 || withFin < 10 {
		t.Fatalf("only %d of %d messages with a PID and %d with OBR-22", withDem, len(msgs), withFin)
	}
}

// TestFactSegments keeps MSH, PID, ORC and OBR, in order, and nothing else
// (OBRX is not OBR).
func TestFactSegments(t *testing.T) {
	in := "MSH|^~\\&|A\rPID|1||X\nPV1|1\r\nORC|RE\rOBR|1\rOBX|1|TX|||long text\rNTE|1\rOBRX|1\rOBR\rSPM|1\r"
	want := "MSH|^~\\&|A\rPID|1||X\rORC|RE\rOBR|1\rOBR\r"
	if got := string(factSegments([]byte(in))); got != want {
		t.Fatalf("factSegments = %q, want %q", got, want)
	}
}
