package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resultgate/resultgate/auth"
	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/notify/deliver"
)

// TestNotifyReceiverDownNeverStallsRelease: with the only receiver down, a
// result is held over MLLP and released by its clinician over HTTP; the
// release reaches the portal feed at once, the hold-created notification
// is retried (and counted in /metrics), and it is delivered, signed, once
// the receiver is back.
func TestNotifyReceiverDownNeverStallsRelease(t *testing.T) {
	var (
		mu       sync.Mutex
		down     = true
		tried    int
		accepted []*http.Request
		bodies   [][]byte
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		defer mu.Unlock()
		tried++
		if down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		accepted, bodies = append(accepted, r), append(bodies, body)
	}))
	t.Cleanup(rcv.Close)
	dir := t.TempDir()
	secret := testutil.WriteFile(t, t.TempDir(), "hook.secret", []byte("app-hook-secret\n"))
	cfg := kentuckyConfigWith(t, dir, `
notify:
  public_url: https://results.example.org
  retry_backoff: {min: 50ms, max: 200ms}
  receivers:
    - name: ward-desk
      type: webhook
      webhook: {url: "`+rcv.URL+`/hook", hmac_secret_file: "`+secret+`"}
  routes:
    - match: {kinds: [hold-created], roles: [clinician]}
      receivers: [ward-desk]
`)
	tok, err := auth.NewToken(filepath.Join(dir, "tokens.yaml"), "Dr Delta", auth.RoleClinician, "D001", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := startAPIEnv(t, cfg, map[string]string{"clinician": tok})
	holdID := e.heldPathology(t, "NTFY1")

	testutil.Eventually(t, 15*time.Second, "the notification tried while the receiver is down", func() bool {
		return e.app.notify.Stats().Deliveries["ward-desk"][deliver.OutcomeRetried] >= 1
	})
	r := e.do(t, "clinician", "POST", "/api/holds/"+holdID+"/release", "application/json", []byte(`{}`))
	if r.status != 200 || r.body["state"] != "released" {
		t.Fatalf("release while the receiver is down: %d %s", r.status, r.raw)
	}
	testutil.Eventually(t, 15*time.Second, "the released result on the portal feed", func() bool {
		return feedControlIDs(t, e.app.JetStream())["NTFY1"] > 0
	})
	_, metrics := httpGet(t, e.base+"/metrics")
	if !strings.Contains(metrics, `resultgate_notify_deliveries_total{outcome="retried",receiver="ward-desk"}`) ||
		!strings.Contains(metrics, `resultgate_notify_deliveries_total{outcome="sent",receiver="ward-desk"} 0`) ||
		!strings.Contains(metrics, "resultgate_notify_pending 1") {
		t.Errorf("metrics while the receiver is down:\n%s", grepLines(metrics, "resultgate_notify"))
	}

	mu.Lock()
	down = false
	mu.Unlock()
	testutil.Eventually(t, 15*time.Second, "delivered once the receiver is back", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) == 1 && e.app.notify.Stats().Deliveries["ward-desk"][deliver.OutcomeSent] == 1
	})
	mu.Lock()
	req, body := accepted[0], bodies[0]
	mu.Unlock()
	if got, want := req.Header.Get(bus.HeaderIdempotencyKey), "ntf-"+holdID+"-hold-created.ward-desk"; got != want {
		t.Errorf("idempotency key %q, want %q", got, want)
	}
	ts, _ := strconv.ParseInt(req.Header.Get(bus.HeaderNotifyTimestamp), 10, 64)
	if !deliver.Verify([]byte("app-hook-secret"), ts, body, req.Header.Get(bus.HeaderNotifySignature)) {
		t.Error("signature does not verify")
	}
	var d deliver.Data
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.HoldID != holdID || d.Kind != bus.NotifyHoldCreated || d.ProviderID != "D001" || d.Link != "https://results.example.org/#hold="+holdID || d.PHI != nil || d.Deadline.IsZero() {
		t.Errorf("notification %+v", d)
	}
	// The PHI of the fixture never reaches a default receiver.
	for _, p := range []string{"carcinoma", "NTFY1"} {
		if strings.Contains(string(body), p) {
			t.Errorf("notification body carries %q: %s", p, body)
		}
	}
	testutil.Eventually(t, 10*time.Second, "nothing pending", func() bool {
		_, m := httpGet(t, e.base+"/metrics")
		return strings.Contains(m, "resultgate_notify_pending 0")
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestNotifyLinkWarning: receivers without a public URL to link to are
// accepted with a warning naming the key; http.public_origins fills it in.
func TestNotifyLinkWarning(t *testing.T) {
	secret := testutil.WriteFile(t, t.TempDir(), "s", []byte("secret"))
	section := `
notify:
  receivers:
    - {name: desk, type: webhook, webhook: {url: "https://desk.example.org", hmac_secret_file: "` + secret + `"}}
  routes: [{receivers: [desk]}]
`
	for _, tc := range []struct{ origins, want, warning string }{
		{"", "", "line 2: notify.public_url: not set, nor http.public_origins: notifications carry no link to the worklist"},
		{"http:\n  public_origins: [https://results.example.org]\n", "https://results.example.org", ""},
	} {
		cfg, err := config.Parse([]byte(tc.origins + section))
		if err != nil {
			t.Fatal(err)
		}
		s, err := LoadSections(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var warnings []string
		for _, w := range s.Warnings {
			if strings.Contains(w.Key, "notify") {
				warnings = append(warnings, w.Error())
			}
		}
		if s.Notify.PublicURL != tc.want || strings.Join(warnings, "\n") != tc.warning {
			t.Errorf("origins %q: public_url %q, warnings %q; want %q, %q", tc.origins, s.Notify.PublicURL, warnings, tc.want, tc.warning)
		}
	}
}

// TestNotifyCountsWaitingHolds: a clinician's hold-created notification says
// how many of their results are held now and the soonest deadline, counted
// from serve's hold view when it is sent.
func TestNotifyCountsWaitingHolds(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, body)
	}))
	t.Cleanup(rcv.Close)
	dir := t.TempDir()
	secret := testutil.WriteFile(t, t.TempDir(), "hook.secret", []byte("app-hook-secret\n"))
	cfg := kentuckyConfigWith(t, dir, `
notify:
  public_url: https://results.example.org
  receivers:
    - name: ward-desk
      type: webhook
      webhook: {url: "`+rcv.URL+`/hook", hmac_secret_file: "`+secret+`"}
  routes:
    - match: {kinds: [hold-created], roles: [clinician]}
      receivers: [ward-desk]
`)
	tok, err := auth.NewToken(filepath.Join(dir, "tokens.yaml"), "Dr Delta", auth.RoleClinician, "D001", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := startAPIEnv(t, cfg, map[string]string{"clinician": tok})
	received := func(n int) []deliver.Data {
		testutil.Eventually(t, 15*time.Second, strconv.Itoa(n)+" notification(s) delivered", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(bodies) >= n
		})
		mu.Lock()
		defer mu.Unlock()
		out := make([]deliver.Data, len(bodies))
		for i, b := range bodies {
			if err := json.Unmarshal(b, &out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	first := e.heldPathology(t, "WAIT1")
	d1 := received(1)[0]
	if d1.HoldID != first || d1.Waiting != 1 || !strings.Contains(d1.WaitingText, "1 held result is waiting for your review") {
		t.Errorf("first notification: waiting %d %q", d1.Waiting, d1.WaitingText)
	}
	second := e.heldPathology(t, "WAIT2")
	d2 := received(2)[1]
	if d2.HoldID != second || d2.Waiting != 2 || !d2.WaitingEarliest.Equal(d1.Deadline) ||
		!strings.Contains(d2.WaitingText, "2 held results are waiting for your review") {
		t.Errorf("second notification: waiting %d, earliest %v (first deadline %v), %q", d2.Waiting, d2.WaitingEarliest, d1.Deadline, d2.WaitingText)
	}
	r := e.do(t, "clinician", "POST", "/api/holds/"+first+"/release", "application/json", []byte(`{}`))
	if r.status != 200 {
		t.Fatalf("release: %d %s", r.status, r.raw)
	}
	third := e.heldPathology(t, "WAIT3")
	d3 := received(3)[2]
	if d3.HoldID != third || d3.Waiting != 2 {
		t.Errorf("third notification after a release: waiting %d, want 2 (the released one no longer counts)", d3.Waiting)
	}
}
