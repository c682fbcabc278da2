package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/internal/hostile"
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
	var pol struct {
		TimeZone string `yaml:"time_zone"`
	}
	if err := cfg.Section("policy", &pol); err != nil || pol.TimeZone != "America/New_York" {
		t.Errorf("Section(policy) = %+v, %v", pol, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "mlp:\n  addr: x\n", `config: line 1: unknown key "mlp"`},
		{"unknown nested key", "mllp:\n  adr: x\n", "config: line 2: field adr not found in type config.MLLP"},
		{"bad duration", "mllp:\n  idle_timeout: soon\n", "config: line 2: cannot unmarshal !!str `soon` into time.Duration"},
		{"bad int", "mllp:\n  max_conns: many\n", "config: line 2: cannot unmarshal !!str `many` into int"},
		{"not a mapping", "- a\n", "config: line 1: cannot unmarshal !!seq into config.Config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse error = %v\nwant %s", err, tt.want)
			}
		})
	}
	_, err := Parse([]byte("bogus: 1\n"))
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key error does not wrap ErrUnknownKey: %v", err)
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
		{"network", func(c *Config) { c.MLLP.AllowedNetworks = []string{"10.0.0.0/33"} }, `mllp.allowed_networks[0]: must be a CIDR prefix such as 10.1.0.0/16, got "10.0.0.0/33"`},
		{"tls half", func(c *Config) { c.MLLP.TLS.CertFile = "a.pem" }, `mllp.tls: cert_file and key_file must both be set`},
		{"mtls without ca", func(c *Config) { c.MLLP.TLS = TLS{CertFile: "a", KeyFile: "b", RequireClientCert: true} }, `mllp.tls.client_ca_file: must be set when require_client_cert is true`},
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

func FuzzParse(f *testing.F) {
	f.Add([]byte("mllp:\n  addr: :2575\n"))
	f.Add([]byte("durability: os\nintake:\n  accept_types: [ORU^R01]\n"))
	f.Add([]byte("policy: {a: 1}\n"))
	for _, b := range hostile.Structures(4 << 10) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		_ = cfg.Validate()
	})
}
