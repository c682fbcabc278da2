package deliver

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
)

// loadNotify decodes the notify section of yaml over the defaults and
// validates it, as app.LoadSections does.
func loadNotify(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	nc := DefaultConfig()
	if err := cfg.Decode(config.SectionNotify, &nc); err != nil {
		return nc, err
	}
	return nc, nc.Validate()
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	secret := testutil.WriteFile(t, dir, "hook.secret", []byte("s3cret\n"))
	empty := testutil.WriteFile(t, dir, "empty.secret", []byte("\n"))
	missing := filepath.Join(dir, "absent.secret")
	r := strings.NewReplacer("SECRET", secret, "EMPTY", empty, "MISSING", missing)
	hook := `
    - name: pager
      type: webhook
      webhook: {url: "https://pager.example.org/hook", hmac_secret_file: SECRET}`
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"valid webhook and email", `
notify:
  public_url: https://results.example.org
  receivers:` + hook + `
    - name: ward-mail
      type: email
      email: {smarthost: "smtp.example.org:587", from: "resultgate@example.org", to: ["ward7@example.org"],
              auth_username: rg, auth_password_file: SECRET, subject: "[rg] {{.Title}}"}
  routes:
    - match: {kinds: [hold-created, reminder], roles: [clinician]}
      receivers: [ward-mail]
      continue: true
    - match: {kinds: [escalation, triage]}
      receivers: [pager]
`, nil},
		{"unknown receiver", `
notify:
  receivers:` + hook + `
  routes:
    - receivers: [pager, pagr]
`, []string{`notify.routes[0].receivers[1]: unknown receiver "pagr" (notify.receivers names "pager")`}},
		{"bad url", `
notify:
  receivers:
    - name: pager
      type: webhook
      webhook: {url: "ftp://pager.example.org", hmac_secret_file: SECRET}
  routes: [{receivers: [pager]}]
`, []string{`notify.receivers[0].webhook.url: must be an http or https URL without credentials, such as https://pager.example.org/hooks/resultgate, got "ftp://pager.example.org"`}},
		{"missing secret file", `
notify:
  receivers:
    - name: pager
      type: webhook
      webhook: {url: "https://pager.example.org", hmac_secret_file: MISSING}
  routes: [{receivers: [pager]}]
`, []string{`notify.receivers[0].webhook.hmac_secret_file: cannot read MISSING: no such file or directory`}},
		{"empty secret and no secret", `
notify:
  receivers:
    - name: a
      type: webhook
      webhook: {url: "https://pager.example.org", hmac_secret_file: EMPTY}
    - name: b
      type: webhook
      webhook: {url: "https://pager.example.org"}
  routes: [{receivers: [a, b]}]
`, []string{`notify.receivers[0].webhook.hmac_secret_file: EMPTY is empty`,
			`notify.receivers[1].webhook.hmac_secret_file: must be set: every request is signed`}},
		{"bad template", `
notify:
  receivers:
    - name: m
      type: email
      email: {smarthost: "smtp.example.org:587", from: "rg@example.org", to: [a@example.org], subject: "{{.Title", body: "{{.Patient}}"}
  routes: [{receivers: [m]}]
`, []string{`notify.receivers[0].email.subject: template: line 1: unclosed action`,
			`notify.receivers[0].email.body: template: line 1:2: executing "t" at <.Patient>: can't evaluate field Patient in type deliver.Data`}},
		{"email problems", `
notify:
  receivers:
    - name: m
      type: email
      email: {smarthost: "smtp.example.org", from: "not an address", to: [], require_starttls: false,
              auth_username: rg, auth_password_file: SECRET}
  routes: [{receivers: [m]}]
`, []string{`notify.receivers[0].email.smarthost: must be host:port such as smtp.example.org:587, got "smtp.example.org"`,
			`notify.receivers[0].email.from: must be a mail address, got "not an address"`,
			`notify.receivers[0].email.to: must list at least one address`,
			`notify.receivers[0].email.require_starttls: must be true when auth_username is set: the password is only ever sent over TLS`}},
		{"type and names", `
notify:
  receivers:
    - name: "a b"
      type: pager
    - name: x
      type: webhook
    - name: x
      type: email
      email: {smarthost: "smtp.example.org:25", from: "rg@example.org", to: [a@example.org]}
      webhook: {url: "https://x.example.org", hmac_secret_file: SECRET}
  routes:
    - match: {kinds: [hold_created], roles: [nurse]}
      receivers: [x]
`, []string{`notify.receivers[0].name: must be 1-64 letters, digits, '-' or '_', got "a b"`,
			`notify.receivers[0].type: must be webhook or email, got "pager"`,
			`notify.receivers[1].webhook: must be set for a webhook receiver (url, hmac_secret_file)`,
			`notify.receivers[2].name: "x" is already the name of receivers[1]`,
			`notify.receivers[2].webhook: is set but type is email`,
			`notify.routes[0].match.kinds[0]: must be one of hold-created, reminder, escalation, triage, dead-letter, release-refused, got "hold_created"`,
			`notify.routes[0].match.roles[0]: must be one of clinician, oncall, operator, got "nurse"`}},
		{"no routes, reserved header, bad backoff", `
notify:
  retry_backoff: {min: 10s, max: 1s}
  max_attempts: 0
  receivers:
    - name: pager
      type: webhook
      webhook: {url: "https://pager.example.org", hmac_secret_file: SECRET, headers: {Idempotency-Key: x}, timeout: 5m}
`, []string{`notify.retry_backoff.max: must be at least retry_backoff.min (10s), got 1s`,
			`notify.max_attempts: must be at least 1, got 0`,
			`notify.receivers[0].webhook.timeout: must be between 0 (the default, 10s) and 2m0s, got 5m0s`,
			`notify.receivers[0].webhook.headers.Idempotency-Key: is set by resultgate and cannot be configured`,
			`notify.routes: must route notifications to the receivers: with none, nothing is delivered`}},
		{"include_phi over clear text", `
notify:
  receivers:
    - name: pager
      type: webhook
      include_phi: true
      webhook: {url: "http://pager.example.org/hook", hmac_secret_file: SECRET}
    - name: mail
      type: email
      include_phi: true
      email: {smarthost: "smtp.example.org:25", from: "rg@example.org", to: [a@example.org], require_starttls: false}
  routes: [{receivers: [pager, mail]}]
`, []string{`notify.receivers[0].include_phi: needs an https webhook.url: PHI is never sent in clear text`,
			`notify.receivers[1].include_phi: needs email.require_starttls: PHI is never sent in clear text`}},
		{"receiver no route names", `
notify:
  receivers:` + hook + `
    - name: spare
      type: webhook
      webhook: {url: "https://spare.example.org", hmac_secret_file: SECRET}
  routes: [{receivers: [pager]}]
`, []string{`notify.receivers[1]: receiver "spare" is named by no route: it would never receive anything`}},
		{"unknown key", `
notify:
  recievers: []
`, []string{`line 3: notify.recievers: unknown key (did you mean notify.receivers?)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadNotify(t, r.Replace(tc.yaml))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = r.Replace(w)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestConfigErrorIsNamedAtCheckConfig(t *testing.T) {
	// The section's errors name their key, so config.Locate gives their line.
	yaml := "notify:\n  receivers:\n    - name: pager\n      type: webhook\n      webhook: {url: \"nope\", hmac_secret_file: /nonexistent}\n  routes: [{receivers: [pager]}]\n"
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	nc := DefaultConfig()
	if err := cfg.Decode(config.SectionNotify, &nc); err != nil {
		t.Fatal(err)
	}
	ps := cfg.Locate(nc.Validate())
	if len(ps) != 2 || ps[0].Key != "notify.receivers[0].webhook.url" || ps[0].Line != 5 || ps[1].Key != "notify.receivers[0].webhook.hmac_secret_file" {
		t.Fatalf("located problems: %v", ps)
	}
	var p *config.Problem
	if !errors.As(ps, &p) {
		t.Fatal("not a config.Problem")
	}
}

func TestRouting(t *testing.T) {
	cfg := Config{Routes: []Route{
		{Match: Match{Kinds: []string{"triage"}}, Receivers: []string{"oncall-pager"}},
		{Match: Match{Roles: []string{RoleClinician}, ProviderIDs: []string{"1234"}}, Receivers: []string{"dr-1234"}, Continue: true},
		{Match: Match{Tags: []string{"malignancy", "genetics"}}, Receivers: []string{"oncology-desk"}, Continue: true},
		{Match: Match{Kinds: []string{"escalation"}, Roles: []string{RoleOnCall}}, Receivers: []string{"oncall-pager", "oncology-desk"}},
		{Receivers: []string{"catch-all"}},
	}}
	d := &Deliverer{cfg: cfg}
	for _, tc := range []struct {
		name string
		e    Event
		want string
	}{
		{"triage stops at the first route", Event{Kind: "triage", Role: RoleOnCall}, "oncall-pager"},
		{"provider continues to tags and catch-all", Event{Kind: "hold-created", Role: RoleClinician, ProviderID: "1234", Tags: []string{"genetics"}}, "dr-1234,oncology-desk,catch-all"},
		{"other provider, no tag", Event{Kind: "reminder", Role: RoleClinician, ProviderID: "999"}, "catch-all"},
		{"escalation deduplicates receivers", Event{Kind: "escalation", Role: RoleOnCall, Tags: []string{"malignancy"}}, "oncology-desk,oncall-pager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(d.route(tc.e), ","); got != tc.want {
				t.Errorf("route = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestTimeLeftText: a notification says the time left in the worklist's
// words (hold.Left), and "due now" once the deadline has come.
func TestTimeLeftText(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for d, want := range map[string]string{
		"51h": "2 d 3 h left", "5h10m": "5 h 10 min left", "40m": "40 min left", "48h": "2 d left",
		"10s": "under a minute left", "0s": "due now", "-1m": "due now",
	} {
		dur, _ := timeParse(d)
		e := Event{Kind: bus.NotifyReminder, HoldID: "H1", At: at, Deadline: at.Add(dur)}
		data := newData(e, "r", "", time.UTC)
		if !strings.Contains(data.Text, "("+want+").") {
			t.Errorf("%s: text %q, want it to end with (%s).", d, data.Text, want)
		}
		if dur > 0 && data.TimeLeft != hold.Left(e.Deadline, at) {
			t.Errorf("%s: TimeLeft %q, hold.Left %q", d, data.TimeLeft, hold.Left(e.Deadline, at))
		}
	}
}

func timeParse(s string) (time.Duration, error) { return time.ParseDuration(s) }
