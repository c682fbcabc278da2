package forwarder

import (
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/hl7"
)

func TestLoadConfig(t *testing.T) {
	c, err := config.Parse([]byte(`
intake:
  partitions: 8
forwarder:
  enabled: true
  addr: portal-engine.hospital.local:6661
  tls:
    server_name: portal-engine
  ack_timeout: 10s
  retry_backoff: {min: 2s, max: 1m}
  max_attempts_before_alert: 10
  dead_after: 72h
  partitions: [p00, p07]
`))
	if err != nil {
		t.Fatal(err)
	}
	fc, err := LoadConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Enabled, want.Addr, want.TLS.ServerName = true, "portal-engine.hospital.local:6661", "portal-engine"
	want.AckTimeout, want.RetryBackoff = 10*time.Second, Backoff{Min: 2 * time.Second, Max: time.Minute}
	want.MaxAttemptsBeforeAlert, want.DeadAfter, want.PartitionCount = 10, 72*time.Hour, 8
	want.Partitions = []string{"p00", "p07"}
	if fc.Addr != want.Addr || fc.TLS != want.TLS || fc.AckTimeout != want.AckTimeout || fc.RetryBackoff != want.RetryBackoff ||
		fc.MaxAttemptsBeforeAlert != want.MaxAttemptsBeforeAlert || fc.DeadAfter != want.DeadAfter ||
		fc.PartitionCount != 8 || strings.Join(fc.Partitions, ",") != "p00,p07" || fc.Start != StartAll ||
		fc.Connections != 1 || fc.DialTimeout != DefaultDialTimeout || !fc.Enabled {
		t.Errorf("LoadConfig = %+v\nwant %+v", fc, want)
	}
	if got := fc.partitions(); strings.Join(got, ",") != "p00,p07" {
		t.Errorf("partitions = %v", got)
	}

	// Without the section: disabled, defaults.
	c, _ = config.Parse(nil)
	fc, err = LoadConfig(c)
	if err != nil || fc.Enabled || fc.AckTimeout != DefaultAckTimeout || len(fc.partitions()) != 16 {
		t.Errorf("LoadConfig(no section) = %+v, %v", fc, err)
	}
}

func TestLoadConfigUnknownKey(t *testing.T) {
	c, err := config.Parse([]byte("forwarder:\n  enabled: true\n  adress: x:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadConfig(c)
	if err == nil || err.Error() != "line 3: forwarder.adress: unknown key (did you mean forwarder.addr?)" {
		t.Errorf("LoadConfig = %v, want the unknown key named", err)
	}
}

func TestLoadConfigReleaseInstructions(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		on         bool
		seg, err   string
	}{
		{"default on", "forwarder:\n  enabled: true\n  addr: x:1\n", true, "ZRG", ""},
		{"off", "forwarder:\n  enabled: true\n  addr: x:1\n  release_instructions: false\n", false, "ZRG", ""},
		{"on, other segment", "forwarder:\n  enabled: true\n  addr: x:1\n  release_instructions: true\n  release_segment: ZRX\n", true, "ZRX", ""},
		{"not a boolean", "forwarder:\n  enabled: true\n  addr: x:1\n  release_instructions: sometimes\n", false, "",
			"line 4: forwarder.release_instructions: must be true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			fc, err := LoadConfig(c)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Errorf("LoadConfig error = %v, want prefix %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fc.InstructionsOn() != tc.on || fc.withDefaults().ReleaseSegment != tc.seg {
				t.Errorf("release_instructions = %v, release_segment = %q; want %v, %q", fc.InstructionsOn(), fc.withDefaults().ReleaseSegment, tc.on, tc.seg)
			}
		})
	}
	// A Config built in code (zero fields) adds instructions too.
	if c := (Config{}); !c.InstructionsOn() || c.withDefaults().ReleaseSegment != DefaultReleaseSegment {
		t.Error("zero Config does not default to release instructions with ZRG")
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Enabled: true, Addr: "127.0.0.1:2575"}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"disabled ignores the rest", func(c *Config) { c.Enabled, c.Addr = false, "nonsense" }, ""},
		{"no addr", func(c *Config) { c.Addr = "" }, `forwarder.addr: must be host:port, got ""`},
		{"addr without port", func(c *Config) { c.Addr = "portal" }, `forwarder.addr: must be host:port, got "portal"`},
		{"addr without host", func(c *Config) { c.Addr = ":2575" }, `forwarder.addr: must be host:port, got ":2575"`},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, `forwarder.tls: cert_file and key_file must both be set`},
		{"negative ack timeout", func(c *Config) { c.AckTimeout = -time.Second }, `forwarder.ack_timeout: must be a positive duration, got -1s`},
		{"negative dial timeout", func(c *Config) { c.DialTimeout = -time.Second }, `forwarder.dial_timeout: must be a positive duration, got -1s`},
		{"backoff max below min", func(c *Config) { c.RetryBackoff = Backoff{Min: time.Minute, Max: time.Second} },
			`forwarder.retry_backoff.max: must be at least retry_backoff.min (1m0s), got 1s`},
		{"negative backoff min", func(c *Config) { c.RetryBackoff.Min = -1 }, `forwarder.retry_backoff.min: must be a positive duration, got -1ns`},
		{"attempts", func(c *Config) { c.MaxAttemptsBeforeAlert = -1 }, `forwarder.max_attempts_before_alert: must be at least 1, got -1`},
		{"dead after", func(c *Config) { c.DeadAfter = -time.Hour }, `forwarder.dead_after: must be 0 (never give up) or a positive duration, got -1h0m0s`},
		{"connections", func(c *Config) { c.Connections = 65 }, `forwarder.connections: must be between 1 and 64, got 65`},
		{"start", func(c *Config) { c.Start = "latest" }, `forwarder.start: must be "all" or "new", got "latest"`},
		{"consumer prefix", func(c *Config) { c.ConsumerPrefix = "a.b" }, `forwarder.consumer_prefix: must be 1-32 letters, digits, '-' or '_', got "a.b"`},
		{"partition token", func(c *Config) { c.Partitions = []string{"x1"} }, `forwarder.partitions[0]: must be a partition token such as p00, got "x1"`},
		{"partition out of range", func(c *Config) { c.Partitions = []string{"p16"} }, `forwarder.partitions[0]: "p16" is not one of the 16 intake partitions`},
		{"partition twice", func(c *Config) { c.Partitions = []string{"p01", "p01"} }, `forwarder.partitions[1]: "p01" is listed twice`},
		{"release segment", func(c *Config) { c.ReleaseSegment = "OBX" }, `forwarder.release_segment: must be a Z-segment name: Z and two upper-case letters or digits, got "OBX"`},
		{"release segment lower case", func(c *Config) { c.ReleaseSegment = "zrg" }, `forwarder.release_segment: must be a Z-segment name: Z and two upper-case letters or digits, got "zrg"`},
		{"partition count", func(c *Config) { c.PartitionCount = 2000 }, `forwarder.partitions: intake.partitions must be between 1 and 1024, got 2000`},
		{"several problems", func(c *Config) { c.Addr, c.Start = "x", "y" },
			"forwarder.addr: must be host:port, got \"x\"\nforwarder.start: must be \"all\" or \"new\", got \"y\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	c := Config{RetryBackoff: Backoff{Min: time.Second, Max: 5 * time.Minute}}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := c.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := c.backoff(100); got != 5*time.Minute {
		t.Errorf("backoff(100) = %s, want the maximum", got)
	}
}

func TestTLSConfigErrorsNameTheKey(t *testing.T) {
	c := Config{Enabled: true, Addr: "h:1", TLS: TLS{CAFile: "/nonexistent/ca.pem"}}
	if _, err := c.tlsConfig(); err == nil || !strings.HasPrefix(err.Error(), "forwarder.tls.ca_file: ") {
		t.Errorf("tlsConfig = %v", err)
	}
	c.TLS = TLS{Enabled: true, ServerName: "portal"}
	tc, err := c.tlsConfig()
	if err != nil || tc == nil || tc.ServerName != "portal" {
		t.Errorf("tlsConfig = %v, %v", tc, err)
	}
}

func TestReadAckAndEvaluate(t *testing.T) {
	orig, err := hl7.Parse(oru("C1"))
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{}
	for _, tc := range []struct {
		name string
		ack  []byte
		want outcome
	}{
		{"AA", hl7.BuildACK(orig, hl7.AA), outDelivered},
		{"CA", hl7.BuildACK(orig, hl7.CA), outDelivered},
		{"AE", hl7.BuildACK(orig, hl7.AE), outAppError},
		{"CE", hl7.BuildACK(orig, hl7.CE), outAppError},
		{"AR", hl7.BuildACK(orig, hl7.AR), outRejected},
		{"CR", hl7.BuildACK(orig, hl7.CR), outRejected},
		{"lower case, no MSA-2", []byte("MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5\rMSA|aa\r"), outDelivered},
		{"ACK for another message", []byte("MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5\rMSA|AA|C2\r"), outBadAck},
		{"no MSA", []byte("MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5\r"), outBadAck},
		{"unknown code", []byte("MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5\rMSA|OK|C1\r"), outBadAck},
		{"not HL7, MSA found by scanning", []byte("garbage\nMSA|AA|C1\n"), outDelivered},
		{"garbage", []byte("hello"), outBadAck},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := f.evaluate(tc.ack, nil, "C1"); got != tc.want {
				t.Errorf("evaluate = %s, want %s", got, tc.want)
			}
		})
	}
}
