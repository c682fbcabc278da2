package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/app"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
)

// runCLI runs resultgate with args in-process and returns stdout, stderr and the error.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func fixturePath(t *testing.T, name string) string {
	return filepath.Join(testutil.RepoRoot(t), "testdata", "hl7", name)
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestInspect(t *testing.T) {
	f := fixturePath(t, "oru_r01_v251.hl7")
	tests := []struct {
		name string
		args []string
		want []string // lines or substrings expected in stdout
	}{
		{"tree", []string{"inspect", f}, []string{"MSH-10 Message Control ID: CTRL-0001", "PID-3(2) Patient Identifier List: SYN-555^^^SSA^SS"}},
		{"get every occurrence", []string{"inspect", "--get", "OBX-3.1", f}, []string{"22637-3\n22636-5\n2345-7\n59847-4\nSPEC-Q\n2951-2\n2823-3\n"}},
		{"get encoding characters", []string{"inspect", "--get", "MSH-2", f}, []string{"^~\\&\n"}},
		{"get field separator", []string{"inspect", "--get", "MSH-1", f}, []string{"|\n"}},
		{"get repetition", []string{"inspect", "--get", "PID-3(2).1", f}, []string{"SYN-555\n"}},
		{"get subcomponent", []string{"inspect", "--get", "PID-3.4.2", f}, []string{"2.16.840.1.113883.19.5\n"}},
		{"unescaped", []string{"inspect", "--get", "OBX(2)-5", f}, []string{"Line one\nLine two & more"}},
		{"json values", []string{"inspect", "--json", "--get", "OBR-24", f}, []string{`{"control_id":"CTRL-0001","path":"OBR-24","values":["SP",""]}`}},
		{"json tree", []string{"inspect", "--json", f}, []string{`"control_id":"CTRL-0001"`, `"name":"PID"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runCLI(t, "", tt.args...)
			if err != nil {
				t.Fatalf("err %v, stderr %s", err, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	_, _, err := runCLI(t, "", "inspect", "--get", "PID3", f)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "PID3") {
		t.Errorf("bad path: %v", err)
	}
	_, errOut, err := runCLI(t, "not hl7 at all", "inspect", "-")
	if err == nil {
		t.Errorf("inspect of garbage succeeded; stderr %s", errOut)
	}
	// A path the message lacks is said so, with exit status 1 (as grep).
	for _, tc := range []struct{ path, stderr string }{
		{"OBX(9)-5", "message 1 (control ID CTRL-0001): no OBX(9): the message has 7 OBX segments\n"},
		{"PID(2)-3", "message 1 (control ID CTRL-0001): no PID(2): the message has 1 PID segment\n"},
		{"IN1-2", "message 1 (control ID CTRL-0001): no IN1 segment\n"},
	} {
		out, errOut, err := runCLI(t, "", "inspect", "--get", tc.path, f)
		if exitCode(err) != 1 || out != "" || errOut != tc.stderr {
			t.Errorf("--get %s: exit %d, stdout %q, stderr %q; want exit 1, no output, stderr %q", tc.path, exitCode(err), out, errOut, tc.stderr)
		}
		if err != nil && err.Error() != tc.path+": not found in 1 of 1 message(s)" {
			t.Errorf("--get %s: error %q", tc.path, err)
		}
	}
	// A present but empty value is a value: an empty line, status 0.
	if out, _, err := runCLI(t, "", "inspect", "--get", "PID-40", f); err != nil || out != "\n" {
		t.Errorf("--get PID-40: %q, %v; want an empty line and success", out, err)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "durability: os\nmllp:\n  addr: 127.0.0.1:2575\n")
	out, _, err := runCLI(t, "", "check-config", good)
	if err != nil || out != good+": OK\n" {
		t.Errorf("good config: %q %v", out, err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"core values", "durability: sometimes\nmllp:\n  max_conns: 0\n",
			"2 problems:\n@:1: durability: must be \"fsync\" or \"os\", got \"sometimes\"\n@:3: mllp.max_conns: must be at least 1, got 0"},
		{"unknown key", "mllp:\n  adress: x\n", "1 problem:\n@:2: mllp.adress: unknown key (did you mean mllp.addr?)"},
		{"policy key", "policy:\n  time_zon: UTC\n", "1 problem:\n@:2: policy.time_zon: unknown key (did you mean policy.time_zone?)"},
		{"policy value", "policy:\n  time_zone: Mars/Olympus\n", "1 problem:\n@:2: policy.time_zone: unknown time zone \"Mars/Olympus\""},
		{"holds value", "holds:\n  max_deliver: 0\n", "1 problem:\n@:2: holds.max_deliver: must be at least 1, got 0"},
		{"auth oidc", "auth:\n  oidc:\n    issuer: https://idp.example\n", "1 problem:\n@:2: auth.oidc.audience: must be set (the client ID tokens are issued for)"},
		{"not YAML", "mllp: [\n", "1 problem:\n@:1: not valid YAML: did not find expected node content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := write(strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.yaml)
			_, _, err := runCLI(t, "", "check-config", f)
			want := f + ": " + strings.ReplaceAll(tc.want, "@", f)
			if exitCode(err) != 1 || err.Error() != want {
				t.Errorf("check-config error (exit %d):\n%v\nwant\n%s", exitCode(err), err, want)
			}
		})
	}
	_, _, err = runCLI(t, "", "check-config", filepath.Join(dir, "none.yaml"))
	if exitCode(err) != 1 || err.Error() != filepath.Join(dir, "none.yaml")+": no such file" {
		t.Errorf("missing file: %v", err)
	}
}

func TestSend(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Durability = config.DurabilityOS
	cfg.MLLP.Addr, cfg.HTTP.Addr, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:-1"
	a := app.New(cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	addr := a.MLLPAddr().String()

	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "hl7")
	entries, _ := os.ReadDir(dir)
	out, errOut, err := runCLI(t, "", "send", "--addr", addr, dir)
	if err != nil {
		t.Fatalf("send dir: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "AA/CA") || strings.Contains(out, "AA/CA 0") {
		t.Errorf("summary: %s", out)
	}
	if len(entries) == 0 {
		t.Fatal("no fixtures")
	}

	// An unaccepted message type is rejected: exit 1 and AR/CR counted.
	adt := "MSH|^~\\&|ADT|HOSP|RG|HOSP|20240101120000||ADT^A01|ADT-1|P|2.5\rPID|1||X1^^^HOSP^MR\r"
	out, errOut, err = runCLI(t, adt, "send", "--addr", addr, "-")
	if exitCode(err) != 1 || !strings.Contains(out, "AR/CR 1") {
		t.Errorf("ADT send: exit %d, out %q, stderr %q", exitCode(err), out, errOut)
	}
	if !strings.Contains(errOut, "message type not accepted") {
		t.Errorf("the reject reason is not shown: %q", errOut)
	}
}

// explain honours the rules: section of the configuration file, as serve does.
func TestExplainUsesRulesSection(t *testing.T) {
	f := fixturePath(t, "oru_r01_v251.hl7")
	cfg := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(cfg, []byte("rules:\n  tags:\n    pathology: false\n"), 0o600)
	plain, _, err := runCLI(t, "", "explain", "--json", f)
	if err != nil || !strings.Contains(plain, `"tag":"pathology"`) {
		t.Fatalf("default rules: %v %s", err, plain)
	}
	out, _, err := runCLI(t, "", "explain", "--json", "--config", cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, `"tag":"pathology"`) || !strings.Contains(out, `"ruleset_version":"2026.12.0+local.`) {
		t.Errorf("rules section ignored: %s", out)
	}
}
