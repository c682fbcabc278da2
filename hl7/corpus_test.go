package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
)

// corpusInvalid lists the corpus files that SOURCES.md marks as invalid or
// malformed, with the error each must give. Every other file must parse.
//
// node-hl7-complete/invalid_siu_s12_bad_phone.hl7 is not here: its project flags
// it for a badly formatted phone number (an XTN data-type question), which is
// well-formed HL7 syntax; a parser that does no data-type validation rightly
// accepts it.
var corpusInvalid = map[string]error{
	"hl7apy/invalid_duplicate_encoding_chars.hl7":                 ErrBadDelimiters,
	"hapi-hl7v2/oru_r01_radiology_ct_chest_rotumor_malformed.hl7": ErrJoinedSegments,
	"node-hl7-complete/adt_a01_single_line_space_joined.hl7":      ErrJoinedSegments,
	"node-hl7-complete/mdm_t04_chest_xray_narrative_wrapped.hl7":  ErrJoinedSegments,
	"python-hl7/bad_batch_bhs_inside_message.hl7":                 ErrBadBatch,
	"python-hl7/bad_file_fhs_inside_message.hl7":                  ErrBadBatch,
}

var lineSplit = regexp.MustCompile(`\r\n|\r|\n`)

// expectedMessage is what a naive line-based reading of a file says about one
// message, computed without the parser.
type expectedMessage struct {
	controlID string
	segments  int
}

// naiveMessages splits a file into lines and groups them into messages at each
// MSH line, skipping batch headers and trailers. A line counts as a segment
// when it starts with a three-character ID followed by the message's field
// separator or the end of the line; other lines are wrapped text.
func naiveMessages(data []byte) []expectedMessage {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	var out []expectedMessage
	var fs byte
	for _, line := range lineSplit.Split(string(data), -1) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "MSH") && len(line) > 3 {
			fs = line[3]
			parts := strings.Split(line, string(fs))
			id := ""
			if len(parts) > 9 {
				id = parts[9]
			}
			out = append(out, expectedMessage{controlID: id, segments: 1})
			continue
		}
		if len(line) >= 3 {
			switch line[:3] {
			case "FHS", "BHS", "BTS", "FTS":
				continue
			}
		}
		isSeg := len(line) >= 3 && regexp.MustCompile(`^[A-Z][A-Z0-9]{2}$`).MatchString(line[:3]) && (len(line) == 3 || line[3] == fs)
		if isSeg && len(out) > 0 {
			out[len(out)-1].segments++
		}
	}
	return out
}

func corpusFiles(t *testing.T) (string, []string) {
	dir := testutil.CorpusDir(t)
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "badinputs" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".hl7") {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 60 {
		t.Fatalf("only %d corpus files under %s", len(files), dir)
	}
	return dir, files
}

// TestCorpusConformance: every valid corpus message parses, re-encodes
// byte-for-byte, and has the MSH-10 and segment count a naive line split finds;
// every invalid one fails with a clear error.
func TestCorpusConformance(t *testing.T) {
	dir, files := corpusFiles(t)
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			if want, bad := corpusInvalid[rel]; bad {
				err := parseAll(data)
				if !errors.Is(err, want) {
					t.Fatalf("want %v, got %v", want, err)
				}
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Line == 0 || pe.Segment == "" {
					t.Errorf("error does not locate the problem: %v", err)
				}
				t.Logf("rejected as expected: %v", err)
				return
			}
			msgs, err := SplitMessages(data)
			if err != nil {
				t.Fatalf("SplitMessages: %v", err)
			}
			expect := naiveMessages(data)
			if len(msgs) != len(expect) {
				t.Fatalf("%d messages, naive split finds %d", len(msgs), len(expect))
			}
			var joined []byte
			for i, mb := range msgs {
				m, err := Parse(mb)
				if err != nil {
					t.Fatalf("message %d: %v", i+1, err)
				}
				if !bytes.Equal(m.Encode(), mb) {
					t.Errorf("message %d does not re-encode byte-for-byte", i+1)
				}
				if got := m.Segments()[0].Field(10).Raw(); got != expect[i].controlID {
					t.Errorf("message %d: MSH-10 %q, want %q", i+1, got, expect[i].controlID)
				}
				if m.NumSegments() != expect[i].segments {
					t.Errorf("message %d: %d segments, want %d", i+1, m.NumSegments(), expect[i].segments)
				}
				// Everything else must not fail on real data either.
				_ = Describe(m).String()
				_ = m.MSH()
				_, _ = m.PID()
				_ = m.Group()
				ack, err := Parse(BuildACK(m, AA))
				if err != nil || ack.First("MSA").Field(2).Raw() != m.Segments()[0].Field(10).Raw() {
					t.Errorf("message %d: ACK does not parse or echo MSH-10: %v", i+1, err)
				}
				joined = append(joined, mb...)
			}
			if len(msgs) == 1 && bytes.HasPrefix(bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")), "\r\n \t"), []byte("MSH")) {
				m, err := Parse(data)
				if err != nil {
					t.Fatalf("whole file: %v", err)
				}
				if !bytes.Equal(m.Encode(), data) {
					t.Errorf("whole file does not re-encode byte-for-byte")
				}
			}
			if n := len(bytes.TrimSpace(joined)); n == 0 {
				t.Errorf("no message bytes")
			}
		})
	}
}

// parseAll splits and parses every message of data, returning the first error.
func parseAll(data []byte) error {
	msgs, err := SplitMessages(data)
	if err != nil {
		return err
	}
	for _, mb := range msgs {
		if _, err := Parse(mb); err != nil {
			return err
		}
	}
	return nil
}

// TestCorpusValues spot-checks decoded values in corpus files with tricky
// features (escapes, character sets, delimiters, BOM).
func TestCorpusValues(t *testing.T) {
	dir := testutil.CorpusDir(t)
	tests := []struct {
		file, path, want string
	}{
		{"nHapi/mdm_t02_hex_escapes_X0D_X0A_E.hl7", "OBX-5", "&#39;Thirty days have September,\rApril\nJune,\nand November.\nWhen short February is done,\\X0A\\all the rest have&nbsp;31.&#39"},
		{"nHapi/oru_r01_ft_br_repetitions.hl7", "OBX-5", "This\nis\nA Test"},
		{"nHapi/oru_r01_ft_br_repetitions.hl7", "OBX-5(3)", "SomeMoreText"},
		{"clinical-document-library-dotnet/au_pathology_report_fbc_pdf.hl7", "OBX(2)-6.1", "x10^12/L"},
		{"hl7apy/msh_only_custom_field_sep_bang.hl7", "MSH-2", "$r?@"},
		{"hl7apy/msh_only_H_N_highlight_escapes.hl7", "MSH-8", ""},
		{"hl7apy/rsp_k22_v27_truncation_char.hl7", "MSH-2", `^~\&#`},
		{"hapi-hl7v2/bar_p01_three_encoding_chars.hl7", "PID-3.3", "M10"},
		{"FHIR-Converter/lab_oru_1_utf8_bom.hl7", "MSH-3", ""},
		{"python-hl7/adt_a01_quoted_nulls.hl7", "PID-8", "F"},
		{"v2-to-fhir/oru_r01_lri_msh2_truncation_utf8.hl7", "MSH-18", "UNICODE UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.path, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Get(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.file == "hl7apy/msh_only_H_N_highlight_escapes.hl7" || tt.file == "FHIR-Converter/lab_oru_1_utf8_bom.hl7" {
				// Values not pinned here; the check is that they decode without
				// escape sequences left over.
				if strings.Contains(got, `\H\`) || strings.Contains(got, `\N\`) {
					t.Errorf("%s still has highlight escapes: %q", tt.path, got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("%s = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	// Latin-1 decoding of a real 8859/1 message.
	data, err := os.ReadFile(filepath.Join(dir, "hapi-hl7v2/olis_erp_z99_chem_zsegments.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Charset() != "8859/1" || m.First("ZNT") == nil || get(t, m, "ZNT-1.2") != "2.16.840.1.113883.3.59.1:4006" {
		t.Errorf("charset %q, ZNT %v", m.Charset(), m.First("ZNT") != nil)
	}
}

// TestCorpusBadInputs feeds the nHapi fuzzer-found inputs (which crashed, hung
// or overflowed nHapi) to every entry point: none may panic, and each must
// finish within a time bound.
func TestCorpusBadInputs(t *testing.T) {
	dir := filepath.Join(testutil.CorpusDir(t), "nHapi", "badinputs")
	files, err := filepath.Glob(filepath.Join(dir, "*.hl7"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad inputs in %s: %v", dir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan string, 1)
			go func() {
				defer func() {
					if r := recover(); r != nil {
						done <- fmt.Sprintf("panic: %v", r)
					}
				}()
				done <- exerciseAll(data)
			}()
			select {
			case res := <-done:
				if strings.HasPrefix(res, "panic") {
					t.Fatal(res)
				}
				t.Log(res)
			case <-time.After(5 * time.Second):
				t.Fatal("no result within 5s: the parser hangs on this input")
			}
		})
	}
}

// exerciseAll runs every entry point over data and describes the outcome.
func exerciseAll(data []byte) string {
	_ = BuildACKFromBytes(data, AR, ErrorDetail{Code: CodeSegmentSequence, Message: "bad"})
	_, _ = SplitMessages(data)
	_ = Unescape(string(data), DefaultDelimiters)
	m, err := Parse(data)
	if err != nil {
		return "rejected: " + err.Error()
	}
	_ = Describe(m).String()
	_ = m.Group()
	_ = m.MSH()
	_, _ = m.PID()
	_ = BuildACK(m, AE, ErrorDetail{Code: CodeInternalError})
	for _, s := range m.Segments() {
		for f := 1; f <= s.NumFields(); f++ {
			fl := s.Field(f)
			for r := 1; r <= fl.Reps(); r++ {
				rep := fl.Rep(r)
				for c := 1; c <= rep.Components(); c++ {
					for k := 1; k <= rep.Subcomponents(c); k++ {
						_ = rep.Sub(c, k)
					}
				}
			}
		}
	}
	return fmt.Sprintf("parsed: %d segments", m.NumSegments())
}

// corpusStrictRejects are the valid corpus files that ParseOptions.Strict rejects,
// each for a real deviation the lenient parser reads past.
var corpusStrictRejects = map[string]error{
	"connect-r-and-d/oru_r01_naaccrv5_comprehensive_noncapsynoptic_narrative_headers.hl7": ErrBadSegmentID,       // a TX value wrapped onto the next line
	"hapi-hl7v2/oml_o21_example_13msgs.hl7":                                               ErrMissingField,       // two messages without MSH-10
	"hapi-hl7v2/oru_r01_labgl1_msh18_repetition_nte.hl7":                                  ErrUnsupportedCharset, // MSH-18 "x~y"
	"hl7v2-fhir-converter/sample_win_crlf.hl7":                                            ErrBadDelimiters,      // MSH-2 "^~\\&" (escape doubled)
	"nHapi/orf_r04_radiology_shoulder_tx_repetitions.hl7":                                 ErrMissingField,       // no MSH-10
}

// TestCorpusStrict: strict mode accepts every valid corpus message except the
// listed ones, which it rejects for the stated reason.
func TestCorpusStrict(t *testing.T) {
	dir, files := corpusFiles(t)
	for _, rel := range files {
		if _, bad := corpusInvalid[rel]; bad {
			continue
		}
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := SplitMessages(data)
			if err != nil {
				t.Fatal(err)
			}
			var firstErr error
			for _, mb := range msgs {
				if _, err := ParseWithOptions(mb, ParseOptions{Strict: true}); err != nil && firstErr == nil {
					firstErr = err
				}
			}
			want := corpusStrictRejects[rel]
			switch {
			case want == nil && firstErr != nil:
				t.Errorf("strict mode rejects it: %v", firstErr)
			case want != nil && !errors.Is(firstErr, want):
				t.Errorf("strict mode: want %v, got %v", want, firstErr)
			}
		})
	}
}
