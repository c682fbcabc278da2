package config

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/hostile"
	"go.yaml.in/yaml/v3"
)

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatalf("Parse(nil): %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.MLLP.Addr != ":2575" || cfg.HTTP.Addr != "127.0.0.1:8080" || cfg.NATS.Listen != "127.0.0.1:4222" {
		t.Errorf("default addresses = %q %q %q", cfg.MLLP.Addr, cfg.HTTP.Addr, cfg.NATS.Listen)
	}
	if cfg.Durability != DurabilityFsync {
		t.Errorf("default durability = %q, want fsync", cfg.Durability)
	}
	if cfg.Intake.DuplicateWindow != 24*time.Hour {
		t.Errorf("default duplicate window = %s", cfg.Intake.DuplicateWindow)
	}
	if cfg.FHIR.Validate {
		t.Error("fhir.validate is on by default; it is opt-in")
	}
	if cfg.FHIR.Patient != FHIRPatientDemographics || len(cfg.FHIR.IdentifierSystems) != 0 {
		t.Errorf("fhir defaults: patient %q, identifier_systems %v", cfg.FHIR.Patient, cfg.FHIR.IdentifierSystems)
	}
}

// TestFHIRPatientConfig decodes fhir.patient and fhir.identifier_systems and
// checks that their problems are reported by key and line.
func TestFHIRPatientConfig(t *testing.T) {
	cfg, err := Parse([]byte(`fhir:
  patient: identifiers
  identifier_systems:
    GENHOSP: "urn:oid:2.16.840.1.113883.3.9999.2"
    RGENT: https://example.org/fhir/sid/enterprise
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.FHIR.Patient != FHIRPatientIdentifiers {
		t.Errorf("fhir.patient = %q", cfg.FHIR.Patient)
	}
	want := map[string]string{"GENHOSP": "urn:oid:2.16.840.1.113883.3.9999.2", "RGENT": "https://example.org/fhir/sid/enterprise"}
	if fmt.Sprint(cfg.FHIR.IdentifierSystems) != fmt.Sprint(want) {
		t.Errorf("fhir.identifier_systems = %v, want %v", cfg.FHIR.IdentifierSystems, want)
	}

	cfg, err = Parse([]byte(`fhir:
  patient: everything
  identifier_systems:
    GENHOSP: "urn:oid:2.16.840.1.113883.3.9999.2"
    CLINIC: mrn
    LAB: "https://example.org/a b"
`))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Locate(cfg.Validate()).Error()
	wantErr := `line 2: fhir.patient: must be demographics or identifiers, got "everything"
line 5: fhir.identifier_systems.CLINIC: must be an absolute URI such as urn:oid:2.16.840.1.113883.3.9999.2 or https://example.org/fhir/sid/mrn, got "mrn"
line 6: fhir.identifier_systems.LAB: must be an absolute URI such as urn:oid:2.16.840.1.113883.3.9999.2 or https://example.org/fhir/sid/mrn, got "https://example.org/a b"`
	if got != wantErr {
		t.Errorf("problems =\n%s\nwant\n%s", got, wantErr)
	}

	for _, tt := range []struct{ yaml, want string }{
		{"fhir:\n  identifier_systems: urn:oid:1.2\n", `line 2: fhir.identifier_systems: must be a section of names and values, got "urn:oid:1.2"`},
		{"fhir:\n  identifier_systems:\n    GENHOSP: [a]\n", "line 3: fhir.identifier_systems.GENHOSP: must be a single value, got a list"},
		{"fhir:\n  patients: identifiers\n", "line 2: fhir.patients: unknown key (did you mean fhir.patient?)"},
	} {
		if _, err := Parse([]byte(tt.yaml)); err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) = %v\nwant %s", tt.yaml, err, tt.want)
		}
	}
}

func TestParseOverrides(t *testing.T) {
	cfg, err := Parse([]byte(`
durability: os
mllp:
  addr: 127.0.0.1:3000
  idle_timeout: 90s
intake:
  accept_types: [ORU^R01]
  duplicate_window: 48h
fhir:
  validate: true
policy:
  time_zone: America/New_York
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Durability != DurabilityOS || cfg.MLLP.Addr != "127.0.0.1:3000" || cfg.MLLP.IdleTimeout != 90*time.Second {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if cfg.MLLP.MaxFrameBytes != 16<<20 {
		t.Errorf("unset key lost its default: max_frame_bytes = %d", cfg.MLLP.MaxFrameBytes)
	}
	if len(cfg.Intake.AcceptTypes) != 1 || cfg.Intake.DuplicateWindow != 48*time.Hour {
		t.Errorf("intake = %+v", cfg.Intake)
	}
	if !cfg.FHIR.Validate {
		t.Error("fhir.validate: true not applied")
	}
	if _, err := Parse([]byte("fhir:\n  validat: true\n")); err == nil || !strings.Contains(err.Error(), "validat") {
		t.Errorf("misspelt fhir key: err = %v", err)
	}
	var pol struct {
		TimeZone string `yaml:"time_zone"`
	}
	if err := cfg.Decode(SectionPolicy, &pol); err != nil || pol.TimeZone != "America/New_York" {
		t.Errorf("Decode(policy) = %+v, %v", pol, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "mlp:\n  addr: x\n", "line 1: mlp: unknown key (did you mean mllp?)"},
		{"unknown nested key, edited too much", "mllp:\n  adress: x\n", "line 2: mllp.adress: unknown key (did you mean mllp.addr?)"},
		{"unknown key like none", "http:\n  zzz: 1\n", "line 2: http.zzz: unknown key (http takes addr, public_origins, tls)"},
		{"every unknown key", "mllp:\n  adr: x\n  max_con: 3\nintake:\n  partitons: 8\nbogus: 1\n",
			"line 2: mllp.adr: unknown key (did you mean mllp.addr?)\n" +
				"line 3: mllp.max_con: unknown key (did you mean mllp.max_conns?)\n" +
				"line 5: intake.partitons: unknown key (did you mean intake.partitions?)\n" +
				"line 6: bogus: unknown key (the top level takes auth, data_dir, durability, fhir, forwarder, holds, http, intake, log, mllp, nats, notify, policy, roles, rules)"},
		{"bad duration", "mllp:\n  idle_timeout: soon\n", `line 2: mllp.idle_timeout: must be a duration such as 30s, 5m or 24h, got "soon"`},
		{"duration in days", "intake:\n  duplicate_window: 2d\n", `line 2: intake.duplicate_window: must be a duration such as 30s, 5m or 24h, got "2d" (this key takes no days: write 48h)`},
		{"duration past its bound", "mllp:\n  write_timeout: 100000h\n", "line 2: mllp.write_timeout: must be at most 1h, got 100000h: a peer that reads an ACK more slowly is stuck"},
		{"duration past the general bound", "mllp:\n  idle_timeout: 48h\n", "line 2: mllp.idle_timeout: must be at most 24h, got 48h"},
		{"bad int", "mllp:\n  max_conns: many\n", `line 2: mllp.max_conns: must be a whole number, got "many"`},
		{"bad bool", "log:\n  log_phi: yes\n", `line 2: log.log_phi: must be true or false, got "yes"`},
		{"list for a value", "mllp:\n  addr: [a, b]\n", "line 2: mllp.addr: must be a single value, got a list"},
		{"value for a list", "intake:\n  accept_types: ORU^R01\n", `line 2: intake.accept_types: must be a list such as [a, b], got "ORU^R01"`},
		{"value for a section", "mllp: 2575\n", `line 1: mllp: mllp must be a section of keys such as addr: ..., got "2575"`},
		{"not a mapping", "- a\n", "line 1: the file must be a section of keys such as data_dir: ..., got a list"},
		{"not YAML", "mllp:\n  addr: [\n", "line 2: not valid YAML: did not find expected node content"},
		{"problems in list items", "intake:\n  accept_types: [ORU^R01, [x]]\n", "line 2: intake.accept_types[1]: must be a single value, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse error =\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
	// A file that is not a configuration at all gets a bounded report.
	var many strings.Builder
	for i := range 300 {
		fmt.Fprintf(&many, "key%d: 1\n", i)
	}
	if _, err := Parse([]byte(many.String())); err == nil || !strings.HasSuffix(err.Error(), "line 201: more than 200 problems: the rest are not listed") || strings.Count(err.Error(), "\n") != 200 {
		t.Errorf("300 unknown keys: %d lines, ends %q", strings.Count(err.Error(), "\n")+1, err.Error()[max(0, len(err.Error())-80):])
	}
	_, err := Parse([]byte("bogus: 1\n"))
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key error does not wrap ErrUnknownKey: %v", err)
	}
	// Alongside its problems Parse returns what it decoded, so that a
	// checker can validate the rest in the same run.
	cfg, err := Parse([]byte("durability: os\nmllp:\n  adr: x\n  max_conns: 7\n"))
	if err == nil || cfg.Durability != DurabilityOS || cfg.MLLP.MaxConns != 7 {
		t.Errorf("Parse = %+v, %v; want the valid keys decoded beside the error", cfg.MLLP, err)
	}
}

// sectionCfg is a section as a package other than config declares one.
type sectionCfg struct {
	Reminder time.Duration             `yaml:"reminder_before"`
	Max      int                       `yaml:"max_deliver"`
	Covering map[string][]string       `yaml:"covering"`
	Nested   struct{ Tick string }     `yaml:"nested"`
	Rules    map[string]sectionRule    `yaml:"rules"`
	Ptr      *bool                     `yaml:"ptr"`
	Days     dayDuration               `yaml:"days"`
	Opaque   map[string]map[string]any `yaml:"opaque"`
}

type sectionRule struct {
	Citation string `yaml:"citation"`
}

// dayDuration stands for policy.Duration: its own YAML decoding, and D.
type dayDuration time.Duration

func (d *dayDuration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.Replace(n.Value, "d", "h", 1))
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q", n.Line, n.Value)
	}
	*d = dayDuration(v * 24)
	return nil
}

func (d dayDuration) D() time.Duration { return time.Duration(d) }

func TestDecode(t *testing.T) {
	cfg, err := Parse([]byte(`durability: os
holds:
  reminder_before: 12h
  max_deliver: 3
  covering:
    DRSMITH: [DRJONES]
  rules:
    US-KY: {citation: c}
  ptr: true
  days: 3d
`))
	if err != nil {
		t.Fatal(err)
	}
	out := sectionCfg{Max: 5}
	if err := cfg.Decode(SectionHolds, &out); err != nil {
		t.Fatal(err)
	}
	if out.Reminder != 12*time.Hour || out.Max != 3 || out.Covering["DRSMITH"][0] != "DRJONES" || out.Rules["US-KY"].Citation != "c" || out.Ptr == nil || !*out.Ptr || out.Days.D() != 72*time.Hour {
		t.Errorf("Decode = %+v", out)
	}
	def := sectionCfg{Max: 5}
	if err := cfg.Decode(SectionForwarder, &def); err != nil || def.Max != 5 {
		t.Errorf("absent section: %+v, %v; want the defaults kept", def, err)
	}
	if err := cfg.Decode("metrics", &def); err == nil || err.Error() != `config: "metrics" is not a section (SectionNames lists them)` {
		t.Errorf("Decode(metrics) = %v", err)
	}

	// Every problem of a section, with the lines of the whole file.
	cfg, err = Parse([]byte(`durability: os
holds:
  remind_before: 12h
  reminder_before: 100000h
  max_deliver: lots
  rules:
    US-KY: {citaton: c}
  nested: {tick: 1, tock: 2}
  days: 999d
  covering: {DRSMITH: DRJONES}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Decode(SectionHolds, &out)
	want := `line 3: holds.remind_before: unknown key (did you mean holds.reminder_before?)
line 4: holds.reminder_before: must be at most 8760h (365 days), got 100000h
line 5: holds.max_deliver: must be a whole number, got "lots"
line 7: holds.rules.US-KY.citaton: unknown key (did you mean holds.rules.US-KY.citation?)
line 8: holds.nested.tock: unknown key (did you mean holds.nested.tick?)
line 9: holds.days: must be at most 365d, got 999d
line 10: holds.covering.DRSMITH: must be a list such as [a, b], got "DRJONES"`
	if err == nil || err.Error() != want {
		t.Errorf("Decode errors =\n%v\nwant\n%s", err, want)
	}
}

func TestLocate(t *testing.T) {
	cfg, err := Parse([]byte(`durability: os
mllp:
  addr: ":2575"
  tls:
    cert_file: a.pem
policy:
  jurisdictions:
    US-KY:
      clock: {hours: -1}
  holidays: [2026-01-01, 2026-13-01]
`))
	if err != nil {
		t.Fatal(err)
	}
	errs := errors.Join(
		errors.New("mllp.tls: cert_file and key_file must both be set"),
		errors.New("mllp.tls.key_file: file x does not exist"),
		errors.New("policy.jurisdictions.US-KY.clock.hours: must be > 0\npolicy.holidays[1]: must be a date YYYY-MM-DD, got \"2026-13-01\""),
		errors.New("intake.partition_key_file: must be set when nats.url is set"),
		errors.New("policy.facility_time_zones.SYNTH PATH: unknown time zone \"x\""),
		fmt.Errorf("rules: %w", errors.New("invalid rule set")),
		&Problem{Line: 1, Key: "durability", Msg: "kept as found"},
	)
	got := cfg.Locate(errs).Error()
	want := `line 4: mllp.tls: cert_file and key_file must both be set
line 4: mllp.tls.key_file: file x does not exist
line 9: policy.jurisdictions.US-KY.clock.hours: must be > 0
line 10: policy.holidays[1]: must be a date YYYY-MM-DD, got "2026-13-01"
intake.partition_key_file: must be set when nats.url is set
line 6: policy.facility_time_zones.SYNTH PATH: unknown time zone "x"
rules: invalid rule set
line 1: durability: kept as found`
	if got != want {
		t.Errorf("Locate =\n%s\nwant\n%s", got, want)
	}
	ps := cfg.Locate(errs)
	ps.Sort()
	if ps[0].Line != 1 || ps[len(ps)-1].Line != 0 {
		t.Errorf("Sort: %v", ps)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"durability", func(c *Config) { c.Durability = "maybe" }, `durability: must be "fsync" or "os", got "maybe"`},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, `log.level: must be one of trace, debug, info, warn, error, got "loud"`},
		{"mllp addr", func(c *Config) { c.MLLP.Addr = "2575" }, `mllp.addr: must be host:port, got "2575"`},
		{"frame size", func(c *Config) { c.MLLP.MaxFrameBytes = 10 }, `mllp.max_frame_bytes: must be between 1024 and 1073741824, got 10`},
		{"timeout", func(c *Config) { c.MLLP.ReadTimeout = 0 }, `mllp.read_timeout: must be a positive duration, got 0s`},
		{"network", func(c *Config) { c.MLLP.AllowedNetworks = []string{"10.0.0.0/33"} }, `mllp.allowed_networks[0]: must be a CIDR prefix such as 10.1.0.0/16 or fd00::/8, or an IP address, got "10.0.0.0/33"`},
		{"network host name", func(c *Config) { c.MLLP.AllowedNetworks = []string{"10.0.0.0/8", "lis.example.org"} }, `mllp.allowed_networks[1]: must be a CIDR prefix such as 10.1.0.0/16 or fd00::/8, or an IP address, got "lis.example.org"`},
		{"network zone", func(c *Config) { c.MLLP.AllowedNetworks = []string{"fe80::1%eth0"} }, `mllp.allowed_networks[0]: must be a CIDR prefix such as 10.1.0.0/16 or fd00::/8, or an IP address, got "fe80::1%eth0"`},
		{"per-peer cap", func(c *Config) { c.MLLP.MaxConnsPerPeer = -1 }, `mllp.max_conns_per_peer: must not be negative (0 means no per-peer cap), got -1`},
		{"tls half", func(c *Config) { c.MLLP.TLS.CertFile = "a.pem" }, `mllp.tls: cert_file and key_file must both be set`},
		{"mtls without ca", func(c *Config) { c.MLLP.TLS = TLS{CertFile: "a", KeyFile: "b", RequireClientCert: true} }, `mllp.tls.client_ca_file: must be set when require_client_cert is true`},
		{"nats client certificate half", func(c *Config) { c.NATS.CertFile = "a.pem" }, `nats: cert_file and key_file must both be set`},
		{"replicas embedded", func(c *Config) { c.NATS.Replicas = 3 }, `nats.replicas: must be 1 with the embedded single-node server, got 3`},
		{"accept types", func(c *Config) { c.Intake.AcceptTypes = []string{"ORUR01"} }, `intake.accept_types[0]: must look like ORU^R01, got "ORUR01"`},
		{"ack mode", func(c *Config) { c.Intake.AckMode = "sometimes" }, `intake.ack_mode: must be auto, original or enhanced, got "sometimes"`},
		{"cluster key", func(c *Config) { c.NATS.URL = "nats://10.0.0.1:4222" }, `intake.partition_key_file: must be set when nats.url is set: every instance must hash patients with the same key`},
		{"partitions", func(c *Config) { c.Intake.Partitions = 0 }, `intake.partitions: must be between 1 and 1024, got 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c)
			err := c.Validate()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate() = %v\nwant %s", err, tt.want)
			}
		})
	}
	c := Default()
	c.NATS.URL = "nats://127.0.0.1:4222"
	c.NATS.Replicas = 3
	c.Intake.PartitionKeyFile = "/etc/resultgate/partition.key"
	if err := c.Validate(); err != nil {
		t.Errorf("cluster R3 rejected: %v", err)
	}
	c = Default()
	c.Durability, c.Log.Level = "x", "y"
	if n := strings.Count(c.Validate().Error(), "\n") + 1; n != 2 {
		t.Errorf("Validate reported %d problems, want both", n)
	}
}

func TestMLLPNetworks(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []netip.Prefix
		err  string
	}{
		{name: "empty allows all"},
		{
			name: "prefixes and bare addresses",
			in:   []string{"10.20.0.0/16", "192.0.2.7", "2001:db8::/32", "2001:db8::5", "::ffff:10.0.0.0/104"},
			want: []netip.Prefix{
				netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("192.0.2.7/32"),
				netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8::5/128"),
				netip.MustParsePrefix("::ffff:10.0.0.0/104"),
			},
		},
		{name: "bad prefix length", in: []string{"10.0.0.0/8", "10.0.0.0/33"}, err: `mllp.allowed_networks[1]: netip.ParsePrefix("10.0.0.0/33"): prefix length out of range`},
		{name: "zone", in: []string{"fe80::1%eth0"}, err: `mllp.allowed_networks[0]: address "fe80::1%eth0" has a zone`},
		{name: "not an address", in: []string{"any"}, err: `mllp.allowed_networks[0]: ParseAddr("any"): unable to parse IP`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MLLP{AllowedNetworks: tt.in}.Networks()
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Networks() error = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Networks() = %v, %v; want %v", got, err, tt.want)
			}
			c := Default()
			c.MLLP.AllowedNetworks = tt.in
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestMLLPDefaults(t *testing.T) {
	cfg, err := Parse([]byte("mllp:\n  max_conns_per_peer: 0\n  allowed_networks: [10.20.0.0/16, 192.0.2.7]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MLLP.MaxConnsPerPeer != 0 || len(cfg.MLLP.AllowedNetworks) != 2 || cfg.Validate() != nil {
		t.Errorf("MLLP = %+v, Validate = %v; want no per-peer cap and 2 networks, valid", cfg.MLLP, cfg.Validate())
	}
	if d := Default().MLLP; d.MaxConnsPerPeer != 32 || d.MaxConns != 256 || len(d.AllowedNetworks) != 0 {
		t.Errorf("Default().MLLP = %+v, want max_conns 256, max_conns_per_peer 32, no allow-list", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("mllp:\n  addr: :2575\n"))
	f.Add([]byte("mllp:\n  max_conns_per_peer: 4\n  allowed_networks: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\", \"::1\", \"fe80::1%eth0\", 10.0.0.0/33]\n"))
	f.Add([]byte("durability: os\nintake:\n  accept_types: [ORU^R01]\n"))
	f.Add([]byte("policy: {a: 1}\n"))
	f.Add([]byte("holds:\n  reminder_before: 12h\n  rules: {US-KY: {citation: c}}\n  days: 3d\n  covering: {A: [B]}\n"))
	f.Add([]byte("a: &x [1, 2]\nholds: {covering: {A: *x}}\n"))
	for _, b := range hostile.Structures(4 << 10) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		_ = cfg.Locate(err)
		for _, name := range SectionNames {
			var out sectionCfg
			_ = cfg.Locate(cfg.Decode(name, &out))
		}
		_ = cfg.LineOf("holds.covering.A[0]")
		if err != nil {
			return
		}
		_ = cfg.Locate(cfg.Validate())
	})
}
