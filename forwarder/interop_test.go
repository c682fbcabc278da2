package forwarder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resultgate/resultgate/hl7"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// parsedLine is one line of interop/parse.js output.
type parsedLine struct {
	Parser   string      `json:"parser"`
	Segments []string    `json:"segments"`
	MSH10    string      `json:"msh10"`
	NTE      [][4]string `json:"nte"`
	Z        [][]string  `json:"z"`
	Error    string      `json:"error"`
}

// TestThirdPartyParsersReadReleaseInstructions forwards released results over
// MLLP to a loopback receiver and has two npm HL7 parsers (node-hl7-client
// and simple-hl7, through interop/parse.js) read the bytes received: the
// segment order, MSH-10, the note's NTE and every ZRG field must come out as
// docs/FORWARDER.md tells an interface engine to map them.
func TestThirdPartyParsersReadReleaseInstructions(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		testutil.Require(t, false, "node is not on PATH")
	}
	root := testutil.RepoRoot(t)
	for _, mod := range []string{"simple-hl7", "node-hl7-client"} {
		if _, err := os.Stat(filepath.Join(root, "interop", "node_modules", mod, "package.json")); err != nil {
			testutil.Require(t, false, fmt.Sprintf("%s is not installed (run `cd interop && npm ci`)", mod))
		}
	}
	t.Parallel()
	js := startJS(t)
	d := startDownstream(t, "127.0.0.1:0", nil)
	f := startForwarder(t, js, testConfig(d.addr, "p02"))

	// Two orders, the first with a lab comment of its own.
	msg := []byte("MSH|^~\\&|LAB|HOSP|PORTAL|HOSP|20260101120000||ORU^R01^ORU_R01|IOP-1|P|2.5.1||||||UNICODE UTF-8\r" +
		"PID|1||TESTIOP^^^HOSP^MR||TEST^PATIENT||19700101|F|||||||es\r" +
		"OBR|1||FIOP1|88305^Surgical pathology^CPT|||20260101110000||||||||||||||||F\r" +
		"NTE|1|L|Specimen received in formalin\r" +
		"OBX|1|TX|22637-3^Path report^LN||Carcinoma||||||F\r" +
		"OBR|2||FIOP2|2951-2^Sodium^LN|||20260101110000||||||||||||||||F\r" +
		"OBX|1|NM|2951-2^Sodium^LN||140|mmol/L|135-145||||F\r")
	note := "Su médico revisará este resultado con usted.\nLlame al 555-0100 (opción 2) | lunes & martes ^ 9-17 h."
	publishReleased(t, js, "p02", "IOP-1", note, func(h nats.Header) {
		h.Set(bus.HeaderReleasePath, "deadline")
		h.Set(bus.HeaderReleaseActor, "resultgate")
		h.Set(bus.HeaderReleaseRole, "system")
	}, msg...)
	retracts := []byte(strings.ReplaceAll(string(msg), "IOP-1|P|", "IOP-1-RETRACT|P|"))
	publishReleased(t, js, "p02", "IOP-1-RETRACT", "Este resultado se está revisando.", func(h nats.Header) {
		h.Set(bus.HeaderReleasePath, "retraction")
		h.Set(bus.HeaderReleaseActor, "resultgate")
		h.Set(bus.HeaderReleaseRole, "system")
		h.Set(bus.HeaderRetracts, "hold-IOP-1")
	}, retracts...)
	waitDelivered(t, f, 2)

	escaped := func(s string) string { // NTE-3 as written: FT, \.br\ for line breaks
		return strings.ReplaceAll(hl7.Escape(strings.ReplaceAll(s, "\n", "\x00"), hl7.DefaultDelimiters), "\x00", `\.br\`)
	}
	for _, tc := range []struct {
		ctl, note, path, retracts string
	}{
		{"IOP-1", note, "deadline", ""},
		{"IOP-1-RETRACT", "Este resultado se está revisando.", "retraction", "hold-IOP-1"},
	} {
		t.Run(tc.ctl, func(t *testing.T) {
			frame := d.frame(tc.ctl)
			file := filepath.Join(t.TempDir(), "forwarded.hl7")
			if err := os.WriteFile(file, frame, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "interop", "parse.js"), file)
			cmd.Dir = filepath.Join(root, "interop")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node parse.js: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), out)
			}
			// What each library returns for NTE-3: node-hl7-client decodes
			// the delimiter escapes and leaves \.br\ for a renderer;
			// simple-hl7 decodes nothing.
			wantText := map[string]string{
				"node-hl7-client": strings.ReplaceAll(tc.note, "\n", `\.br\`),
				"simple-hl7":      escaped(tc.note),
			}
			wantZ := []string{"quiet", tc.path, "resultgate", "system", "20261207220509+0000", "hold-" + tc.ctl, tc.retracts,
				"reviewed with the patient"}
			wantSegs := []string{"MSH", "PID", "OBR", "NTE", "NTE", "OBX", "OBR", "NTE", "OBX", "ZRG"}
			parsers := 0
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				var l parsedLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatalf("parse.js line %q: %v", sc.Text(), err)
				}
				if l.Error != "" {
					t.Errorf("%s could not parse the forwarded message: %s", l.Parser, l.Error)
					continue
				}
				parsers++
				if !slices.Equal(l.Segments, wantSegs) {
					t.Errorf("%s: segments %v, want %v", l.Parser, l.Segments, wantSegs)
				}
				if l.MSH10 != tc.ctl {
					t.Errorf("%s: MSH-10 %q, want %q", l.Parser, l.MSH10, tc.ctl)
				}
				wantNTE := [][4]string{
					{"1", "L", "Specimen received in formalin", ""},
					{"2", "O", wantText[l.Parser], "PI"},
					{"1", "O", wantText[l.Parser], "PI"},
				}
				if !slices.Equal(l.NTE, wantNTE) {
					t.Errorf("%s: NTEs\n%q\nwant\n%q", l.Parser, l.NTE, wantNTE)
				}
				if len(l.Z) != 1 || !slices.Equal(l.Z[0], wantZ) {
					t.Errorf("%s: ZRG %q, want [%q]", l.Parser, l.Z, wantZ)
				}
			}
			if parsers != 2 {
				t.Errorf("%d parsers read the message, want 2:\n%s", parsers, out)
			}
		})
	}
}
