package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/config"
	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/bus"
	"github.com/resultgate/resultgate/router/hold"
	"github.com/resultgate/resultgate/router/notify"
	"github.com/resultgate/resultgate/router/notify/deliver"
)

// TestNotifyFailures parks a notification its only receiver refuses and
// lists it with `resultgate notify failures`.
func TestNotifyFailures(t *testing.T) {
	env := testutil.StartJS(t, config.DurabilityOS)
	if out, _, err := runCLI(t, "", "notify", "failures", "--data", env.Dir, "--nats-url", env.Srv.ClientURL()); err != nil || !strings.Contains(out, "0 parked notification(s)") {
		t.Fatalf("before any: %v\n%s", err, out)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "gone", http.StatusGone)
	}))
	t.Cleanup(down.Close)
	cfg := deliver.DefaultConfig()
	cfg.MaxAttempts = 1
	cfg.Receivers = []deliver.Receiver{{Name: "ward-pager", Type: deliver.TypeWebhook, Webhook: &deliver.Webhook{
		URL: down.URL, HMACSecretFile: testutil.WriteFile(t, t.TempDir(), "s", []byte("secret")),
	}}}
	cfg.Routes = []deliver.Route{{Receivers: []string{"ward-pager"}}}
	d, err := deliver.New(testutil.Ctx(t), env.JS, cfg, deliver.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	now := time.Now()
	if err := notify.New(env.JS).Send(testutil.Ctx(t), bus.NotifyEscalation, &hold.Hold{ID: "H-cli1", ProviderKey: "pk", Deadline: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	var out string
	testutil.Eventually(t, 10*time.Second, "the failure listed", func() bool {
		out, _, err = runCLI(t, "", "notify", "failures", "--data", env.Dir, "--nats-url", env.Srv.ClientURL())
		return err == nil && strings.Contains(out, "1 parked notification(s)")
	})
	for _, want := range []string{"NOTIFY 1", "ward-pager", "escalation", "H-cli1", "webhook: answered 410 Gone"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
