package forwarder

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"time"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/router/hold"
)

// Defaults applied to zero fields of Config.
const (
	// DefaultAckTimeout bounds the wait for the downstream ACK. Interface
	// engines that store before acknowledging answer in well under a second;
	// 30 s covers a slow one without letting a stuck one hold a partition
	// longer than one back-off step.
	DefaultAckTimeout = 30 * time.Second
	// DefaultDialTimeout bounds one connection attempt, TLS handshake included.
	DefaultDialTimeout = 10 * time.Second
	// DefaultRetryMin and DefaultRetryMax bound the delay before a failed
	// message is tried again: it doubles from Min with each attempt up to Max.
	// Five minutes keeps a downstream that is down for hours from being
	// hammered while still delivering within minutes of its return.
	DefaultRetryMin = time.Second
	DefaultRetryMax = 5 * time.Minute
	// DefaultMaxAttemptsBeforeAlert is the number of failed attempts of one
	// message after which the forwarder alerts (error log, Stats.Stuck) and a
	// rejected (AR/CR) message is dead-lettered.
	DefaultMaxAttemptsBeforeAlert = 5
	// DefaultConnections is the number of MLLP connections the partitions share
	// on each instance. Many portal interfaces accept a single connection.
	DefaultConnections = 1
	// DefaultConsumerPrefix names the durable consumers, "<prefix>-<partition>".
	DefaultConsumerPrefix = "forward"
)

// Start positions for durable consumers created for the first time.
const (
	// StartAll forwards everything the PORTAL stream holds (the default: a
	// fresh install loses nothing released before the forwarder first started).
	StartAll = "all"
	// StartNew forwards only results released after the consumers are first
	// created: use it when enabling the forwarder on an install whose PORTAL
	// stream already holds results the downstream has had by other means.
	StartNew = "new"
)

// TLS names the files of the client side of a TLS connection.
type TLS struct {
	// CAFile verifies the downstream's certificate; empty uses the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile present a client certificate (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the downstream's certificate;
	// empty uses the host of addr.
	ServerName string `yaml:"server_name"`
	// Enabled turns TLS on; setting any file or server_name turns it on too.
	Enabled bool `yaml:"enabled"`
}

func (t TLS) on() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// Backoff bounds the retry delay.
type Backoff struct {
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

// Config is the forwarder section of resultgate's configuration (key
// "forwarder:"), decoded strictly by LoadConfig.
type Config struct {
	// Enabled turns the forwarder on; when false Start does nothing.
	Enabled bool `yaml:"enabled"`
	// Addr is the downstream MLLP listener, host:port.
	Addr string `yaml:"addr"`
	// TLS configures TLS to the downstream.
	TLS TLS `yaml:"tls"`
	// DialTimeout bounds one connection attempt.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// AckTimeout bounds the wait for the ACK of one message.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// RetryBackoff bounds the delay before trying a failed message again.
	RetryBackoff Backoff `yaml:"retry_backoff"`
	// MaxAttemptsBeforeAlert: after this many failed attempts of one message
	// the forwarder alerts; a message the downstream rejects (AR/CR) is
	// dead-lettered once it has been tried this many times.
	MaxAttemptsBeforeAlert int `yaml:"max_attempts_before_alert"`
	// DeadAfter, when positive, dead-letters a message that still fails
	// (AE/CE, timeout, connection error) once it is older than DeadAfter
	// (counted from its release to the portal feed) and has been tried at
	// least MaxAttemptsBeforeAlert times. Zero (the default) never gives up:
	// the partition waits for the downstream, because a released result must
	// not be dropped.
	DeadAfter time.Duration `yaml:"dead_after"`
	// Partitions, when not empty, lists the partition tokens ("p00", ...)
	// forwarded; empty forwards every partition.
	Partitions []string `yaml:"partitions"`
	// Connections is the number of MLLP connections shared by the partitions.
	Connections int `yaml:"connections"`
	// Start is where durable consumers created for the first time begin:
	// StartAll (default) or StartNew. Existing consumers keep their position.
	Start string `yaml:"start"`
	// ConsumerPrefix names the durable consumers "<prefix>-<partition>".
	ConsumerPrefix string `yaml:"consumer_prefix"`
	// ReleaseInstructions adds the release instructions of the feed message
	// to the HL7 sent (an NTE with the note, a Z-segment with the rest; see
	// AddInstructions). Nil means true: only a site that needs the sender's
	// bytes unchanged turns it off.
	ReleaseInstructions *bool `yaml:"release_instructions"`
	// ReleaseSegment is the name of that Z-segment, DefaultReleaseSegment
	// when empty; another name serves a site whose senders already use ZRG.
	ReleaseSegment string `yaml:"release_segment"`

	// PartitionCount is the number of intake partitions (intake.partitions);
	// LoadConfig copies it. Zero means hold.DefaultPartitions.
	PartitionCount int `yaml:"-"`
}

// DefaultConfig returns the configuration with every default filled in
// (disabled).
func DefaultConfig() Config {
	return Config{
		DialTimeout:            DefaultDialTimeout,
		AckTimeout:             DefaultAckTimeout,
		RetryBackoff:           Backoff{Min: DefaultRetryMin, Max: DefaultRetryMax},
		MaxAttemptsBeforeAlert: DefaultMaxAttemptsBeforeAlert,
		Connections:            DefaultConnections,
		Start:                  StartAll,
		ConsumerPrefix:         DefaultConsumerPrefix,
		ReleaseSegment:         DefaultReleaseSegment,
		PartitionCount:         hold.DefaultPartitions,
	}
}

// LoadConfig decodes the "forwarder" section of c strictly over the defaults,
// takes the partition count from intake.partitions, and validates it.
func LoadConfig(c config.Config) (Config, error) {
	fc := DefaultConfig()
	if err := c.Decode(config.SectionForwarder, &fc); err != nil {
		return fc, err
	}
	fc.PartitionCount = c.Intake.Partitions
	return fc, fc.Validate()
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = d.AckTimeout
	}
	if c.RetryBackoff.Min == 0 {
		c.RetryBackoff.Min = d.RetryBackoff.Min
	}
	if c.RetryBackoff.Max == 0 {
		c.RetryBackoff.Max = max(d.RetryBackoff.Max, c.RetryBackoff.Min)
	}
	if c.MaxAttemptsBeforeAlert == 0 {
		c.MaxAttemptsBeforeAlert = d.MaxAttemptsBeforeAlert
	}
	if c.Connections == 0 {
		c.Connections = d.Connections
	}
	if c.Start == "" {
		c.Start = d.Start
	}
	if c.ConsumerPrefix == "" {
		c.ConsumerPrefix = d.ConsumerPrefix
	}
	if c.PartitionCount == 0 {
		c.PartitionCount = d.PartitionCount
	}
	if c.ReleaseSegment == "" {
		c.ReleaseSegment = d.ReleaseSegment
	}
	return c
}

// InstructionsOn reports whether release instructions are added to the HL7
// sent (release_instructions, true unless set to false).
func (c Config) InstructionsOn() bool {
	return c.ReleaseInstructions == nil || *c.ReleaseInstructions
}

var (
	partitionToken = regexp.MustCompile(`^p[0-9]{2,4}$`)
	consumerToken  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	zSegmentName   = regexp.MustCompile(`^Z[A-Z0-9]{2}$`)
)

// Validate names the key of every problem found. A disabled forwarder is
// valid whatever its other keys say.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	c = c.withDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("forwarder.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(c.Addr); err != nil || host == "" || port == "" {
		bad("addr", "must be host:port, got %q", c.Addr)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file must both be set")
	}
	if c.DialTimeout < 0 {
		bad("dial_timeout", "must be a positive duration, got %s", c.DialTimeout)
	}
	if c.AckTimeout < 0 {
		bad("ack_timeout", "must be a positive duration, got %s", c.AckTimeout)
	}
	if c.RetryBackoff.Min < 0 {
		bad("retry_backoff.min", "must be a positive duration, got %s", c.RetryBackoff.Min)
	}
	if c.RetryBackoff.Max < c.RetryBackoff.Min {
		bad("retry_backoff.max", "must be at least retry_backoff.min (%s), got %s", c.RetryBackoff.Min, c.RetryBackoff.Max)
	}
	if c.MaxAttemptsBeforeAlert < 1 {
		bad("max_attempts_before_alert", "must be at least 1, got %d", c.MaxAttemptsBeforeAlert)
	}
	if c.DeadAfter < 0 {
		bad("dead_after", "must be 0 (never give up) or a positive duration, got %s", c.DeadAfter)
	}
	if c.Connections < 1 || c.Connections > 64 {
		bad("connections", "must be between 1 and 64, got %d", c.Connections)
	}
	switch c.Start {
	case StartAll, StartNew:
	default:
		bad("start", "must be %q or %q, got %q", StartAll, StartNew, c.Start)
	}
	if !consumerToken.MatchString(c.ConsumerPrefix) {
		bad("consumer_prefix", "must be 1-32 letters, digits, '-' or '_', got %q", c.ConsumerPrefix)
	}
	if !zSegmentName.MatchString(c.ReleaseSegment) {
		bad("release_segment", "must be a Z-segment name: Z and two upper-case letters or digits, got %q", c.ReleaseSegment)
	}
	if c.PartitionCount < 1 || c.PartitionCount > 1024 {
		bad("partitions", "intake.partitions must be between 1 and 1024, got %d", c.PartitionCount)
	}
	valid := map[string]bool{}
	for _, p := range hold.PartitionTokens(c.PartitionCount) {
		valid[p] = true
	}
	seen := map[string]bool{}
	for i, p := range c.Partitions {
		switch {
		case !partitionToken.MatchString(p):
			bad(fmt.Sprintf("partitions[%d]", i), "must be a partition token such as p00, got %q", p)
		case !valid[p]:
			bad(fmt.Sprintf("partitions[%d]", i), "%q is not one of the %d intake partitions", p, c.PartitionCount)
		case seen[p]:
			bad(fmt.Sprintf("partitions[%d]", i), "%q is listed twice", p)
		}
		seen[p] = true
	}
	return errors.Join(errs...)
}

// partitions returns the partition tokens to forward.
func (c Config) partitions() []string {
	if len(c.Partitions) > 0 {
		return append([]string(nil), c.Partitions...)
	}
	return hold.PartitionTokens(c.PartitionCount)
}

// tlsConfig builds the client TLS configuration, or nil without TLS.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS.on() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("forwarder.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("forwarder.tls.ca_file: no PEM certificate in %s", c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("forwarder.tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// backoff returns the delay after the attempt-th failed attempt (1-based):
// RetryBackoff.Min doubled per earlier attempt, capped at RetryBackoff.Max.
func (c Config) backoff(attempt int) time.Duration {
	d := c.RetryBackoff.Min
	for i := 1; i < attempt && d < c.RetryBackoff.Max; i++ {
		d *= 2
	}
	return min(d, c.RetryBackoff.Max)
}
