// Package config holds resultgate's one configuration structure, decoded strictly
// from YAML (unknown keys fail, naming the key), completed with defaults and
// validated with errors that name the offending key.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Durability says what an AA/CA promises about the stored message.
type Durability string

const (
	// DurabilityFsync makes the embedded JetStream server fsync every write
	// (sync_interval: always): an AA means the message is on disk.
	DurabilityFsync Durability = "fsync"
	// DurabilityOS leaves flushing to JetStream's default interval: an AA means the
	// message is in the server's page cache and survives a process crash, but not
	// necessarily a power loss of the single node.
	DurabilityOS Durability = "os"
)

// TLS names the files of a TLS endpoint.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile enables client-certificate verification against this CA bundle.
	ClientCAFile string `yaml:"client_ca_file"`
	// RequireClientCert rejects peers without a valid client certificate (mutual
	// TLS, as IHE ATNA expects).
	RequireClientCert bool `yaml:"require_client_cert"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Log configures logging.
type Log struct {
	// Level is one of trace, debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is json, console, or auto (console on a terminal, JSON otherwise).
	Format string `yaml:"format"`
	// LogPHI logs message content. It contains PHI: leave it off in production.
	LogPHI bool `yaml:"log_phi"`
}

// MLLP configures the inbound MLLP listener.
type MLLP struct {
	Addr          string        `yaml:"addr"`
	MaxConns      int           `yaml:"max_conns"`
	MaxFrameBytes int           `yaml:"max_frame_bytes"`
	ReadTimeout   time.Duration `yaml:"read_timeout"`
	IdleTimeout   time.Duration `yaml:"idle_timeout"`
	WriteTimeout  time.Duration `yaml:"write_timeout"`
	KeepAlive     time.Duration `yaml:"keepalive"`
	TLS           TLS           `yaml:"tls"`
	// AllowedNetworks restricts peers to these CIDR prefixes (IPv4 or IPv6;
	// a bare address means that address alone); empty allows all.
	AllowedNetworks []string `yaml:"allowed_networks"`
	// MaxConnsPerPeer bounds the connections of one source IP address; 0
	// means no per-peer cap. At max_conns or at this cap a new connection
	// evicts the longest-idle one (of the peer, for this cap); it is refused
	// only if all are busy.
	MaxConnsPerPeer int `yaml:"max_conns_per_peer"`
}

// Networks parses AllowedNetworks: a CIDR prefix (10.20.0.0/16, fd00::/8) or
// a bare address (10.20.0.5 as /32, 2001:db8::5 as /128). Addresses with a
// zone (fe80::1%eth0) are refused: a zone names an interface of this host,
// not a network.
func (m MLLP) Networks() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, n := range m.AllowedNetworks {
		p, err := parseNetwork(n)
		if err != nil {
			return nil, fmt.Errorf("mllp.allowed_networks[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// HTTP configures the HTTP API, web page, health and metrics endpoints.
type HTTP struct {
	Addr string `yaml:"addr"`
	TLS  TLS    `yaml:"tls"`
	// PublicOrigins are the origins (scheme://host[:port]) the web page is
	// served from, as browsers name them in the Origin header; a state change
	// from any other origin is refused. Empty: the origins of http.addr itself
	// (http or https as http.tls says; localhost too for a loopback address).
	PublicOrigins []string `yaml:"public_origins"`
}

// Origins returns the origins a state change may come from: PublicOrigins,
// or those of Addr.
func (h HTTP) Origins() []string {
	if len(h.PublicOrigins) > 0 {
		return h.PublicOrigins
	}
	scheme := "http"
	if h.TLS.CertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(h.Addr)
	if err != nil {
		return nil
	}
	out := []string{scheme + "://" + net.JoinHostPort(host, port)}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
		out = append(out, scheme+"://"+net.JoinHostPort("localhost", port), scheme+"://"+net.JoinHostPort("127.0.0.1", port))
	}
	return out
}

// NATS configures the embedded server or the connection to an existing cluster.
type NATS struct {
	// URL connects to an existing NATS cluster; empty starts the embedded server.
	URL string `yaml:"url"`
	// Listen is the embedded server's client address.
	Listen    string `yaml:"listen"`
	CredsFile string `yaml:"creds_file"`
	CAFile    string `yaml:"ca_file"`
	CertFile  string `yaml:"cert_file"`
	KeyFile   string `yaml:"key_file"`
	// Replicas is the replica count of every stream and bucket (R3 in a cluster).
	Replicas int `yaml:"replicas"`
}

// Intake configures what the MLLP intake accepts and how it stores it.
type Intake struct {
	// AcceptTypes lists accepted MSH-9 types as CODE^EVENT.
	AcceptTypes []string `yaml:"accept_types"`
	// AllowedFacilities lists accepted sending facilities (MSH-4.1); empty allows all.
	AllowedFacilities []string `yaml:"allowed_facilities"`
	// DuplicateWindow is how long a resent message (same MSH-3, MSH-4, MSH-10) is
	// recognised; senders resend long after two minutes, hence 24h.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	StoreTimeout    time.Duration `yaml:"store_timeout"`
	Partitions      int           `yaml:"partitions"`
	// PartitionKeyFile holds the secret that keys patient hashes. With the
	// embedded server it defaults to DATA_DIR/partition.key, created on first
	// start; with nats.url every instance must share one file, so it must be set.
	PartitionKeyFile string `yaml:"partition_key_file"`
	// AckMode is auto (enhanced mode when MSH-15/16 are valued), original or enhanced.
	AckMode string `yaml:"ack_mode"`
}

// FHIR configures the portal feed's FHIR R4 Bundles (package fhirmap).
type FHIR struct {
	// Validate turns on full runtime validation of every Bundle with
	// google/fhir/go's validating unmarshaller before it is published (about
	// 27 times the cost of mapping and encoding it; see docs/BENCHMARKS.md).
	// Off by default: the mapping only emits Bundles that validate, which
	// fhirmap's tests check for every Bundle they produce.
	Validate bool `yaml:"validate"`
	// Patient says what the Bundle's Patient resource carries besides the
	// PID-3 identifiers and the keyed hash: "demographics" (the default) adds
	// name, birth date and sex, the details a portal matches a patient on;
	// "identifiers" adds nothing, for a portal that matches on identifiers
	// alone and should receive no more.
	Patient string `yaml:"patient"`
	// IdentifierSystems maps a PID-3 assigning authority (CX-4 namespace ID,
	// or its universal ID) to the FHIR system URI of the identifiers it
	// assigns, e.g. {GENHOSP: "urn:oid:2.16.840.1.113883.3.9999.2"}. An
	// authority not listed gets urn:oid: of its ISO OID, urn:uuid: of its
	// UUID, its URI, or else fhirmap's default
	// .../NamingSystem/assigning-authority/<namespace> (docs/FHIR.md).
	IdentifierSystems map[string]string `yaml:"identifier_systems"`
}

// Config is resultgate's whole configuration.
type Config struct {
	DataDir    string     `yaml:"data_dir"`
	Durability Durability `yaml:"durability"`
	Log        Log        `yaml:"log"`
	MLLP       MLLP       `yaml:"mllp"`
	HTTP       HTTP       `yaml:"http"`
	NATS       NATS       `yaml:"nats"`
	Intake     Intake     `yaml:"intake"`
	FHIR       FHIR       `yaml:"fhir"`

	// Roles are the parts this instance runs (intake, pipeline, api); default
	// all three. See Role.
	Roles []Role `yaml:"roles"`

	// Extra holds sections owned by other packages (policy, holds, forwarder,
	// auth), decoded strictly by those packages.
	Extra map[string]yaml.Node `yaml:",inline"`

	// doc is the file's root mapping, for the lines of keys (LineOf).
	doc *yaml.Node
}

// DefaultAcceptTypes are the message types accepted when none are configured.
var DefaultAcceptTypes = []string{
	"ORU^R01", "ORU^R30", "ORU^R31", "ORU^R32",
	"MDM^T02", "MDM^T04", "MDM^T06", "MDM^T08", "MDM^T10",
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		DataDir:    "./data",
		Durability: DurabilityFsync,
		Roles:      append([]Role(nil), AllRoles...),
		Log:        Log{Level: "info", Format: "auto"},
		MLLP: MLLP{
			Addr:          ":2575",
			MaxConns:      256,
			MaxFrameBytes: 16 << 20,
			ReadTimeout:   30 * time.Second,
			IdleTimeout:   10 * time.Minute,
			WriteTimeout:  10 * time.Second,
			// Keep-alive probes find interface engines that vanished behind a
			// firewall that silently drops idle flows (often after 5-15 min).
			KeepAlive: 60 * time.Second,
			// A sender opens one connection per outbound channel; 32 lets a
			// busy interface engine in while no single host can take more
			// than an eighth of max_conns.
			MaxConnsPerPeer: 32,
		},
		HTTP: HTTP{Addr: "127.0.0.1:8080"},
		NATS: NATS{Listen: "127.0.0.1:4222", Replicas: 1},
		Intake: Intake{
			AcceptTypes:     append([]string(nil), DefaultAcceptTypes...),
			DuplicateWindow: 24 * time.Hour,
			StoreTimeout:    5 * time.Second,
			Partitions:      16,
			AckMode:         "auto",
		},
		FHIR: FHIR{Patient: FHIRPatientDemographics},
	}
}

// Values of fhir.patient.
const (
	FHIRPatientDemographics = "demographics"
	FHIRPatientIdentifiers  = "identifiers"
)

// ErrUnknownKey is wrapped by the problem of each key the configuration does
// not define.
var ErrUnknownKey = errors.New("unknown key")

// The top-level sections owned by other packages. Each is decoded by its
// owner with Config.Decode; app.LoadSections decodes all of them, for serve
// and check-config alike.
const (
	SectionPolicy    = "policy"
	SectionRules     = "rules"
	SectionHolds     = "holds"
	SectionForwarder = "forwarder"
	SectionAuth      = "auth"
	// SectionNotify configures notification receivers and routes
	// (router/notify/deliver).
	SectionNotify = "notify"
)

// SectionNames lists the sections owned by other packages: the one list of
// them. Parse keeps these keys for their owners and refuses any other key
// that Config does not define; Decode refuses a name not in it.
var SectionNames = []string{SectionPolicy, SectionRules, SectionHolds, SectionForwarder, SectionAuth, SectionNotify}

func isSection(name string) bool {
	for _, s := range SectionNames {
		if s == name {
			return true
		}
	}
	return false
}

// Parse decodes YAML strictly over the defaults. It reports every problem of
// the core sections in one error of type Problems, each by key and line in the
// file's terms: unknown keys (all of them, with the key probably meant),
// values of the wrong kind, durations out of their sane range. Alongside an
// error it returns what it could decode, so that a checker can go on to
// validate the rest.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return cfg, Problems{syntaxProblem(err)}
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	root := doc.Content[0]
	cfg.doc = root
	sections := map[string]bool{}
	for _, s := range SectionNames {
		sections[s] = true
	}
	d := decoder{sections: sections}
	d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	cfg.doc = root
	if len(d.problems) > 0 {
		return cfg, d.problems
	}
	return cfg, nil
}

// Load reads and parses the file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Decode decodes the top-level section name strictly into out, over the
// values out already holds (the owner's defaults). It reports every problem
// of the section as Problems, by key (policy.time_zone) and line in the file.
// A missing section leaves out unchanged.
func (c Config) Decode(name string, out any) error {
	if !isSection(name) {
		return fmt.Errorf("config: %q is not a section (SectionNames lists them)", name)
	}
	n, ok := c.Extra[name]
	if !ok {
		return nil
	}
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("config: decoding %s: want a non-nil pointer, got %T", name, out)
	}
	var d decoder
	d.decode(&n, v.Elem(), name)
	if len(d.problems) > 0 {
		return d.problems
	}
	return nil
}

// Validate checks the configuration and names the key of the first problems found.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" && c.NATS.URL == "" {
		bad("data_dir", "must be set when the embedded NATS server is used")
	}
	switch c.Durability {
	case DurabilityFsync, DurabilityOS:
	default:
		bad("durability", "must be %q or %q, got %q", DurabilityFsync, DurabilityOS, c.Durability)
	}
	c.validateRoles(bad)
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of trace, debug, info, warn, error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		bad("log.format", "must be auto, json or console, got %q", c.Log.Format)
	}
	checkAddr := func(key, addr string) {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "must be host:port, got %q", addr)
		}
	}
	checkAddr("mllp.addr", c.MLLP.Addr)
	checkAddr("http.addr", c.HTTP.Addr)
	for i, o := range c.HTTP.PublicOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			bad(fmt.Sprintf("http.public_origins[%d]", i), "must be an origin such as https://results.example.org (scheme and host, no path), got %q", o)
		}
	}
	if c.NATS.URL == "" {
		checkAddr("nats.listen", c.NATS.Listen)
	}
	if c.MLLP.MaxConns < 1 {
		bad("mllp.max_conns", "must be at least 1, got %d", c.MLLP.MaxConns)
	}
	if c.MLLP.MaxFrameBytes < 1024 || c.MLLP.MaxFrameBytes > 1<<30 {
		bad("mllp.max_frame_bytes", "must be between 1024 and 1073741824, got %d", c.MLLP.MaxFrameBytes)
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{
		{"mllp.read_timeout", c.MLLP.ReadTimeout}, {"mllp.idle_timeout", c.MLLP.IdleTimeout},
		{"mllp.write_timeout", c.MLLP.WriteTimeout}, {"intake.duplicate_window", c.Intake.DuplicateWindow},
		{"intake.store_timeout", c.Intake.StoreTimeout},
	} {
		if d.d <= 0 {
			bad(d.key, "must be a positive duration, got %s", d.d)
		}
	}
	if c.MLLP.KeepAlive < 0 {
		bad("mllp.keepalive", "must not be negative, got %s", c.MLLP.KeepAlive)
	}
	if c.MLLP.MaxConnsPerPeer < 0 {
		bad("mllp.max_conns_per_peer", "must not be negative (0 means no per-peer cap), got %d", c.MLLP.MaxConnsPerPeer)
	}
	for i, n := range c.MLLP.AllowedNetworks {
		if _, err := parseNetwork(n); err != nil {
			bad(fmt.Sprintf("mllp.allowed_networks[%d]", i), "must be a CIDR prefix such as 10.1.0.0/16 or fd00::/8, or an IP address, got %q", n)
		}
	}
	checkTLS := func(key string, t TLS) {
		if t.Enabled() && (t.CertFile == "" || t.KeyFile == "") {
			bad(key, "cert_file and key_file must both be set")
		}
		if t.RequireClientCert && t.ClientCAFile == "" {
			bad(key+".client_ca_file", "must be set when require_client_cert is true")
		}
		if (t.ClientCAFile != "" || t.RequireClientCert) && !t.Enabled() {
			bad(key, "client certificate settings need cert_file and key_file")
		}
	}
	checkTLS("mllp.tls", c.MLLP.TLS)
	checkTLS("http.tls", c.HTTP.TLS)
	if (c.NATS.CertFile == "") != (c.NATS.KeyFile == "") {
		bad("nats", "cert_file and key_file must both be set")
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		bad("nats.replicas", "must be between 1 and 5, got %d", c.NATS.Replicas)
	}
	if c.NATS.URL == "" && c.NATS.Replicas != 1 {
		bad("nats.replicas", "must be 1 with the embedded single-node server, got %d", c.NATS.Replicas)
	}
	if len(c.Intake.AcceptTypes) == 0 {
		bad("intake.accept_types", "must list at least one message type")
	}
	for i, t := range c.Intake.AcceptTypes {
		code, event, ok := strings.Cut(t, "^")
		if !ok || len(code) != 3 || event == "" {
			bad(fmt.Sprintf("intake.accept_types[%d]", i), "must look like ORU^R01, got %q", t)
		}
	}
	switch c.Intake.AckMode {
	case "auto", "original", "enhanced":
	default:
		bad("intake.ack_mode", "must be auto, original or enhanced, got %q", c.Intake.AckMode)
	}
	if c.NATS.URL != "" && c.Intake.PartitionKeyFile == "" {
		bad("intake.partition_key_file", "must be set when nats.url is set: every instance must hash patients with the same key")
	}
	if c.Intake.Partitions < 1 || c.Intake.Partitions > 1024 {
		bad("intake.partitions", "must be between 1 and 1024, got %d", c.Intake.Partitions)
	}
	switch c.FHIR.Patient {
	case FHIRPatientDemographics, FHIRPatientIdentifiers:
	default:
		bad("fhir.patient", "must be %s or %s, got %q", FHIRPatientDemographics, FHIRPatientIdentifiers, c.FHIR.Patient)
	}
	names := make([]string, 0, len(c.FHIR.IdentifierSystems))
	for name := range c.FHIR.IdentifierSystems {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := "fhir.identifier_systems." + name
		if name == "" {
			bad("fhir.identifier_systems", "an assigning authority name must not be empty")
			continue
		}
		if sys := c.FHIR.IdentifierSystems[name]; !absoluteURI(sys) {
			bad(key, "must be an absolute URI such as urn:oid:2.16.840.1.113883.3.9999.2 or https://example.org/fhir/sid/mrn, got %q", sys)
		}
	}
	return errors.Join(errs...)
}

// absoluteURI reports whether s is an absolute URI without white space, as
// a FHIR identifier system must be.
func absoluteURI(s string) bool {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}
