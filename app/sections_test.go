package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resultgate/resultgate/config"
)

// TestSectionLoaders checks that config.SectionNames, the one list of the
// sections other packages own, and the loaders here agree: every section has
// a loader, and each loader reports an unknown key of its section by key
// and line.
func TestSectionLoaders(t *testing.T) {
	if len(sectionLoaders) != len(config.SectionNames) {
		t.Errorf("%d loaders for %d sections", len(sectionLoaders), len(config.SectionNames))
	}
	for _, name := range config.SectionNames {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("durability: os\n" + name + ":\n  no_such_key: 1\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = LoadSections(cfg)
			ps := cfg.Locate(err)
			if len(ps) != 1 || ps[0].Error() != "line 3: "+name+".no_such_key: unknown key ("+name+" takes "+takes(name)+")" || !errors.Is(ps[0], config.ErrUnknownKey) {
				t.Errorf("LoadSections = %v", err)
			}
		})
	}
}

// takes lists the keys of a section as the unknown-key message does.
func takes(name string) string {
	return map[string]string{
		"policy":    "business_days, clinician_determination, data_error, default_language, facility_jurisdictions, facility_time_zones, holidays, jurisdiction, jurisdictions, max_hold, notify, organisational_policy, patient_request, sender_flags, templates, time_zone",
		"rules":     "abbreviations, context_sections, local_codes, names, phrases, tags, uncertain_neoplasm",
		"holds":     "ack_wait, covering, dead_after, escalate_before, fallback_deadline, max_deliver, oncall, patient_feed_processing_ids, process_timeout, reconcile_every, reminder_before, retry_backoff, scheduler_tick",
		"forwarder": "ack_timeout, addr, connections, consumer_prefix, dead_after, dial_timeout, enabled, max_attempts_before_alert, partitions, release_instructions, release_segment, retry_backoff, start, tls",
		"auth":      "oidc, tokens_file",
		"notify":    "consumer, max_attempts, public_url, receivers, retry_backoff, routes, start, workers",
	}[name]
}

// TestLoadSectionsEveryProblem checks that one run reports the problems of
// every section, not only those of the first section that has one.
func TestLoadSectionsEveryProblem(t *testing.T) {
	cfg, err := config.Parse([]byte(`policy:
  jurisdiction: US-KY
  max_hold: 1000d
holds:
  max_deliver: 0
  reminder_before: 100000h
forwarder:
  enabled: true
  addr: nowhere
auth:
  oidc: {issuer: https://idp.example}
rules:
  tags: {malignancy: maybe}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadSections(cfg)
	ps := cfg.Locate(err)
	ps.Sort()
	got := ps.Error()
	want := `line 2: policy.jurisdiction: "US-KY" has no rule in policy.jurisdictions, so no state law would be applied to its results; add policy.jurisdictions: {US-KY: {statute: US-KY-KRS-333.152}} to apply the shipped preset, or declare policy.jurisdictions: {US-KY: {no_state_law: true}} if it has no such law
line 3: policy.max_hold: must be at most 365d, got 1000d
line 5: holds.max_deliver: must be at least 1, got 0
line 6: holds.reminder_before: must be at most 8760h (365 days), got 100000h
line 9: forwarder.addr: must be host:port, got "nowhere"
line 11: auth.oidc.audience: must be set (the client ID tokens are issued for)
line 13: rules.tags.malignancy: must be true or false, got "maybe"`
	if got != want {
		t.Errorf("LoadSections =\n%s\nwant\n%s", got, want)
	}
}

func TestLoadSectionsCrossChecks(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"reminder past the longest hold", "policy:\n  max_hold: 10d\nholds:\n  reminder_before: 240h\n",
			"line 4: holds.reminder_before: must be shorter than the longest hold (policy.max_hold, 10d), got 240h (10 days): no hold is open that long before its deadline"},
		{"escalation past the default longest hold", "holds:\n  escalate_before: 800h\n",
			"line 2: holds.escalate_before: must be shorter than the longest hold (policy.max_hold, 30d), got 800h: no hold is open that long before its deadline"},
		{"within", "policy:\n  max_hold: 10d\nholds:\n  reminder_before: 48h\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = LoadSections(cfg)
			got := ""
			if err != nil {
				got = cfg.Locate(err).Error()
			}
			if got != tc.want {
				t.Errorf("LoadSections =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestSectionsWarningsAndFiles(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	cfg, err := config.Parse([]byte(`data_dir: ` + dir + `
policy:
  time_zone: America/New_York
  jurisdiction: X
  jurisdictions:
    X: {citation: c, applies_to: [[genetic]], clock: {calendar_days: 2}}
forwarder:
  enabled: true
  addr: 127.0.0.1:2576
  tls: {ca_file: ` + filepath.Join(dir, "ca.pem") + `}
auth:
  tokens_file: ` + tokens + `
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSections(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Warnings.Error(), "line 6: policy.jurisdictions.X.time_zone: not set: the statute's days for results of facilities without a facility_time_zones entry are counted in policy.time_zone (America/New_York); set the zone the statute is counted in if it differs"; got != want {
		t.Errorf("warnings =\n%s\nwant\n%s", got, want)
	}
	got := CheckFiles(cfg, s).Error()
	want := "line 10: forwarder.tls.ca_file: file " + filepath.Join(dir, "ca.pem") + " does not exist\n" +
		"line 12: auth.tokens_file: file " + tokens + " does not exist yet: the API accepts no token until `resultgate token new` creates it"
	if got != want {
		t.Errorf("CheckFiles =\n%s\nwant\n%s", got, want)
	}
	if err := os.WriteFile(tokens, []byte("tokens:\n  - {name: x, role: wizard, sha256: abc}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := CheckFiles(cfg, s).Error(); !strings.Contains(got, "line 12: auth.tokens_file: tokens file "+tokens+": tokens[0].role: ") {
		t.Errorf("CheckFiles with a bad tokens file = %s", got)
	}
}
