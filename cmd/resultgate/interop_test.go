package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/loadgen"
	"github.com/resultgate/resultgate/internal/testutil"
)

// nodeAndModulesPresent reports whether node is on PATH and interop/ has its npm
// dependencies (.ci/run installs them with `npm ci`).
func nodeAndModulesPresent(t *testing.T) (bool, string) {
	if _, err := exec.LookPath("node"); err != nil {
		return false, "node is not on PATH"
	}
	for _, mod := range []string{"simple-hl7", "node-hl7-client"} {
		p := filepath.Join(testutil.RepoRoot(t), "interop", "node_modules", mod, "package.json")
		if _, err := os.Stat(p); err != nil {
			return false, fmt.Sprintf("%s is not installed (run `cd interop && npm ci`)", mod)
		}
	}
	return true, ""
}

// interopLine is one line of interop/send.js output.
type interopLine struct {
	Client    string `json:"client"`
	File      string `json:"file"`
	ControlID string `json:"control_id"`
	Ack       string `json:"ack"`
	MSA2      string `json:"msa2"`
	Error     string `json:"error"`
}

// setMSHField returns msg with MSH-n (n ≥ 3) replaced by v.
func setMSHField(t *testing.T, msg []byte, n int, v string) []byte {
	t.Helper()
	end := bytes.IndexAny(msg, "\r\n")
	if end < 0 {
		end = len(msg)
	}
	sep := string(msg[3])
	f := strings.Split(string(msg[:end]), sep)
	for len(f) < n {
		f = append(f, "")
	}
	f[n-1] = v
	return append([]byte(strings.Join(f, sep)), msg[end:]...)
}

// TestThirdPartyClients sends ORU^R01 messages to `resultgate serve` with two MLLP
// clients from the npm registry (simple-hl7's TCP client and node-hl7-client),
// through interop/send.js, and checks that every ACK is the positive one the
// message asked for (AA in original mode, CA when MSH-15/16 is valued), echoes
// MSA-2, and that every message is in HL7_IN exactly once. A message type the
// default configuration does not accept gets AR and is not stored.
func TestThirdPartyClients(t *testing.T) {
	ok, why := nodeAndModulesPresent(t)
	testutil.Require(t, ok, why)
	root := testutil.RepoRoot(t)
	dir := t.TempDir()
	p := startServe(t, filepath.Join(dir, "data"), "os")

	v23 := filepath.Join(root, "testdata", "hl7", "oru_r01_v23.hl7")
	v251 := filepath.Join(root, "testdata", "hl7", "oru_r01_v251.hl7")
	// The v2.8 fixture asks for no accept ACK (MSH-15 NE), which would leave an
	// ACK-waiting client hanging by design; its copies ask for one always. It
	// also carries a second patient, which resultgate refuses (CR: one patient
	// per message); the first copy keeps only the first patient.
	v28 := readFixture(t, "oru_r01_v28.hl7")
	v28one := v28[:bytes.Index(v28, []byte("\rPID|2|"))+1]
	gen := map[string][]byte{
		"v28_accept_al.hl7":    setMSHField(t, loadgen.WithControlID(nil, v28one, "GO-V28"), 15, "AL"),
		"v28_two_patients.hl7": setMSHField(t, v28, 15, "AL"),
		"v251_gen_1.hl7":       loadgen.WithControlID(nil, readFixture(t, "oru_r01_v251.hl7"), "GO-GEN-1"),
		"v251_gen_2.hl7":       loadgen.WithControlID(nil, readFixture(t, "oru_r01_v251.hl7"), "GO-GEN-2"),
		"v23_crlf.hl7": bytes.ReplaceAll(
			loadgen.WithControlID(nil, readFixture(t, "oru_r01_v23.hl7"), "GO-CRLF"), []byte("\n"), []byte("\r\n")),
		"adt_a01.hl7": setMSHField(t, loadgen.WithControlID(nil, readFixture(t, "oru_r01_v23.hl7"), "GO-ADT"), 9, "ADT^A01"),
	}
	files := []string{v23, v251}
	for name, b := range gen {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// MSA-1 expected per file, for both clients (IDs get -S / -N appended).
	want := map[string]string{
		"oru_r01_v23.hl7": "AA", "oru_r01_v251.hl7": "CA", "v28_accept_al.hl7": "CA",
		"v251_gen_1.hl7": "CA", "v251_gen_2.hl7": "CA", "v23_crlf.hl7": "AA", "adt_a01.hl7": "AR",
		"v28_two_patients.hl7": "CR",
	}
	const generated = 3 // built by simple-hl7's message builder in send.js, MSH-15 AL

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host, port, _ := strings.Cut(p.started.MLLP, ":")
	args := append([]string{filepath.Join(root, "interop", "send.js"),
		"--generate", fmt.Sprint(generated), "--prefix", "NODEGEN", host, port}, files...)
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = filepath.Join(root, "interop")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node send.js: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), out)
	}

	perClient := map[string]int{}
	positive := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l interopLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("send.js printed a non-JSON line %q: %v", sc.Text(), err)
		}
		perClient[l.Client]++
		if l.Error != "" {
			t.Errorf("%s %s (%s): %s", l.Client, l.File, l.ControlID, l.Error)
			continue
		}
		exp, known := want[l.File]
		if strings.HasPrefix(l.File, "generated:") {
			exp, known = "CA", true
		}
		if !known {
			t.Errorf("unexpected file in output: %+v", l)
			continue
		}
		if l.Ack != exp {
			t.Errorf("%s %s (%s): MSA-1 %q, want %q", l.Client, l.File, l.ControlID, l.Ack, exp)
		}
		if l.MSA2 != l.ControlID {
			t.Errorf("%s %s: MSA-2 %q does not echo MSH-10 %q", l.Client, l.File, l.MSA2, l.ControlID)
		}
		if exp != "AR" && exp != "CR" {
			positive[l.ControlID] = true
		}
	}
	if got, w := perClient["simple-hl7"], len(files)+generated; got != w {
		t.Errorf("simple-hl7 reported %d messages, want %d", got, w)
	}
	if got, w := perClient["node-hl7-client"], len(files); got != w {
		t.Errorf("node-hl7-client reported %d messages, want %d", got, w)
	}

	stored := storedControlIDs(t, p)
	checkStoredOnce(t, stored, positive)
	if len(stored) != len(positive) {
		t.Errorf("HL7_IN holds %d control IDs, want the %d positively acknowledged (the AR/CR ones must not be stored)", len(stored), len(positive))
	}
	t.Logf("third-party clients: %v messages, %d stored", perClient, len(stored))
}
