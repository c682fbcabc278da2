package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/dead"
)

// The operator's way through triage with the CLI: a result without a patient
// identifier sent with `send` is stored (AA) and listed by
// `dead list --reason unattributed --open`; replay is refused with the
// remedy; `dead discard` needs --by and --reason, is audited, and takes the
// record off the open list while `dead list` still shows it, marked.
func TestDeadDiscardOfUnattributedResult(t *testing.T) {
	a := startKentucky(t)
	cli := func(args ...string) (string, string, error) {
		t.Helper()
		return runCLI(t, "", append(args, "--nats-url", a.NATSClientURL(), "--nats-creds", a.NATSOperatorCreds())...)
	}
	oru := "MSH|^~\\&|LIS|HOSP|RG|HOSP|20261207120000||ORU^R01^ORU_R01|NOPID-CLI-1|P|2.5.1\r" +
		"PID|1||^^^HOSP^MR||Doe^Jane\r" +
		"OBR|1|PL1|FL1|718-7^Hemoglobin^LN|||20261207110000|||||||||D001^Doctor^Delta||||||20261207115500|||F\r" +
		"OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|12.0-16.0|N|||F\r"
	if out, _, err := runCLI(t, oru, "send", "--addr", a.MLLPAddr().String(), "-"); err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	var recs []dead.Record
	testutil.Eventually(t, 30*time.Second, "the unattributed result is in triage", func() bool {
		out, _, err := cli("dead", "list", "--reason", bus.DeadUnattributed, "--open", "--json")
		if err != nil {
			t.Fatalf("dead list: %v", err)
		}
		recs = nil
		json.Unmarshal([]byte(out), &recs)
		return len(recs) == 1
	})
	seq := fmt.Sprint(recs[0].Seq)
	if recs[0].ControlID != "NOPID-CLI-1" {
		t.Errorf("record %+v", recs[0])
	}
	if _, _, err := cli("dead", "replay", seq, "--by", "ops-anna"); exitCode(err) != 1 || !strings.Contains(err.Error(), "no usable patient identifier") {
		t.Errorf("replay of an unattributed record: exit %d, %v", exitCode(err), err)
	}
	if _, _, err := cli("dead", "discard", seq, "--by", "ops-anna"); exitCode(err) != 2 {
		t.Errorf("discard without --reason: exit %d, %v", exitCode(err), err)
	}
	out, _, err := cli("dead", "discard", seq, "--by", "ops-anna", "--reason", "LIS resent it with the MRN")
	if err != nil || !strings.Contains(out, "discarded by ops-anna") {
		t.Fatalf("dead discard: %v\n%s", err, out)
	}
	out, _, err = cli("dead", "list", "--reason", bus.DeadUnattributed, "--open")
	if err != nil || !strings.Contains(out, "0 dead-lettered message(s)") {
		t.Errorf("open list after the discard: %v\n%s", err, out)
	}
	out, _, err = cli("dead", "list")
	if err != nil || !strings.Contains(out, "[discarded ") || !strings.Contains(out, "by ops-anna: LIS resent it with the MRN]") {
		t.Errorf("dead list after the discard: %v\n%s", err, out)
	}
	out, _, err = cli("audit", "--since", "1h")
	if err != nil || !strings.Contains(out, "discard") || !strings.Contains(out, "LIS resent it with the MRN") || !strings.Contains(out, "dead_seq="+seq) {
		t.Errorf("audit lacks the discard: %v\n%s", err, out)
	}
}

// explain says that serve does not apply its decision to a message without a
// usable patient identifier, and says nothing of it for one with an MRN.
func TestExplainUnattributed(t *testing.T) {
	const base = "MSH|^~\\&|LIS|HOSP|RG|HOSP|20261207120000||ORU^R01^ORU_R01|X1|P|2.5.1\r" +
		"PID|1||%s||Doe^Jane\r" +
		"OBR|1|PL1|FL1|718-7^Hemoglobin^LN|||20261207110000|||||||||D001^Doctor^Delta||||||20261207115500|||F\r" +
		"OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|12.0-16.0|N|||F\r"
	for _, c := range []struct {
		pid  string
		want bool
	}{{"^^^HOSP^MR", true}, {"", true}, {"MRN1^^^HOSP^MR", false}, {"MRN1", false}} {
		file := filepath.Join(t.TempDir(), "m.hl7")
		if err := os.WriteFile(file, []byte(fmt.Sprintf(base, c.pid)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCLI(t, "", "explain", "--json", file)
		if err != nil {
			t.Fatalf("explain PID-3 %q: %v", c.pid, err)
		}
		var x struct {
			Decision struct {
				Warnings []string `json:"warnings"`
			} `json:"decision"`
		}
		if err := json.Unmarshal([]byte(out), &x); err != nil {
			t.Fatal(err)
		}
		got := false
		for _, w := range x.Decision.Warnings {
			got = got || w == unattributedWarning
		}
		if got != c.want {
			t.Errorf("PID-3 %q: triage warning %t, want %t (%q)", c.pid, got, c.want, x.Decision.Warnings)
		}
	}
}
