package deliver

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/resultgate/resultgate/router/bus"
)

// Defaults applied to zero fields of Config.
const (
	// DefaultConsumer names the durable consumer on the NOTIFY stream.
	DefaultConsumer = "notify-deliver"
	// DefaultRetryMin and DefaultRetryMax bound the delay before a failed
	// delivery is tried again: it doubles from Min with each attempt up to
	// Max. Five minutes keeps a receiver that is down for hours from being
	// hammered while still delivering within minutes of its return.
	DefaultRetryMin = 2 * time.Second
	DefaultRetryMax = 5 * time.Minute
	// DefaultMaxAttempts is how many times one notification is tried before
	// it is parked as failed: with the default back-off, about 12 hours of
	// retrying (2 s doubling to 5 min, then every 5 min), longer than any
	// reasonable receiver outage and shorter than the shortest hold.
	DefaultMaxAttempts = 150
	// DefaultWorkers is how many notifications one instance delivers at a
	// time: a slow receiver (up to its timeout) delays only its own.
	DefaultWorkers = 4
	// DefaultTimeout bounds one webhook request or one SMTP conversation.
	DefaultTimeout = 10 * time.Second
	// maxTimeout bounds the receivers' timeouts: the consumer's ack wait
	// is derived from it, and a redelivery must not overtake an attempt.
	maxTimeout = 2 * time.Minute
)

// Receiver types.
const (
	TypeWebhook = "webhook"
	TypeEmail   = "email"
)

// Roles a route may match: who the notification is for, from its subject.
const (
	// RoleClinician is a notification on notify.clinician.<provider key>.
	RoleClinician = "clinician"
	// RoleOnCall is a notification on notify.oncall.
	RoleOnCall = "oncall"
)

// Start positions of the durable consumer created for the first time.
const (
	// StartNew delivers only notifications published after the consumer is
	// first created (the default: enabling receivers on an install with a
	// long NOTIFY history does not page everyone about old holds).
	StartNew = "new"
	// StartAll delivers everything the NOTIFY stream holds.
	StartAll = "all"
)

// Kinds lists the notification kinds a route may match: those the pipeline
// publishes on NOTIFY (router/notify), and the dead letters and refused
// releases read from DEAD and AUDIT.
var Kinds = []string{bus.NotifyHoldCreated, bus.NotifyReminder, bus.NotifyEscalation, bus.NotifyTriage, KindDeadLetter, KindReleaseRefused}

// Roles lists the roles a route may match.
var Roles = []string{RoleClinician, RoleOnCall, RoleOperator}

// Backoff bounds the retry delay.
type Backoff struct {
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

// Webhook is a receiver that POSTs each notification as JSON.
type Webhook struct {
	// URL is the http or https endpoint.
	URL string `yaml:"url"`
	// HMACSecretFile holds the secret that signs each request
	// (Resultgate-Signature). Required: an unsigned notification could be
	// forged by anyone who can reach the receiver.
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// Timeout bounds one request, response included.
	Timeout time.Duration `yaml:"timeout"`
	// Headers are added to every request (e.g. a routing key the receiver
	// expects). They cannot replace the headers resultgate sets.
	Headers map[string]string `yaml:"headers"`
	// Text is the template of the body's "text" member (the summary a chat
	// or paging system shows); empty uses DefaultText.
	Text string `yaml:"text"`
}

// Email is a receiver that sends each notification as a mail over SMTP.
type Email struct {
	// Smarthost is the SMTP server, host:port (587 for submission).
	Smarthost string `yaml:"smarthost"`
	// From is the envelope and header sender.
	From string `yaml:"from"`
	// To lists the recipients.
	To []string `yaml:"to"`
	// Hello is the name given in EHLO; empty uses "localhost".
	Hello string `yaml:"hello"`
	// RequireSTARTTLS refuses to send unless the server offers STARTTLS
	// (nil means true). Turning it off sends in clear text when the server
	// does not offer it; never do so across a network you do not control.
	RequireSTARTTLS *bool `yaml:"require_starttls"`
	// CAFile verifies the server's certificate; empty uses the system roots.
	CAFile string `yaml:"ca_file"`
	// AuthUsername and AuthPasswordFile authenticate with AUTH PLAIN, only
	// ever over TLS.
	AuthUsername     string `yaml:"auth_username"`
	AuthPasswordFile string `yaml:"auth_password_file"`
	// Timeout bounds the whole SMTP conversation.
	Timeout time.Duration `yaml:"timeout"`
	// Subject and Body are text/template templates; empty uses
	// DefaultSubject and DefaultBody.
	Subject string `yaml:"subject"`
	Body    string `yaml:"body"`
}

// StartTLSRequired reports whether STARTTLS is required (the default).
func (e Email) StartTLSRequired() bool { return e.RequireSTARTTLS == nil || *e.RequireSTARTTLS }

// Receiver is one named destination of notifications.
type Receiver struct {
	// Name is how routes refer to the receiver; it appears in metrics
	// labels and idempotency keys, so it carries no PHI.
	Name string `yaml:"name"`
	// Type is webhook or email; the section of that name configures it.
	Type    string   `yaml:"type"`
	Webhook *Webhook `yaml:"webhook"`
	Email   *Email   `yaml:"email"`
	// IncludePHI adds the patient's identifier and the test's name to what
	// this receiver gets (Data.PHI). Off by default: a pager, a chat room or
	// a mailbox outside the hospital's control must not receive PHI.
	IncludePHI bool `yaml:"include_phi"`
}

// Match selects notifications. Every list that is set must contain the
// notification's value; an empty list matches anything.
type Match struct {
	// Kinds are notification kinds (Kinds).
	Kinds []string `yaml:"kinds"`
	// Roles are clinician, oncall or operator.
	Roles []string `yaml:"roles"`
	// ProviderIDs are ordering providers' ID numbers (ORC-12/OBR-16), as the
	// clinician's API token names them.
	ProviderIDs []string `yaml:"provider_ids"`
	// Tags match when the held result carries any of them.
	Tags []string `yaml:"tags"`
}

// Route sends the notifications it matches to its receivers. Routes are
// tried in order; the first that matches decides, unless it says Continue,
// in which case later matching routes add their receivers too (as in
// Alertmanager's routing tree, flattened to one level).
type Route struct {
	Match     Match    `yaml:"match"`
	Receivers []string `yaml:"receivers"`
	Continue  bool     `yaml:"continue"`
}

// Config is the notify section of resultgate's configuration (key
// "notify:"). Without receivers nothing is delivered and nothing starts.
type Config struct {
	// PublicURL is the worklist's address as people open it, the base of
	// every link in a notification; empty takes the first of
	// http.public_origins.
	PublicURL string `yaml:"public_url"`
	// Consumer names the durable consumer on NOTIFY.
	Consumer string `yaml:"consumer"`
	// Start is where the consumer begins when first created: new or all.
	Start string `yaml:"start"`
	// RetryBackoff bounds the delay between attempts of one notification.
	RetryBackoff Backoff `yaml:"retry_backoff"`
	// MaxAttempts is how many attempts a notification gets before it is
	// parked as failed (kept in the notify_failures bucket, listed by
	// `resultgate notify failures`).
	MaxAttempts int `yaml:"max_attempts"`
	// Workers is how many notifications are delivered at a time.
	Workers   int        `yaml:"workers"`
	Receivers []Receiver `yaml:"receivers"`
	Routes    []Route    `yaml:"routes"`
}

// DefaultConfig returns the configuration with every default filled in (no
// receivers).
func DefaultConfig() Config {
	return Config{
		Consumer:     DefaultConsumer,
		Start:        StartNew,
		RetryBackoff: Backoff{Min: DefaultRetryMin, Max: DefaultRetryMax},
		MaxAttempts:  DefaultMaxAttempts,
		Workers:      DefaultWorkers,
	}
}

// Enabled reports whether any receiver is configured.
func (c Config) Enabled() bool { return len(c.Receivers) > 0 }

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// reserved are the headers resultgate sets on a webhook request.
var reserved = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true, "User-Agent": true,
	textproto.CanonicalMIMEHeaderKey(bus.HeaderIdempotencyKey):   true,
	textproto.CanonicalMIMEHeaderKey(bus.HeaderNotifySignature):  true,
	textproto.CanonicalMIMEHeaderKey(bus.HeaderNotifyTimestamp):  true,
	textproto.CanonicalMIMEHeaderKey(bus.HeaderNotifyKind):       true,
	textproto.CanonicalMIMEHeaderKey(bus.HeaderNotifyDeliveryNo): true,
}

// Validate names the key of every problem found: unknown receivers in
// routes, bad URLs and addresses, secret files that cannot be read, and
// templates that do not parse or do not execute on a sample notification.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("notify.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !c.Enabled() {
		if len(c.Routes) > 0 {
			bad("routes", "route notifications to receivers, but notify.receivers lists none")
		}
		return errors.Join(errs...)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("public_url", "must be an http or https URL such as https://results.example.org, got %q", c.PublicURL)
		}
	}
	if !nameRe.MatchString(c.Consumer) {
		bad("consumer", "must be 1-64 letters, digits, '-' or '_', got %q", c.Consumer)
	}
	switch c.Start {
	case StartNew, StartAll:
	default:
		bad("start", "must be %q or %q, got %q", StartNew, StartAll, c.Start)
	}
	if c.RetryBackoff.Min <= 0 {
		bad("retry_backoff.min", "must be a positive duration, got %s", c.RetryBackoff.Min)
	}
	if c.RetryBackoff.Max < c.RetryBackoff.Min {
		bad("retry_backoff.max", "must be at least retry_backoff.min (%s), got %s", c.RetryBackoff.Min, c.RetryBackoff.Max)
	}
	if c.MaxAttempts < 1 {
		bad("max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	}
	if c.Workers < 1 || c.Workers > 64 {
		bad("workers", "must be between 1 and 64, got %d", c.Workers)
	}
	names := map[string]int{}
	for i, r := range c.Receivers {
		key := fmt.Sprintf("receivers[%d]", i)
		switch j, dup := names[r.Name]; {
		case !nameRe.MatchString(r.Name):
			bad(key+".name", "must be 1-64 letters, digits, '-' or '_', got %q", r.Name)
		case dup:
			bad(key+".name", "%q is already the name of receivers[%d]", r.Name, j)
		default:
			names[r.Name] = i
		}
		switch r.Type {
		case TypeWebhook:
			if r.Email != nil {
				bad(key+".email", "is set but type is webhook")
			}
			if r.Webhook == nil {
				bad(key+".webhook", "must be set for a webhook receiver (url, hmac_secret_file)")
				continue
			}
			errs = append(errs, r.Webhook.validate("notify."+key+".webhook"))
			if u, err := url.Parse(r.Webhook.URL); r.IncludePHI && err == nil && u.Scheme != "https" {
				bad(key+".include_phi", "needs an https webhook.url: PHI is never sent in clear text")
			}
		case TypeEmail:
			if r.Webhook != nil {
				bad(key+".webhook", "is set but type is email")
			}
			if r.Email == nil {
				bad(key+".email", "must be set for an email receiver (smarthost, from, to)")
				continue
			}
			errs = append(errs, r.Email.validate("notify."+key+".email"))
			if r.IncludePHI && !r.Email.StartTLSRequired() {
				bad(key+".include_phi", "needs email.require_starttls: PHI is never sent in clear text")
			}
		default:
			bad(key+".type", "must be %s or %s, got %q", TypeWebhook, TypeEmail, r.Type)
		}
	}
	kinds := map[string]bool{}
	for _, k := range Kinds {
		kinds[k] = true
	}
	used := map[string]bool{}
	for i, rt := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		for j, k := range rt.Match.Kinds {
			if !kinds[k] {
				bad(fmt.Sprintf("%s.match.kinds[%d]", key, j), "must be one of %s, got %q", strings.Join(Kinds, ", "), k)
			}
		}
		for j, r := range rt.Match.Roles {
			if !slices.Contains(Roles, r) {
				bad(fmt.Sprintf("%s.match.roles[%d]", key, j), "must be one of %s, got %q", strings.Join(Roles, ", "), r)
			}
		}
		if len(rt.Receivers) == 0 {
			bad(key+".receivers", "must name at least one receiver")
		}
		for j, name := range rt.Receivers {
			if _, ok := names[name]; !ok {
				bad(fmt.Sprintf("%s.receivers[%d]", key, j), "unknown receiver %q (notify.receivers names %s)", name, receiverNames(c.Receivers))
			}
			used[name] = true
		}
	}
	if len(c.Routes) == 0 {
		bad("routes", "must route notifications to the receivers: with none, nothing is delivered")
	}
	for _, r := range c.Receivers {
		if _, ok := names[r.Name]; ok && !used[r.Name] && len(c.Routes) > 0 {
			bad(fmt.Sprintf("receivers[%d]", names[r.Name]), "receiver %q is named by no route: it would never receive anything", r.Name)
		}
	}
	return errors.Join(errs...)
}

func receiverNames(rs []Receiver) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%q", r.Name))
	}
	return strings.Join(out, ", ")
}

func (w Webhook) validate(key string) error {
	var errs []error
	bad := func(sub, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, sub, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		bad("url", "must be an http or https URL without credentials, such as https://pager.example.org/hooks/resultgate, got %q", w.URL)
	}
	if w.HMACSecretFile == "" {
		bad("hmac_secret_file", "must be set: every request is signed")
	} else if _, err := readSecret(w.HMACSecretFile); err != nil {
		bad("hmac_secret_file", "%v", err)
	}
	if w.Timeout < 0 || w.Timeout > maxTimeout {
		bad("timeout", "must be between 0 (the default, %s) and %s, got %s", DefaultTimeout, maxTimeout, w.Timeout)
	}
	for name, v := range w.Headers {
		switch {
		case !validHeaderName(name):
			bad("headers", "%q is not a valid header name", name)
		case reserved[textproto.CanonicalMIMEHeaderKey(name)]:
			bad("headers."+name, "is set by resultgate and cannot be configured")
		case strings.ContainsAny(v, "\r\n\x00"):
			bad("headers."+name, "must be one line")
		}
	}
	if err := checkTemplate(w.Text); err != nil {
		bad("text", "%v", err)
	}
	return errors.Join(errs...)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

func (e Email) validate(key string) error {
	var errs []error
	bad := func(sub, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, sub, fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(e.Smarthost); err != nil || host == "" || port == "" {
		bad("smarthost", "must be host:port such as smtp.example.org:587, got %q", e.Smarthost)
	}
	if _, err := mail.ParseAddress(e.From); err != nil {
		bad("from", "must be a mail address, got %q", e.From)
	}
	if len(e.To) == 0 {
		bad("to", "must list at least one address")
	}
	for i, t := range e.To {
		if _, err := mail.ParseAddress(t); err != nil {
			bad(fmt.Sprintf("to[%d]", i), "must be a mail address, got %q", t)
		}
	}
	if strings.ContainsAny(e.Hello, " \r\n") {
		bad("hello", "must be a host name, got %q", e.Hello)
	}
	if (e.AuthUsername == "") != (e.AuthPasswordFile == "") {
		bad("auth_username", "auth_username and auth_password_file must both be set, or neither")
	}
	if e.AuthPasswordFile != "" {
		if _, err := readSecret(e.AuthPasswordFile); err != nil {
			bad("auth_password_file", "%v", err)
		}
		if !e.StartTLSRequired() {
			bad("require_starttls", "must be true when auth_username is set: the password is only ever sent over TLS")
		}
	}
	if e.CAFile != "" {
		if _, err := caPool(e.CAFile); err != nil {
			bad("ca_file", "%v", err)
		}
	}
	if e.Timeout < 0 || e.Timeout > maxTimeout {
		bad("timeout", "must be between 0 (the default, %s) and %s, got %s", DefaultTimeout, maxTimeout, e.Timeout)
	}
	if err := checkTemplate(e.Subject); err != nil {
		bad("subject", "%v", err)
	}
	if err := checkTemplate(e.Body); err != nil {
		bad("body", "%v", err)
	}
	return errors.Join(errs...)
}

// maxSecret bounds a secret file: a secret is a line, not a document.
const maxSecret = 4096

// readSecret reads a secret file: it must exist, be readable, and hold a
// non-empty secret of at most maxSecret bytes (trailing line breaks are
// not part of it). The error never carries the content.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	buf := make([]byte, maxSecret+1)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	if n > maxSecret {
		return nil, fmt.Errorf("%s is longer than %d bytes: not a secret", path, maxSecret)
	}
	s := []byte(strings.TrimRight(string(buf[:n]), "\r\n"))
	if len(s) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// checkTemplate parses text (empty is the default) and executes it on a
// sample notification, so that a template naming a field that does not
// exist fails at check-config, not at 3 a.m.
func checkTemplate(text string) error {
	if text == "" {
		return nil
	}
	t, err := parseTemplate("t", text)
	if err != nil {
		return err
	}
	for _, d := range sampleData() {
		if _, err := render(t, d); err != nil {
			return err
		}
	}
	return nil
}

func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template: %w", stripTemplateName(err))
	}
	return t, nil
}

// stripTemplateName drops the internal template name from errors, which
// otherwise read "template: t:1: ...".
func stripTemplateName(err error) error {
	msg := strings.TrimPrefix(err.Error(), "template: t:")
	if msg == err.Error() {
		return err
	}
	return errors.New("line " + msg)
}

// backoff returns the delay after the attempt-th failed attempt (1-based).
func (c Config) backoff(attempt int) time.Duration {
	d := c.RetryBackoff.Min
	for i := 1; i < attempt && d < c.RetryBackoff.Max; i++ {
		d *= 2
	}
	return min(d, c.RetryBackoff.Max)
}
