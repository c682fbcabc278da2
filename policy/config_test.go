package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/hostile"
)

func TestPolicyConfigExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "policy", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no config examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := LoadConfigFile(f)
			if err != nil {
				t.Fatalf("LoadConfigFile: %v", err)
			}
			if _, err := NewEngine(cfg); err != nil {
				t.Fatalf("NewEngine: %v", err)
			}
		})
	}
}

func TestLoadConfigFileSections(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := LoadConfigFile(write("a.yaml", "mllp:\n  addr: :2575\npolicy:\n  time_zone: Europe/London\n  max_hold: 10d\n"))
	if err != nil || cfg.TimeZone != "Europe/London" || cfg.MaxHold.D() != 10*day {
		t.Errorf("got %+v, %v", cfg, err)
	}
	cfg, err = LoadConfigFile(write("b.yaml", "mllp:\n  addr: :2575\n"))
	if err != nil || cfg.TimeZone != "" {
		t.Errorf("no policy section: %+v, %v", cfg, err)
	}
	p := write("c.yaml", "policy:\n  time_zone: UTC\n  max_hould: 3d\n")
	if _, err := LoadConfigFile(p); err == nil || err.Error() != p+": policy: line 2: field max_hould not found in type policy.Config" {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := LoadConfigFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.HasPrefix(err.Error(), "reading policy config: ") {
		t.Errorf("missing file: %v", err)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown top key", "time_zon: UTC\n", "policy: line 1: field time_zon not found in type policy.Config"},
		{"unknown nested key", "jurisdictions:\n  US-KY:\n    statue: US-KY-KRS-333.152\n", "policy: line 3: field statue not found in type policy.JurisdictionRule"},
		{"unknown clock key", "jurisdictions:\n  X:\n    clock: {days: 3}\n", "policy: line 3: field days not found in type policy.Clock"},
		{"bad duration", "max_hold: soon\n", `policy: line 1: invalid duration "soon"`},
		{"duration as a mapping", "max_hold: {d: 3}\n", "policy: line 1: duration must be a string such as 72h or 14d"},
		{"bad int", "jurisdictions:\n  X:\n    clock: {hours: many}\n", "policy: line 3: cannot unmarshal !!str `many` into int"},
		{"not a mapping", "- a\n", "policy: line 1: cannot unmarshal !!seq into policy.Config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeConfig([]byte(tt.yaml))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n got: %v\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestDecodeConfigValues(t *testing.T) {
	cfg, err := DecodeConfig([]byte(`
time_zone: America/Chicago
holidays: ["2026-12-25"]
max_hold: 1d12h
jurisdictions:
  US-KY: {statute: US-KY-KRS-333.152, provider_may_release_earlier: false}
sender_flags:
  SWTH: {max: 72h}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxHold.D() != 36*time.Hour || cfg.SenderFlags["SWTH"].Max.D() != 72*time.Hour {
		t.Errorf("durations: %s, %s", cfg.MaxHold, cfg.SenderFlags["SWTH"].Max)
	}
	r := cfg.Jurisdictions["US-KY"].resolve()
	if r.Clock.Hours != 72 || *r.ProviderMayReleaseEarlier || r.Citation != "Ky. Rev. Stat. § 333.152(2)" {
		t.Errorf("preset not merged: %+v", r)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"zero config is valid", "", ""},
		{"unknown time zone", "time_zone: Mars/Olympus\n", `policy.time_zone: unknown time zone "Mars/Olympus"`},
		{"bad default language", "default_language: English\n", `policy.default_language: must be an ISO 639 code such as en or es, got "English"`},
		{"bad holiday", "holidays: [2026-13-01]\n", `policy.holidays[0]: must be a date YYYY-MM-DD, got "2026-13-01"`},
		{"bad business day", "business_days: [mon, funday]\n", `policy.business_days[1]: must be one of mon, tue, wed, thu, fri, sat, sun, got "funday"`},
		{"business day twice", "business_days: [mon, mon]\n", `policy.business_days[1]: "mon" listed twice`},
		{"no business days", "business_days: []\n", "policy.business_days: must list at least one weekday"},
		{"facility without jurisdiction", "facility_jurisdictions: {LAB: ''}\n", "policy.facility_jurisdictions.LAB: must name a jurisdiction"},
		{"unknown statute preset", "jurisdictions:\n  US-KY: {statute: US-KY-999}\n",
			`policy.jurisdictions.US-KY.statute: unknown statute preset "US-KY-999" (known: US-KY-KRS-333.152, US-MT-MCA-50-16-806, US-TX-OCC-159.0062)`},
		{"custom rule without citation", "jurisdictions:\n  X: {applies_to: [[genetic]], clock: {hours: 24}}\n", "policy.jurisdictions.X.citation: is required: a state-law basis must cite the law"},
		{"custom rule without tags", "jurisdictions:\n  X: {citation: c, clock: {hours: 24}}\n", "policy.jurisdictions.X.applies_to: must list at least one tag combination"},
		{"empty tag combination", "jurisdictions:\n  X: {citation: c, applies_to: [[]], clock: {hours: 24}}\n", "policy.jurisdictions.X.applies_to[0]: must list at least one tag"},
		{"bad tag name", "jurisdictions:\n  X: {citation: c, applies_to: [[Pathology]], clock: {hours: 24}}\n", `policy.jurisdictions.X.applies_to[0][0]: must be a tag name such as pathology, got "Pathology"`},
		{"negative hours", "jurisdictions:\n  KY: {citation: c, applies_to: [[genetic]], clock: {hours: -1}}\n", "policy.jurisdictions.KY.clock.hours: must be > 0"},
		{"no clock", "jurisdictions:\n  X: {citation: c, applies_to: [[genetic]]}\n", "policy.jurisdictions.X.clock: exactly one of hours, calendar_days, business_days, not_before_day must be set"},
		{"two clocks", "jurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {hours: 72, not_before_day: 3}, time_zone: America/Chicago}\n", "policy.jurisdictions.X.clock: exactly one of hours, calendar_days, business_days, not_before_day must be set"},
		{"clock too long", "jurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {calendar_days: 400}, time_zone: America/Chicago}\n", "policy.jurisdictions.X.clock.calendar_days: must be at most 365, got 400"},
		{"org policy without written policy", "organisational_policy: {applies_to: [[malignancy]], max: 3d}\n", "policy.organisational_policy.written_policy: is required: an organisational hold needs a written-policy reference"},
		{"org policy without max", "organisational_policy: {written_policy: P1, applies_to: [[malignancy]]}\n", "policy.organisational_policy.max: is required and must be > 0"},
		{"org policy elapsed without hours", "organisational_policy: {written_policy: P1, applies_to: [[malignancy]], until: elapsed, max: 3d}\n", "policy.organisational_policy.hours: must be > 0 when until is elapsed"},
		{"org policy later-of unsupported", "organisational_policy: {written_policy: P1, applies_to: [[malignancy]], until: later-of, hours: 2, max: 3d}\n", `policy.organisational_policy.until: must be clinician-review, elapsed or earlier-of, got "later-of"`},
		{"org policy without tags", "organisational_policy: {written_policy: P1, max: 3d}\n", "policy.organisational_policy.applies_to: must list at least one tag combination"},
		{"unknown sender flag", "sender_flags: {SNOW: {ignore: true}}\n", "policy.sender_flags.SNOW: unknown HL7 table 0909 category (want one of SID, SIDC, SIMM, STBD, SWNL, SWTH)"},
		{"sender flag business days out of range", "sender_flags: {SID: {business_days: 40}}\n", "policy.sender_flags.SID.business_days: must be between 0 and 30, got 40"},
		{"max hold over a year", "max_hold: 400d\n", "policy.max_hold: must be at most 365d, got 400d"},
		{"negative max hold", "max_hold: -1h\n", "policy.max_hold: must be > 0"},
		{"negative patient default", "patient_request: {default_max: -1h}\n", "policy.patient_request.default_max: must not be negative"},
		{"bad quiet tag", "notify: {quiet_tags: [Malignancy]}\n", `policy.notify.quiet_tags[0]: must be a tag name such as malignancy, got "Malignancy"`},
		{"bad template language", "templates: {malignancy: {english: hi}}\n", "policy.templates.malignancy.english: language must be an ISO 639 code such as en or es"},
		{"empty template", "templates: {malignancy: {en: ' '}}\n", "policy.templates.malignancy.en: must not be empty"},
		{"jurisdiction without a rule, preset shipped", "jurisdiction: US-KY\n",
			`policy.jurisdiction: "US-KY" has no rule in policy.jurisdictions, so no state law would be applied to its results; add policy.jurisdictions: {US-KY: {statute: US-KY-KRS-333.152}} to apply the shipped preset, or declare policy.jurisdictions: {US-KY: {no_state_law: true}} if it has no such law`},
		{"facility jurisdiction without a rule, no preset", "facility_jurisdictions: {NYLAB: US-NY}\n",
			`policy.facility_jurisdictions.NYLAB: "US-NY" has no rule in policy.jurisdictions, so no state law would be applied to its results; add a rule under policy.jurisdictions.US-NY (citation, applies_to, clock, time_zone), or declare policy.jurisdictions: {US-NY: {no_state_law: true}} if it has no such law`},
		{"jurisdiction declared without state law", "jurisdiction: US-NY\njurisdictions: {US-NY: {no_state_law: true, note: counsel 2026-11}}\n", ""},
		{"no_state_law with a clock", "jurisdictions: {US-NY: {no_state_law: true, clock: {hours: 1}}}\n",
			"policy.jurisdictions.US-NY.no_state_law: takes no other key but note: a jurisdiction without state law has no statute, citation, applies_to, clock or time_zone"},
		{"unknown rule zone", "jurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {hours: 24}, time_zone: Mars/Olympus}\n",
			`policy.jurisdictions.X.time_zone: unknown time zone "Mars/Olympus" (want an IANA zone such as America/Chicago)`},
		{"unknown facility zone", "facility_time_zones: {TXLAB: Central}\n",
			`policy.facility_time_zones.TXLAB: unknown time zone "Central" (want an IANA zone such as America/Chicago)`},
		{"day clock would count in UTC", "jurisdiction: X\njurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {not_before_day: 3}}\n",
			"policy.jurisdictions.X.time_zone: must be set: the statute's days for results of facilities without a facility_time_zones entry would be counted in UTC, hours off the local day; set the IANA zone the statute is counted in (e.g. America/Chicago), or policy.facility_time_zones for each facility"},
		{"day clock of an unzoned facility", "facility_jurisdictions: {ELPASO: X, AUSTIN: X}\nfacility_time_zones: {ELPASO: America/Denver}\njurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {business_days: 2}}\n",
			"policy.jurisdictions.X.time_zone: must be set: the statute's days for results of AUSTIN would be counted in UTC, hours off the local day; set the IANA zone the statute is counted in (e.g. America/Chicago), or policy.facility_time_zones for each facility"},
		{"day clock of zoned facilities only", "facility_jurisdictions: {ELPASO: X}\nfacility_time_zones: {ELPASO: America/Denver}\njurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {not_before_day: 3}}\n", ""},
		{"hour clock needs no zone", "jurisdiction: X\njurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {hours: 72}}\n", ""},
		{"preset carries its zone on a UTC instance", "jurisdiction: US-TX\njurisdictions: {US-TX: {statute: US-TX-OCC-159.0062}}\n", ""},
		{"several problems at once", "time_zone: Nowhere\nmax_hold: 400d\n", "policy.time_zone: unknown time zone \"Nowhere\"\npolicy.max_hold: must be at most 365d, got 400d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := DecodeConfig([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("DecodeConfig: %v", err)
			}
			err = cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate\n got: %s\nwant: %s", got, tt.want)
			}
			if _, nerr := NewEngine(cfg); (nerr == nil) != (tt.want == "") {
				t.Errorf("NewEngine error %v disagrees with Validate", nerr)
			}
		})
	}
}

func TestConfigWarnings(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"rule zone from the preset", "time_zone: America/New_York\njurisdiction: US-TX\njurisdictions: {US-TX: {statute: US-TX-OCC-159.0062}}\n", nil},
		{"day clock falls back to policy.time_zone", "time_zone: America/New_York\nfacility_jurisdictions: {LAB1: X}\njurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {calendar_days: 2}}\n",
			[]string{"policy.jurisdictions.X.time_zone: not set: the statute's days for results of LAB1 are counted in policy.time_zone (America/New_York); set the zone the statute is counted in if it differs"}},
		{"facility zones cover it", "time_zone: America/New_York\nfacility_jurisdictions: {LAB1: X}\nfacility_time_zones: {LAB1: America/Chicago}\njurisdictions:\n  X: {citation: c, applies_to: [[genetic]], clock: {calendar_days: 2}}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := DecodeConfig([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := cfg.Warnings(); !slices.Equal(got, tt.want) {
				t.Errorf("Warnings\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

func TestStatutePresets(t *testing.T) {
	for _, name := range StatuteNames() {
		s := Statutes[name]
		t.Run(name, func(t *testing.T) {
			if s.Name != name || s.Rule.Citation == "" || !strings.Contains(s.Rule.Note, "counsel must confirm") {
				t.Errorf("preset incomplete: %+v", s)
			}
			cfg := Config{Jurisdictions: map[string]JurisdictionRule{s.Jurisdiction: {Statute: name}}}
			if err := cfg.Validate(); err != nil {
				t.Errorf("preset does not validate: %v", err)
			}
		})
	}
}

func TestDurationParse(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"72h", 72 * time.Hour, true}, {"14d", 14 * day, true}, {"1d12h", 36 * time.Hour, true},
		{"90m", 90 * time.Minute, true}, {"d", 0, false}, {"3 days", 0, false}, {"-1d", 0, false}, {"9999d", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tt.in, got, err)
		}
	}
	if s := Duration(14 * day).String(); s != "14d" {
		t.Errorf("String = %s", s)
	}
	if s := Duration(36 * time.Hour).String(); s != "36h0m0s" {
		t.Errorf("String = %s", s)
	}
}

func FuzzDecodeConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "policy", "*.yaml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			// The examples are whole files; the fuzz target takes the section.
			f.Add([]byte(strings.ReplaceAll(strings.TrimPrefix(string(b[strings.Index(string(b), "policy:")+len("policy:"):]), "\n"), "\n  ", "\n")))
		}
	}
	f.Add([]byte("max_hold: 3d\n"))
	f.Add([]byte("jurisdictions: {X: {clock: {hours: 1}}}\n"))
	for _, b := range hostile.Structures(4 << 10) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := DecodeConfig(data)
		if err != nil {
			return
		}
		if cfg.Validate() != nil {
			return
		}
		e, err := NewEngine(cfg)
		if err != nil {
			t.Fatalf("Validate passed but NewEngine failed: %v", err)
		}
		// A valid configuration must never produce an open-ended hold.
		d := e.Decide(Input{Report: rep(flag("SWTH")), Classification: cls(TagPathology, TagMalignancy, TagGenetic), Now: tRecv,
			Preference: pref(UntilClinicianReview, 0, 0)})
		if d.Action != ActionHold || d.Deadline.IsZero() || d.Deadline.After(tRecv.Add(365*day)) {
			t.Fatalf("decision under a valid config: %+v", d)
		}
	})
}
