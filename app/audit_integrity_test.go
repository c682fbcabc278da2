package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/resultgate/resultgate/internal/testutil"
	"github.com/resultgate/resultgate/router/audit"
	"github.com/resultgate/resultgate/router/bus"
)

// getReadyz returns /readyz's status and body.
func getReadyz(t *testing.T, a *App) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAuditTamperFailsReadinessAtStart: for each way an administrator with
// every NATS right (the embedded server's service user) can damage AUDIT
// while serve is down, the next start does not repair or recreate anything,
// and /readyz answers 503 naming the finding. Deleting one event and purging
// are refused by JetStream itself; what remains are limits, deletion,
// recreation, rewriting and foreign appends.
func TestAuditTamperFailsReadinessAtStart(t *testing.T) {
	update := func(f func(*jetstream.StreamConfig)) func(*testing.T, context.Context, jetstream.JetStream) {
		return func(t *testing.T, ctx context.Context, js jetstream.JetStream) {
			s, err := js.Stream(ctx, bus.StreamAudit)
			if err != nil {
				t.Fatal(err)
			}
			cfg := s.CachedInfo().Config
			f(&cfg)
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Fatalf("UpdateStream: %v", err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		do   func(*testing.T, context.Context, jetstream.JetStream)
		want []string // in /readyz's body
	}{
		{"delete one event: refused, then a per-subject limit", func(t *testing.T, ctx context.Context, js jetstream.JetStream) {
			s, err := js.Stream(ctx, bus.StreamAudit)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteMsg(ctx, 3); err == nil {
				t.Fatal("AUDIT let an event be deleted")
			}
			update(func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject, c.Discard = 1, jetstream.DiscardOld })(t, ctx, js)
		}, []string{"reconfigured: max_msgs_per_subject is 1", "gap: "}},
		{"purge: refused, then a message limit", func(t *testing.T, ctx context.Context, js jetstream.JetStream) {
			s, err := js.Stream(ctx, bus.StreamAudit)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Purge(ctx); err == nil {
				t.Fatal("AUDIT let itself be purged")
			}
			update(func(c *jetstream.StreamConfig) { c.MaxMsgs, c.Discard = 3, jetstream.DiscardOld })(t, ctx, js)
		}, []string{"reconfigured: max_msgs is 3", "truncated: the trail starts at sequence"}},
		{"roll-up: refused, then a republished event", func(t *testing.T, ctx context.Context, js jetstream.JetStream) {
			m := nats.NewMsg(bus.AuditSubject(bus.AuditDecision, "abc"))
			m.Data = []byte(`{"kind":"decision","action":"release"}`)
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			if _, err := js.PublishMsg(ctx, m); err == nil {
				t.Fatal("AUDIT took a roll-up")
			}
			m.Header = nats.Header{}
			m.Header.Set(bus.HeaderAuditPrev, bus.AuditGenesis)
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}, []string{"edit: event "}},
		{"delete the stream", func(t *testing.T, ctx context.Context, js jetstream.JetStream) {
			if err := js.DeleteStream(ctx, bus.StreamAudit); err != nil {
				t.Fatal(err)
			}
		}, []string{"missing: the AUDIT stream does not exist", "held 12 events"}},
		{"delete the stream and recreate it empty", func(t *testing.T, ctx context.Context, js jetstream.JetStream) {
			s, err := js.Stream(ctx, bus.StreamAudit)
			if err != nil {
				t.Fatal(err)
			}
			cfg := s.CachedInfo().Config
			if err := js.DeleteStream(ctx, bus.StreamAudit); err != nil {
				t.Fatal(err)
			}
			if _, err := js.CreateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
		}, []string{"truncated: the trail ends at sequence 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := startApp(t, testConfig(t, dir))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tr := audit.NewTrail(a.JetStream(), zerolog.Nop())
			for i := range 12 {
				hold := fmt.Sprintf("h%03d", i%4) // several events per subject …
				if i == 0 {
					hold = "hfirst" // … but the first
				}
				if err := tr.Record(ctx, fmt.Sprintf("ev-%d", i), audit.Event{Kind: bus.AuditDecision, HoldID: hold, Action: "hold"}); err != nil {
					t.Fatal(err)
				}
			}
			if rep, err := a.audit.Round(ctx); err != nil || len(rep.Findings) != 0 {
				t.Fatalf("round before tampering: %+v, %v", rep, err)
			}
			if code, body := getReadyz(t, a); code != http.StatusOK {
				t.Fatalf("/readyz before tampering: %d %s", code, body)
			}
			tc.do(t, ctx, a.JetStream())
			if err := a.Stop(ctx); err != nil {
				t.Fatal(err)
			}

			log := &testutil.SyncBuffer{}
			b := New(testConfig(t, dir), zerolog.New(log))
			if err := b.Start(ctx); err != nil {
				t.Fatalf("restart: %v", err)
			}
			t.Cleanup(func() {
				sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer scancel()
				_ = b.Stop(sctx)
			})
			code, body := getReadyz(t, b)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "audit trail integrity check failed") || !strings.Contains(body, "audit init --accept-new") {
				t.Fatalf("/readyz after the restart: %d %s", code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("/readyz %s: want %q in it", body, w)
				}
				// The log has the kind as a field and the detail as the message.
				if d := w[strings.Index(w, ": ")+2:]; d != "" && !strings.Contains(log.String(), d) {
					t.Errorf("the start's log does not say %q:\n%s", d, log.String())
				}
			}
		})
	}
}
