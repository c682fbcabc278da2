package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/policy"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// runExplainCmd runs `resultgate explain args...` in-process.
func runExplainCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newExplainCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true // as under the root command
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func repoFile(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata"}, parts...)...)
}

// The decision time for every golden: Monday 2 March 2026, 10:00 EST, shortly
// after the fixtures' OBR-22 (09:15 EST).
const goldenAt = "2026-03-02T10:00:00-05:00"

func TestExplainGoldenJSON(t *testing.T) {
	tests := []struct {
		name  string
		input string
		args  []string
	}{
		{"path-malignancy", "path-malignancy.hl7", nil},
		{"path-malignancy-prior", "path-malignancy.hl7", []string{"--prior-malignancy"}},
		{"path-malignancy-spanish", "path-malignancy-spanish.hl7", nil},
		{"path-malignancy-kentucky", "path-malignancy.hl7", []string{"--config", repoFile("policy", "kentucky.yaml")}},
		{"path-malignancy-texas", "path-malignancy.hl7", []string{"--config", repoFile("policy", "texas.yaml")}},
		{"path-no-obr22-kentucky", "path-no-obr22.hl7", []string{"--config", repoFile("policy", "kentucky.yaml")}},
		{"path-malignancy-org-policy", "path-malignancy.hl7", []string{"--config", repoFile("policy", "org-policy.yaml")}},
		{"path-benign", "path-benign.hl7", []string{"--config", repoFile("policy", "kentucky.yaml")}},
		{"ct-suspicious-consent", "ct-suspicious.hl7", []string{"--consent", repoFile("consent", "until-clinician-review.json")}},
		{"ct-suspicious-consent-immediately", "ct-suspicious.hl7", []string{"--consent", repoFile("consent", "release-immediately.json"), "--config", repoFile("policy", "org-policy.yaml")}},
		{"path-malignancy-consent-hours", "path-malignancy.hl7", []string{"--consent", repoFile("consent", "hours.json")}},
		{"path-malignancy-consent-revoked", "path-malignancy.hl7", []string{"--consent", repoFile("consent", "revoked.json")}},
		{"routine-cbc", "routine-cbc.hl7", nil},
		{"sender-flags", "sender-flags.hl7", nil},
		{"wrong-patient", "wrong-patient.hl7", nil},
		{"correction", "correction.hl7", nil},
		{"batch-multi-state", "batch.hl7", []string{"--config", repoFile("policy", "multi-state.yaml")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--json", "--at", goldenAt}, tt.args...)
			args = append(args, repoFile("explain", tt.input))
			got, err := runExplainCmd(t, args...)
			if err != nil {
				t.Fatalf("explain: %v\n%s", err, got)
			}
			for i, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				checkExplainJSON(t, i, line)
			}
			golden := repoFile("explain", tt.name+".json")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("explain --json differs from %s (run with -update after checking):\n got: %s\nwant: %s", golden, got, want)
			}
		})
	}
}

// checkExplainJSON asserts the field names issue 3 §4 fixes.
func checkExplainJSON(t *testing.T, i int, line string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %d is not one JSON object: %v", i+1, err)
	}
	for _, k := range []string{"control_id", "tags", "decision", "ruleset_version"} {
		if _, ok := m[k]; !ok {
			t.Errorf("line %d lacks %q", i+1, k)
		}
	}
	d, _ := m["decision"].(map[string]any)
	for _, k := range []string{"action", "bases", "deadline", "notify", "note"} {
		if _, ok := d[k]; !ok {
			t.Errorf("line %d: decision lacks %q", i+1, k)
		}
	}
	bases, _ := d["bases"].([]any)
	for _, b := range bases {
		bm, _ := b.(map[string]any)
		for _, k := range []string{"kind", "until", "deadline"} {
			if _, ok := bm[k]; !ok {
				t.Errorf("line %d: basis lacks %q", i+1, k)
			}
		}
	}
	tags, _ := m["tags"].([]any)
	for _, tg := range tags {
		tm, _ := tg.(map[string]any)
		evs, _ := tm["evidence"].([]any)
		if tm["tag"] == nil || len(evs) == 0 {
			t.Errorf("line %d: tag without name or evidence: %v", i+1, tm)
		}
		for _, ev := range evs {
			em, _ := ev.(map[string]any)
			for _, k := range []string{"segment", "occurrence", "field", "rule", "match"} {
				if _, ok := em[k]; !ok {
					t.Errorf("line %d: evidence lacks %q", i+1, k)
				}
			}
		}
	}
}

func TestExplainText(t *testing.T) {
	out, err := runExplainCmd(t, "--at", goldenAt, "--config", repoFile("policy", "kentucky.yaml"), repoFile("explain", "path-malignancy.hl7"))
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	for _, want := range []string{
		"Message PATH-0001", "Tags:", "malignancy", "Decision: HOLD (new)", "Basis 1: state-law, until earlier-of",
		"citation: Ky. Rev. Stat. § 333.152(2)", "counsel must confirm", "Deadline: Thu 2026-03-05 09:15 EST (2026-03-05T14:15:00Z)",
		"Notify: quiet", "Note (en):",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{}, "accepts 1 arg(s), received 0"},
		{"bad --at", []string{"--at", "yesterday", repoFile("explain", "routine-cbc.hl7")}, "--at: want RFC 3339 such as 2026-03-02T10:00:00-05:00"},
		{"missing input", []string{"--at", goldenAt, repoFile("explain", "nope.hl7")}, "no such file or directory"},
		{"invalid consent", []string{"--consent", repoFile("policy", "kentucky.yaml"), repoFile("explain", "routine-cbc.hl7")}, "consent: invalid JSON"},
		{"config with unknown key", []string{"--config", writeTemp(t, "policy:\n  time_zon: UTC\n"), repoFile("explain", "routine-cbc.hl7")}, ":2: policy.time_zon: unknown key (did you mean policy.time_zone?)"},
		{"config that does not validate", []string{"--config", writeTemp(t, "policy:\n  max_hold: 900d\n"), repoFile("explain", "routine-cbc.hl7")}, ":2: policy.max_hold: must be at most 365d, got 900d"},
		{"jurisdiction without a rule", []string{"--config", writeTemp(t, "policy:\n  jurisdiction: US-KY\n"), repoFile("explain", "routine-cbc.hl7")},
			`:2: policy.jurisdiction: "US-KY" has no rule in policy.jurisdictions, so no state law would be applied to its results; add policy.jurisdictions: {US-KY: {statute: US-KY-KRS-333.152}} to apply the shipped preset, or declare policy.jurisdictions: {US-KY: {no_state_law: true}} if it has no such law`},
		{"not HL7", []string{"--at", goldenAt, writeTemp(t, "hello\n")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runExplainCmd(t, tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestExplainBadMessageInBatch(t *testing.T) {
	good, err := os.ReadFile(repoFile("explain", "routine-cbc.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	bad := append(append([]byte{}, good...), []byte("MSH|\r")...)
	out, err := runExplainCmd(t, "--json", "--at", goldenAt, writeTemp(t, string(bad)))
	var ee *exitError
	if err == nil || !asExit(err, &ee) || ee.code != 2 {
		t.Fatalf("want exit 2, got %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"control_id":"LAB-0001"`) || !strings.Contains(lines[1], `"error"`) {
		t.Errorf("output:\n%s", out)
	}
}

func asExit(err error, target **exitError) bool {
	e, ok := err.(*exitError)
	if ok {
		*target = e
	}
	return ok
}

func writeTemp(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The explanation's JSON names are part of the contract; guard the policy
// type directly too.
func TestExplanationJSONNames(t *testing.T) {
	x := policy.Explain(&policy.Report{ControlID: "C1"}, policy.Classification{RulesetVersion: "v"}, policy.Decision{Action: policy.ActionRelease, Notify: policy.NotifyPush})
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"control_id":"C1","tags":[],"decision":{"action":"release","bases":[],"deadline":null,"notify":"push","note":"","disposition":""},"ruleset_version":"v"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// TestExplainTextZoneAndStateLaw checks that explain names the zone a
// statute's days are counted in, and says plainly whether a state-law rule
// applies and why not.
func TestExplainTextZoneAndStateLaw(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"Texas preset", []string{"--config", repoFile("policy", "texas.yaml")}, []string{
			"    Jurisdiction: US-TX\n",
			"    State law: the US-TX rule applies (Tex. Occ. Code § 159.0062): not before day 3 after finalisation, days counted in America/Chicago (preset US-TX-OCC-159.0062)\n",
			"      days counted in: America/Chicago (preset US-TX-OCC-159.0062)\n",
		}},
		{"Texas facility on an Eastern instance", []string{"--config", writeTemp(t, "policy:\n  time_zone: America/New_York\n  facility_jurisdictions: {SYNTH PATH: US-TX}\n  facility_time_zones: {SYNTH PATH: America/Chicago}\n  jurisdictions: {US-TX: {statute: US-TX-OCC-159.0062}}\n")}, []string{
			"    State law: the US-TX rule applies (Tex. Occ. Code § 159.0062): not before day 3 after finalisation, days counted in America/Chicago (facility_time_zones.SYNTH PATH)\n",
			"      days counted in: America/Chicago (facility_time_zones.SYNTH PATH)\n",
		}},
		{"no jurisdiction", nil, []string{
			"    State law: no state-law rule applies: no jurisdiction is configured for this result (sending facility \"SYNTH PATH\" is not in policy.facility_jurisdictions and policy.jurisdiction is not set)\n",
		}},
		{"jurisdiction without state law", []string{"--config", writeTemp(t, "policy:\n  jurisdiction: US-NY\n  jurisdictions: {US-NY: {no_state_law: true}}\n")}, []string{
			"    Jurisdiction: US-NY\n",
			"    State law: no state-law rule applies: jurisdiction US-NY is configured with no_state_law\n",
			"  Decision: RELEASE (new)\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--at", goldenAt}, tc.args...)
			out, err := runExplainCmd(t, append(args, repoFile("explain", "path-malignancy.hl7"))...)
			if err != nil {
				t.Fatalf("explain: %v", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("text output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestExplainSaysWhatServeAnswers: explain runs serve's acceptance checks. An
// ADT (type not accepted), a message from a facility the configuration does
// not allow and a two-patient ORU are refused as serve refuses them, and not
// decided; an ORU whose result the FHIR mapping refuses is accepted but
// would not be delivered; an ordinary ORU is accepted and decided.
func TestExplainSaysWhatServeAnswers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oru := func(fac, typ, ctrl, status string) string {
		return "MSH|^~\\&|LIS|" + fac + "|PORTAL|HOSP|20260302080000||" + typ + "|" + ctrl + "|P|2.5.1\r" +
			"PID|1||MRN1^^^HOSP^MR||DOE^JANE\r" +
			"OBR|1|PL-1|FL-1|1234^Glucose^L|||20260301120000|||||||||D1^DOC^A||||||20260302070000||CH|" + status + "\r" +
			"OBX|1|NM|2345-7^Glucose^LN||105|mg/dL|70-99|H|||" + status + "\r"
	}
	cfg := write("site.yaml", "intake:\n  allowed_facilities: [HOSP]\n")
	cases := []struct {
		name, msg, want string
	}{
		{"adt", oru("HOSP", "ADT^A01", "E-1", "F"), "Serve would answer: AR with ERR 200 (type): message type not accepted: ADT^A01\nNot stored, not decided."},
		{"facility", oru("ELSEWHERE", "ORU^R01", "E-2", "F"), "Serve would answer: AR with ERR 207 (facility)"},
		{"two patients", oru("HOSP", "ORU^R01", "E-3", "F") + "PID|2||MRN2^^^HOSP^MR||ROE^RICHARD\r", "Serve would answer: AR with ERR 207 (patients)"},
		{"unmappable", oru("HOSP", "ORU^R01", "E-4", "Z"), "Serve would answer: AA (stored); not delivered: dead-lettered when decided (fhirmap: result status cannot be mapped)"},
		{"ordinary", oru("HOSP", "ORU^R01", "E-5", "F"), "Serve would answer: AA (stored); decided as below"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runExplainCmd(t, "--config", cfg, "--at", goldenAt, write(tc.name+".hl7", tc.msg))
			if err != nil {
				t.Fatalf("explain: %v\n%s", err, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, out)
			}
			if strings.HasPrefix(tc.want, "Serve would answer: AR") && strings.Contains(out, "Decision") {
				t.Errorf("a refused message was decided:\n%s", out)
			}
		})
	}
}
