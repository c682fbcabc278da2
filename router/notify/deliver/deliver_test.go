package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mime"
	"mime/quotedprintable"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/dead"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/notify"
)

// hook is a loopback webhook receiver that fails its first failFirst
// requests (503), or all while down is set, and records every request.
type hook struct {
	srv    *httptest.Server
	secret []byte

	mu        sync.Mutex
	failFirst int
	down      bool
	requests  []hookRequest
	accepted  []hookRequest
}

type hookRequest struct {
	header http.Header
	body   []byte
	data   Data
}

func newHook(t *testing.T, secret string, failFirst int) *hook {
	t.Helper()
	h := &hook{secret: []byte(secret), failFirst: failFirst}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var d Data
	_ = json.Unmarshal(body, &d)
	h.mu.Lock()
	defer h.mu.Unlock()
	req := hookRequest{header: r.Header.Clone(), body: body, data: d}
	h.requests = append(h.requests, req)
	if h.down || len(h.requests) <= h.failFirst {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	h.accepted = append(h.accepted, req)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

func (h *hook) counts() (requests, accepted int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.requests), len(h.accepted)
}

func (h *hook) snapshot() (all, accepted []hookRequest) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.requests...), append([]hookRequest(nil), h.accepted...)
}

// webhookConfig routes every notification to one webhook receiver named
// name, retrying quickly.
func webhookConfig(t *testing.T, name, url, secret string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PublicURL = "https://results.example.org"
	cfg.RetryBackoff = Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	cfg.Receivers = []Receiver{{Name: name, Type: TypeWebhook, Webhook: &Webhook{
		URL: url, HMACSecretFile: testutil.WriteFile(t, t.TempDir(), "secret", []byte(secret+"\n")),
		Timeout: 5 * time.Second, Headers: map[string]string{"X-Site": "test"},
	}}}
	cfg.Routes = []Route{{Receivers: []string{name}}}
	return cfg
}

func startDeliverer(t *testing.T, js jetstream.JetStream, cfg Config, opts Options) *Deliverer {
	t.Helper()
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	opts.Logger = zerolog.Nop()
	d, err := New(testutil.Ctx(t), js, cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	d.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return d
}

// sampleHold is a held result's PHI-free record, as the pipeline keeps it.
func sampleHold(id string, at time.Time) *hold.Hold {
	return &hold.Hold{ID: id, State: hold.StateHeld, ProviderKey: "pk1", ProviderID: "1234",
		Tags: nil, Bases: []hold.Basis{{Kind: "patient-request"}}, Deadline: at.Add(51 * time.Hour), CreatedAt: at}
}

func settled(t *testing.T, d *Deliverer) bool {
	t.Helper()
	n, err := d.Pending(testutil.Ctx(t))
	return err == nil && n == 0
}

func TestWebhookSignedRetriedDeliveredOnce(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	h := newHook(t, "hook-secret", 2)
	d := startDeliverer(t, env.JS, webhookConfig(t, "ward-pager", h.srv.URL, "hook-secret"), Options{})
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	if err := notify.New(env.JS).Send(testutil.Ctx(t), bus.NotifyHoldCreated, sampleHold("H-webhook1", at), at); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the notification delivered and acked", func() bool {
		_, acc := h.counts()
		return acc == 1 && settled(t, d)
	})
	all, acc := h.snapshot()
	if len(all) != 3 {
		t.Fatalf("requests = %d, want 3 (two failures, one success)", len(all))
	}
	key := acc[0].header.Get(bus.HeaderIdempotencyKey)
	if want := "ntf-H-webhook1-hold-created.ward-pager"; key != want {
		t.Errorf("idempotency key %q, want %q", key, want)
	}
	for i, r := range all {
		if got := r.header.Get(bus.HeaderIdempotencyKey); got != key {
			t.Errorf("request %d: idempotency key %q, want the same %q", i, got, key)
		}
		if got := r.header.Get(bus.HeaderNotifyDeliveryNo); got != strconv.Itoa(i+1) {
			t.Errorf("request %d: attempt header %q", i, got)
		}
		ts, err := strconv.ParseInt(r.header.Get(bus.HeaderNotifyTimestamp), 10, 64)
		if err != nil {
			t.Fatalf("request %d: timestamp: %v", i, err)
		}
		sig := r.header.Get(bus.HeaderNotifySignature)
		if !Verify(h.secret, ts, r.body, sig) {
			t.Errorf("request %d: signature %q does not verify", i, sig)
		}
		if Verify([]byte("other-secret"), ts, r.body, sig) || Verify(h.secret, ts+1, r.body, sig) {
			t.Errorf("request %d: signature verifies under the wrong secret or timestamp", i)
		}
		if r.header.Get("X-Site") != "test" || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("request %d: headers %v", i, r.header)
		}
	}
	got := acc[0].data
	if got.Kind != bus.NotifyHoldCreated || got.Role != RoleClinician || got.HoldID != "H-webhook1" || got.Count != 1 ||
		got.Link != "https://results.example.org/#hold=H-webhook1" || got.TimeLeft != "2 d 3 h" || got.PHI != nil ||
		!got.Deadline.Equal(at.Add(51*time.Hour)) || got.DeadlineText != "Wed 9 Dec 2026, 12:00 UTC" {
		t.Errorf("body: %+v", got)
	}
	if !strings.HasPrefix(got.Text, "A result is held for your review: A result is held before it reaches the patient portal.") {
		t.Errorf("text: %q", got.Text)
	}
	s := d.Stats().Deliveries["ward-pager"]
	if s[OutcomeSent] != 1 || s[OutcomeRetried] != 2 || s[OutcomeFailed] != 0 {
		t.Errorf("stats: %v", s)
	}
}

func TestUndeliverableIsParked(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	h := newHook(t, "s", 0)
	h.setDown(true)
	cfg := webhookConfig(t, "pager", h.srv.URL, "s")
	cfg.MaxAttempts = 3
	d := startDeliverer(t, env.JS, cfg, Options{})
	at := time.Now().UTC()
	if err := notify.New(env.JS).Triage(testutil.Ctx(t), notify.TriageNotice{Reason: bus.DeadUnattributed, Detail: "no PID-3", DeadSeq: 9, InboundSeq: 4, At: at}); err != nil {
		t.Fatal(err)
	}
	var fs []Failure
	testutil.Eventually(t, 10*time.Second, "the notification parked", func() bool {
		var err error
		fs, err = Failures(testutil.Ctx(t), env.JS)
		return err == nil && len(fs) == 1 && settled(t, d)
	})
	f := fs[0]
	if f.Receiver != "pager" || f.Kind != bus.NotifyTriage || f.Role != RoleOnCall || f.DeadSeq != 9 || f.Attempts != 3 ||
		f.MsgID != "ntf-dead-4-triage" || f.Error != "webhook: answered 503 Service Unavailable" {
		t.Errorf("failure: %+v", f)
	}
	if all, _ := h.counts(); all != 3 {
		t.Errorf("requests = %d, want 3 (max_attempts)", all)
	}
	s := d.Stats().Deliveries["pager"]
	if s[OutcomeSent] != 0 || s[OutcomeRetried] != 2 || s[OutcomeFailed] != 1 {
		t.Errorf("stats: %v", s)
	}
}

// TestRestartDeliversPendingOnce stops the deliverer while its receiver is
// down, starts another on the same durable consumer once the receiver is
// back, and checks that the notification arrives once, with the key of the
// attempts before the restart.
func TestRestartDeliversPendingOnce(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	h := newHook(t, "s", 0)
	h.setDown(true)
	cfg := webhookConfig(t, "pager", h.srv.URL, "s")
	cfg.RetryBackoff = Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	d1, err := New(testutil.Ctx(t), env.JS, cfg, Options{Location: time.UTC, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	d1.Start()
	at := time.Now().UTC()
	ntf := notify.New(env.JS)
	for _, id := range []string{"H-r1", "H-r2"} {
		if err := ntf.Send(testutil.Ctx(t), bus.NotifyReminder, sampleHold(id, at), at); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "both tried while the receiver is down", func() bool {
		n, _ := h.counts()
		return n >= 2
	})
	if err := d1.Stop(testutil.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	before, _ := h.snapshot()
	h.setDown(false)
	d2 := startDeliverer(t, env.JS, cfg, Options{})
	// Usually at the next back-off; at worst after the consumer's ack wait
	// (2 × 5 s + 30 s), for a message the stopped deliverer's last pull
	// received as it expired.
	testutil.Eventually(t, 60*time.Second, "both delivered after the restart", func() bool {
		_, acc := h.counts()
		return acc == 2 && settled(t, d2)
	})
	_, acc := h.snapshot()
	keys := map[string]int{}
	for _, r := range acc {
		keys[r.header.Get(bus.HeaderIdempotencyKey)]++
	}
	for _, id := range []string{"H-r1", "H-r2"} {
		if k := "ntf-" + id + "-reminder.pager"; keys[k] != 1 {
			t.Errorf("%s accepted %d times, want 1 (keys %v)", k, keys[k], keys)
		}
	}
	for _, r := range before {
		if keys[r.header.Get(bus.HeaderIdempotencyKey)] != 1 {
			t.Errorf("a key tried before the restart, %q, was not the one delivered after", r.header.Get(bus.HeaderIdempotencyKey))
		}
	}
}

// TestPartialSuccessRetriesOnlyTheFailed routes one notification to two
// receivers, one down: the one that accepted it is not sent it again.
func TestPartialSuccessRetriesOnlyTheFailed(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	up, flaky := newHook(t, "s", 0), newHook(t, "s", 3)
	cfg := webhookConfig(t, "up", up.srv.URL, "s")
	second := webhookConfig(t, "flaky", flaky.srv.URL, "s")
	cfg.Receivers = append(cfg.Receivers, second.Receivers...)
	cfg.Routes = []Route{{Receivers: []string{"up", "flaky"}}}
	d := startDeliverer(t, env.JS, cfg, Options{})
	at := time.Now().UTC()
	if err := notify.New(env.JS).Send(testutil.Ctx(t), bus.NotifyEscalation, sampleHold("H-esc", at), at); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "delivered to both", func() bool {
		_, a := flaky.counts()
		return a == 1 && settled(t, d)
	})
	if n, a := up.counts(); n != 1 || a != 1 {
		t.Errorf("the receiver that was up got %d requests, want 1", n)
	}
	if n, _ := flaky.counts(); n != 4 {
		t.Errorf("the flaky receiver got %d requests, want 4", n)
	}
	_, acc := up.snapshot()
	if acc[0].data.Role != RoleOnCall || acc[0].data.Kind != bus.NotifyEscalation {
		t.Errorf("escalation body: %+v", acc[0].data)
	}
}

// TestPartialSuccessSurvivesRestart: a notification routed to two
// receivers, one down, is accepted by the other; the deliverer stops and a
// new one (a restart, or another instance) takes over the retries: the
// receiver that accepted it is not sent it again (notify_sent), and the
// entry is gone once the notification is settled.
func TestPartialSuccessSurvivesRestart(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	up, down := newHook(t, "s", 0), newHook(t, "s", 0)
	down.setDown(true)
	cfg := webhookConfig(t, "up", up.srv.URL, "s")
	second := webhookConfig(t, "down", down.srv.URL, "s")
	cfg.Receivers = append(cfg.Receivers, second.Receivers...)
	cfg.Routes = []Route{{Receivers: []string{"up", "down"}}}
	cfg.RetryBackoff = Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	d1, err := New(testutil.Ctx(t), env.JS, cfg, Options{Location: time.UTC, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	d1.Start()
	at := time.Now().UTC()
	if err := notify.New(env.JS).Send(testutil.Ctx(t), bus.NotifyEscalation, sampleHold("H-part", at), at); err != nil {
		t.Fatal(err)
	}
	sent, err := env.JS.KeyValue(testutil.Ctx(t), bus.KVNotifySent)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "accepted by one, recorded, tried again for the other", func() bool {
		_, a := up.counts()
		n, _ := down.counts()
		keys, _ := sent.ListKeys(testutil.Ctx(t))
		found := 0
		if keys != nil {
			for range keys.Keys() {
				found++
			}
		}
		return a == 1 && n >= 2 && found == 1
	})
	if err := d1.Stop(testutil.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	down.setDown(false)
	d2 := startDeliverer(t, env.JS, cfg, Options{})
	testutil.Eventually(t, 60*time.Second, "delivered to the other after the restart", func() bool {
		_, a := down.counts()
		return a == 1 && settled(t, d2)
	})
	if n, _ := up.counts(); n != 1 {
		t.Errorf("the receiver that accepted before the restart got %d requests, want 1", n)
	}
	testutil.Eventually(t, 10*time.Second, "the notify_sent entry deleted once settled", func() bool {
		keys, err := sent.ListKeys(testutil.Ctx(t))
		if err != nil {
			return errors.Is(err, jetstream.ErrNoKeysFound)
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		return n == 0
	})
}

// smtpServer is an in-process go-smtp server on loopback, with STARTTLS
// (a certificate from a test CA) and AUTH PLAIN, recording what it accepts.
type smtpServer struct {
	addr string
	ca   *testutil.CA

	mu   sync.Mutex
	mail []smtpMail
}

type smtpMail struct {
	from string
	to   []string
	user string
	tls  bool
	data []byte
}

type smtpSession struct {
	srv  *smtpServer
	conn *smtp.Conn
	user string
	m    smtpMail
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "resultgate" || pass != "mail-password" {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.m.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.m.tls = s.conn.TLSConnectionState()
	s.m.user, s.m.data = s.user, b
	s.srv.mu.Lock()
	s.srv.mail = append(s.srv.mail, s.m)
	s.srv.mu.Unlock()
	return nil
}
func (s *smtpSession) Reset()        { s.m = smtpMail{} }
func (s *smtpSession) Logout() error { return nil }

func startSMTP(t *testing.T, withTLS bool) *smtpServer {
	t.Helper()
	s := &smtpServer{ca: testutil.NewCA(t, "Test Mail CA")}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = nopLogger{}
	if withTLS {
		leaf := s.ca.Issue(t, "mail.test", x509.ExtKeyUsageServerAuth)
		srv.TLSConfig = testTLS(leaf)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func (s *smtpServer) received() []smtpMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMail(nil), s.mail...)
}

// heldResult stores an inbound message with PHI in HL7_IN and the hold
// record naming it, as the pipeline would, and returns the hold.
func heldResult(t *testing.T, js jetstream.JetStream, id string, at time.Time) *hold.Hold {
	t.Helper()
	raw := "MSH|^~\\&|LAB|GENHOSP|PORTAL|GENHOSP|20261207090000||ORU^R01|CTL-" + id + "|P|2.5.1\r" +
		"PID|1||MRN4711^^^GENHOSP^MR||Testperson^Alice||19650505|F\r" +
		"OBR|1||F-1|88305^Surgical pathology report^L|||20261207080000\r" +
		"OBX|1|TX|88305^Diagnosis^L||Adenocarcinoma||||||F\r"
	ack, err := js.PublishMsg(testutil.Ctx(t), &nats.Msg{Subject: bus.InSubject("p00"), Data: []byte(raw)})
	if err != nil {
		t.Fatal(err)
	}
	h := sampleHold(id, at)
	h.Tags = nil
	h.Inbound = hold.InboundRef{Stream: bus.StreamHL7In, Seq: ack.Sequence, ControlID: "CTL-" + id, Partition: "p00"}
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(testutil.Ctx(t), bus.KVHolds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(testutil.Ctx(t), id, data); err != nil {
		t.Fatal(err)
	}
	return h
}

func emailReceiver(t *testing.T, name string, s *smtpServer, to string, phi bool) Receiver {
	return Receiver{Name: name, Type: TypeEmail, IncludePHI: phi, Email: &Email{
		Smarthost: s.addr, From: "ResultGate <resultgate@hospital.test>", To: []string{to},
		CAFile: s.ca.File(t), AuthUsername: "resultgate",
		AuthPasswordFile: testutil.WriteFile(t, t.TempDir(), "pw", []byte("mail-password\n")),
		Timeout:          5 * time.Second,
	}}
}

func TestEmailOverSTARTTLSWithAuth(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	s := startSMTP(t, true)
	cfg := DefaultConfig()
	cfg.PublicURL = "https://results.example.org/worklist"
	cfg.RetryBackoff = Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	cfg.Receivers = []Receiver{
		emailReceiver(t, "ward-mail", s, "ward7@hospital.test", false),
		emailReceiver(t, "secure-mail", s, "oncology@hospital.test", true),
	}
	cfg.Routes = []Route{{Match: Match{Kinds: []string{bus.NotifyHoldCreated}}, Receivers: []string{"ward-mail", "secure-mail"}}}
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	d := startDeliverer(t, env.JS, cfg, Options{Location: loc})
	at := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	h := heldResult(t, env.JS, "H-mail1", at)
	if err := notify.New(env.JS).Send(testutil.Ctx(t), bus.NotifyHoldCreated, h, at); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "two mails", func() bool { return len(s.received()) == 2 && settled(t, d) })
	byRcpt := map[string]smtpMail{}
	for _, m := range s.received() {
		if !m.tls || m.user != "resultgate" || m.from != "resultgate@hospital.test" || len(m.to) != 1 {
			t.Errorf("mail not sent over STARTTLS with AUTH: tls=%v user=%q from=%q to=%v", m.tls, m.user, m.from, m.to)
		}
		byRcpt[m.to[0]] = m
	}
	for rcpt, wantPHI := range map[string]bool{"ward7@hospital.test": false, "oncology@hospital.test": true} {
		m, ok := byRcpt[rcpt]
		if !ok {
			t.Fatalf("no mail to %s", rcpt)
		}
		msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
		if err != nil {
			t.Fatal(err)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || subject != "[resultgate] A result is held for your review" {
			t.Errorf("%s: subject %q (%v)", rcpt, subject, err)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
		if err != nil {
			t.Fatal(err)
		}
		text := string(body)
		for _, want := range []string{
			"A result is held before it reaches the patient portal.",
			"It is released at the latest on Wed 9 Dec 2026, 12:00 CST (2 d 3 h from now).",
			"Hold H-mail1.", "Open the worklist: https://results.example.org/worklist/",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: body lacks %q:\n%s", rcpt, want, text)
			}
		}
		key := map[bool]string{false: "ward-mail", true: "secure-mail"}[wantPHI]
		if got := msg.Header.Get("Message-Id"); got != "<ntf-H-mail1-hold-created."+key+"@resultgate>" {
			t.Errorf("%s: Message-ID %q", rcpt, got)
		}
		phi := []string{"MRN4711", "Surgical pathology report", "Testperson", "Alice", "Adenocarcinoma", "19650505"}
		for _, p := range phi {
			has := strings.Contains(string(m.data), p)
			want := wantPHI && (p == "MRN4711" || p == "Surgical pathology report")
			if has != want {
				t.Errorf("%s: mail contains %q: %v, want %v:\n%s", rcpt, p, has, want, text)
			}
		}
	}
}

func TestEmailRefusedWithoutSTARTTLS(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	s := startSMTP(t, false)
	cfg := DefaultConfig()
	cfg.MaxAttempts = 1
	r := emailReceiver(t, "mail", s, "ward7@hospital.test", false)
	r.Email.AuthUsername, r.Email.AuthPasswordFile = "", ""
	cfg.Receivers = []Receiver{r}
	cfg.Routes = []Route{{Receivers: []string{"mail"}}}
	d := startDeliverer(t, env.JS, cfg, Options{})
	at := time.Now().UTC()
	if err := notify.New(env.JS).Send(testutil.Ctx(t), bus.NotifyHoldCreated, sampleHold("H-plain", at), at); err != nil {
		t.Fatal(err)
	}
	var fs []Failure
	testutil.Eventually(t, 10*time.Second, "parked", func() bool {
		fs, _ = Failures(testutil.Ctx(t), env.JS)
		return len(fs) == 1 && settled(t, d)
	})
	if fs[0].Error != ErrNoStartTLS.Error() {
		t.Errorf("failure %q, want %q", fs[0].Error, ErrNoStartTLS)
	}
	if n := len(s.received()); n != 0 {
		t.Errorf("%d mails sent in clear text", n)
	}
}

func testTLS(leaf testutil.Leaf) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{leaf.Pair}, MinVersion: tls.VersionTLS12}
}

// TestDeadLetterAndRefusedRelease routes the dead letters (DEAD) and the
// releases the feed refused (AUDIT) to an operator's receiver, written by
// router/dead and router/audit as the pipeline writes them, and checks that
// the clinician's route gets neither.
func TestDeadLetterAndRefusedRelease(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	ops, ward := newHook(t, "s", 0), newHook(t, "s", 0)
	cfg := webhookConfig(t, "integration", ops.srv.URL, "s")
	cfg.Receivers = append(cfg.Receivers, webhookConfig(t, "ward", ward.srv.URL, "s").Receivers...)
	cfg.Routes = []Route{
		{Match: Match{Roles: []string{RoleOperator}}, Receivers: []string{"integration"}},
		{Match: Match{Roles: []string{RoleClinician}}, Receivers: []string{"ward"}},
	}
	d := startDeliverer(t, env.JS, cfg, Options{})
	ctx := testutil.Ctx(t)

	// A message the pipeline could not parse, dead-lettered from HL7_IN.
	raw := []byte("MSH|^~\\&|LAB|GENHOSP|||20261207||ORU^R01|CTL-DEAD1|P|2.5.1\rPID|1||MRN999^^^GENHOSP^MR||Secret^Name\r")
	if _, err := env.JS.PublishMsg(ctx, &nats.Msg{Subject: bus.InSubject("p00"), Data: raw,
		Header: nats.Header{bus.HeaderHL7ControlID: {"CTL-DEAD1"}}}); err != nil {
		t.Fatal(err)
	}
	cons, err := env.JS.CreateConsumer(ctx, bus.StreamHL7In, jetstream.ConsumerConfig{Durable: "test-dead", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	in, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	deadSeq, err := dead.New(env.JS, nil).Put(ctx, in, bus.DeadParse, "segment 2 (PID): field 5 unreadable")
	if err != nil {
		t.Fatal(err)
	}
	// A released result the feed cannot take, recorded as the gate does.
	if err := audit.NewTrail(env.JS, zerolog.Nop()).Record(ctx, "unpub-H-unpub1", audit.Event{
		Kind: bus.AuditDead, At: time.Now().UTC(), HoldID: "H-unpub1", Action: audit.ActionNotDelivered,
		Reason: "fhir: no results to map", Actor: "resultgate", Role: hold.RoleSystem,
	}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "both notices delivered", func() bool {
		_, acc := ops.counts()
		return acc == 2 && settled(t, d)
	})
	_, acc := ops.snapshot()
	byKind := map[string]hookRequest{}
	for _, r := range acc {
		byKind[r.data.Kind] = r
	}
	dl := byKind[KindDeadLetter]
	if dl.data.Role != RoleOperator || dl.data.DeadSeq != deadSeq || dl.data.Reason != bus.DeadParse ||
		dl.header.Get(bus.HeaderIdempotencyKey) != "dead-"+strconv.FormatUint(deadSeq, 10)+".integration" ||
		!strings.Contains(dl.data.Text, "(parse: segment 2 (PID): field 5 unreadable), DEAD seq "+strconv.FormatUint(deadSeq, 10)) {
		t.Errorf("dead-letter notice: %+v", dl.data)
	}
	rr := byKind[KindReleaseRefused]
	if rr.data.HoldID != "H-unpub1" || rr.data.Reason != "fhir: no results to map" || rr.header.Get(bus.HeaderIdempotencyKey) != "aud-unpub-H-unpub1.integration" {
		t.Errorf("release-refused notice: %+v (key %q)", rr.data, rr.header.Get(bus.HeaderIdempotencyKey))
	}
	for _, r := range acc {
		for _, p := range []string{"MRN999", "Secret", "CTL-DEAD1"} {
			if strings.Contains(string(r.body), p) {
				t.Errorf("%s notice carries %q", r.data.Kind, p)
			}
		}
	}
	if n, _ := ward.counts(); n != 0 {
		t.Errorf("the clinicians' receiver got %d operator notices", n)
	}
}

// TestWaitingCount: a clinician's notification says how many held results
// wait for them and the soonest deadline, as Options.Waiting counts them at
// the time of sending; a triage notice does not ask.
func TestWaitingCount(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	h := newHook(t, "hook-secret", 0)
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var asked []Event
	d := startDeliverer(t, env.JS, webhookConfig(t, "ward-pager", h.srv.URL, "hook-secret"), Options{
		Waiting: func(_ context.Context, e Event) (Waiting, bool) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, e)
			return Waiting{Count: 3, Earliest: at.Add(5 * time.Hour)}, true
		},
	})
	n := notify.New(env.JS)
	if err := n.Send(testutil.Ctx(t), bus.NotifyHoldCreated, sampleHold("H-waiting1", at), at); err != nil {
		t.Fatal(err)
	}
	if err := n.Triage(testutil.Ctx(t), notify.TriageNotice{Reason: bus.DeadUnattributed, DeadSeq: 4, InboundSeq: 7, At: at}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "both notifications delivered", func() bool {
		_, acc := h.counts()
		return acc == 2 && settled(t, d)
	})
	_, acc := h.snapshot()
	var clin, triage Data
	for _, r := range acc {
		switch r.data.Kind {
		case bus.NotifyHoldCreated:
			clin = r.data
		case bus.NotifyTriage:
			triage = r.data
		}
	}
	want := "3 held results are waiting for your review; the soonest is released automatically on Mon 7 Dec 2026, 14:00 UTC."
	if clin.Waiting != 3 || !clin.WaitingEarliest.Equal(at.Add(5*time.Hour)) || clin.WaitingText != want || !strings.Contains(clin.Text, " "+want) {
		t.Errorf("clinician notification: waiting %d %v %q, text %q", clin.Waiting, clin.WaitingEarliest, clin.WaitingText, clin.Text)
	}
	if triage.Waiting != 0 || triage.WaitingText != "" {
		t.Errorf("triage notice carries a waiting count: %+v", triage)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || asked[0].Kind != bus.NotifyHoldCreated || asked[0].Role != RoleClinician {
		t.Errorf("Waiting asked for %+v, want only the clinician's notification", asked)
	}
}
