package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
)

// TestMedplumResendStoredOnce: the LIS sends a routine result over MLLP to
// serve's wiring; an interface engine built on @medplum/hl7 then resends it
// twice with its Hl7Client, as that library writes the message (no
// terminator after the last segment). Every send is answered AA, HL7_IN
// holds the message once and the patient feed has it once on each of its
// subjects (issue 11, point 8, with a third-party client). Skipped when node
// or interop's npm packages are missing (a failure under CI).
func TestMedplumResendStoredOnce(t *testing.T) {
	_, nodeErr := exec.LookPath("node")
	root := testutil.RepoRoot(t)
	_, modErr := os.Stat(filepath.Join(root, "interop", "node_modules", "@medplum", "hl7", "package.json"))
	testutil.Require(t, nodeErr == nil && modErr == nil, "node or interop's @medplum/hl7 missing (run `cd interop && npm ci`)")

	a := startApp(t, testConfig(t, t.TempDir()))
	lab := msg(labORU, "MEDPLUM1")
	sendAll(t, a.MLLPAddr().String(), lab)
	testutil.Eventually(t, 15*time.Second, "released to both feeds", func() bool {
		n7, _, _ := feed(t, a.js, "portal.hl7.", "MEDPLUM1")
		nf, _, _ := feed(t, a.js, "portal.fhir.", "MEDPLUM1")
		return n7 == 1 && nf == 1
	})
	inBefore := streamCount(t, a.js, bus.StreamHL7In)
	dupBefore := a.intake.Stats().Duplicates

	file := filepath.Join(t.TempDir(), "lab.hl7")
	if err := os.WriteFile(file, lab, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(a.MLLPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "interop", "resend.js"), "--times", "2", host, port, file)
	cmd.Dir = filepath.Join(root, "interop")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node resend.js: %v\n%s\n%s", err, out, stderr.String())
	}
	sends := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l struct {
			Send     int    `json:"send"`
			Control  string `json:"control_id"`
			Ack      string `json:"ack"`
			MSA2     string `json:"msa2"`
			FinalTer bool   `json:"final_terminator"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Error != "" {
			t.Fatalf("resend.js: %q (%v)", sc.Text(), err)
		}
		sends++
		if l.Control != "MEDPLUM1" || l.Ack != "AA" || l.MSA2 != "MEDPLUM1" || l.FinalTer {
			t.Errorf("send %d: control %q ack %q MSA-2 %q final terminator %v; want AA for MEDPLUM1, sent without the final CR",
				l.Send, l.Control, l.Ack, l.MSA2, l.FinalTer)
		}
	}
	if sends != 2 {
		t.Fatalf("resend.js reported %d sends, want 2:\n%s", sends, out)
	}
	if n := streamCount(t, a.js, bus.StreamHL7In); n != inBefore {
		t.Errorf("HL7_IN went from %d to %d messages: a resend was stored again", inBefore, n)
	}
	if ids := storedControlIDs(t, a.js); ids["MEDPLUM1"] != 1 {
		t.Errorf("MEDPLUM1 stored %d times in HL7_IN", ids["MEDPLUM1"])
	}
	if d := a.intake.Stats().Duplicates - dupBefore; d != 2 {
		t.Errorf("intake counted %d duplicates, want the 2 resends", d)
	}
	n7, _, _ := feed(t, a.js, "portal.hl7.", "MEDPLUM1")
	nf, _, _ := feed(t, a.js, "portal.fhir.", "MEDPLUM1")
	if n7 != 1 || nf != 1 {
		t.Errorf("MEDPLUM1 on the feed %d (HL7) and %d (FHIR) times, want once each", n7, nf)
	}
}
